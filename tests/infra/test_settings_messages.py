"""Stack settings validated without running the program: each refusal's whole line as the
user reads it (key path, what is allowed, the value), and the edges of the limits."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pytest

from components.durations import Duration
from components.settings import ConfigError, settings_from_config
from components.settings.idempotency import near, retry_window
from components.settings.schedule import MAX_BODY_BYTES, body_bytes, body_text
from tests.infra.conftest import base_config

P = "cloudrun-tasks:pipelines"


def problems(
    change: Callable[[dict[str, Any]], None], secret: Collection[str] = ()
) -> list[str] | None:
    config = base_config()
    change(config)
    try:
        settings_from_config(config, secret, "test")
    except ConfigError as error:
        return error.problems
    return None


def pipeline(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config[P]["orders"][key] = value

    return change


def schedule(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return pipeline("schedules", {"nightly": {"cron": "0 3 * * *", **fields}})


MEMBER_HELP = (
    "must be an IAM member such as 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com'"
    " (prefixes: serviceAccount, user, group, principal, principalSet)"
)


@pytest.mark.parametrize(
    ("members", "line"),
    [
        (
            ["allUsers"],
            "pipelines.orders.enqueuers.0: public members (allUsers, allAuthenticatedUsers)"
            ' may not enqueue tasks, got "allUsers"',
        ),
        (
            ["serviceAccount:a@p.iam.gserviceaccount.com", "allAuthenticatedUsers"],
            "pipelines.orders.enqueuers.1: public members (allUsers, allAuthenticatedUsers)"
            ' may not enqueue tasks, got "allAuthenticatedUsers"',
        ),
        (
            ["bob@example.com"],
            f'pipelines.orders.enqueuers.0: {MEMBER_HELP}, got "bob@example.com"',
        ),
        (["user:"], f'pipelines.orders.enqueuers.0: {MEMBER_HELP}, got "user:"'),
        (
            ["users:bob@example.com"],
            f'pipelines.orders.enqueuers.0: {MEMBER_HELP}, got "users:bob@example.com"',
        ),
    ],
)
def test_enqueuers_must_be_iam_members_and_never_public(members: list[str], line: str) -> None:
    assert problems(pipeline("enqueuers", members)) == [line]


@pytest.mark.parametrize(
    "member",
    [
        "serviceAccount:api@p.iam.gserviceaccount.com",
        "user:bob@example.com",
        "group:ops@example.com",
        "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/s",
        "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*",
    ],
)
def test_every_member_prefix_is_accepted(member: str) -> None:
    assert problems(pipeline("enqueuers", [member])) is None


PATH_HELP = "must be a URL path starting with '/', without spaces, '?' or '#'"


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {"cron": "@daily"},
            "pipelines.orders.schedules.nightly.cron: @daily and the other @ macros are not"
            " supported: write the 5 unix-cron fields (minute hour day-of-month month"
            " day-of-week), e.g. '0 0 * * *' for daily, got \"@daily\"",
        ),
        (
            {"cron": "@ 3 * * *"},
            "pipelines.orders.schedules.nightly.cron: is not a valid unix-cron schedule: Bad"
            ' minute, got "@ 3 * * *"',
        ),
        (
            {"cron": "0 3 * * 1 2"},
            "pipelines.orders.schedules.nightly.cron: must be a unix-cron schedule of 5 fields"
            " (minute hour day-of-month month day-of-week), e.g. '0 3 * * *'; got 6 field(s),"
            ' got "0 3 * * 1 2"',
        ),
        ({"path": "x"}, f'pipelines.orders.schedules.nightly.path: {PATH_HELP}, got "x"'),
        ({"path": "/x y"}, f'pipelines.orders.schedules.nightly.path: {PATH_HELP}, got "/x y"'),
        ({"path": "/x\ty"}, f'pipelines.orders.schedules.nightly.path: {PATH_HELP}, got "/x\\ty"'),
        ({"path": "/x?y"}, f'pipelines.orders.schedules.nightly.path: {PATH_HELP}, got "/x?y"'),
        ({"path": "/x#y"}, f'pipelines.orders.schedules.nightly.path: {PATH_HELP}, got "/x#y"'),
        (
            {"timeZone": "Mars/Base"},
            "pipelines.orders.schedules.nightly.timeZone: must be an IANA time zone name such"
            " as 'UTC' or 'Europe/Berlin' (the tz database, as Cloud Scheduler takes it), got"
            ' "Mars/Base"',
        ),
    ],
)
def test_schedule_refusals(fields: dict[str, Any], line: str) -> None:
    assert problems(schedule(**fields)) == [line]


@pytest.mark.parametrize("path", ["/", "/reports/daily", "/a-b_c.d~e", "/X-Ray"])
def test_plain_paths_are_accepted(path: str) -> None:
    assert problems(schedule(path=path)) is None


def test_a_body_is_compact_json_as_written_utf_8_not_escaped() -> None:
    assert body_text({"é": [1, "x"], "b": None}) == '{"é":[1,"x"],"b":null}'
    assert body_bytes({"é": 1}) == '{"é":1}'.encode()


def test_a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_refused() -> None:
    fits = "x" * (MAX_BODY_BYTES - 2)  # the two quotes make it a JSON string
    assert len(body_bytes(fits)) == MAX_BODY_BYTES
    assert problems(schedule(body=fits)) is None
    [line] = problems(schedule(body=fits + "x")) or [""]
    assert line.startswith(
        f"pipelines.orders.schedules.nightly.body: is {MAX_BODY_BYTES + 1} bytes as JSON: at"
        f" most {MAX_BODY_BYTES} (Cloud Tasks' task size of 1000000 bytes, less 16384 for the"
        ' rest of the task), got "xxx'
    )


def test_an_unknown_namespace_is_named_with_the_one_meant() -> None:
    def misspelt(config: dict[str, Any]) -> None:
        config["cloudrun-task:protect"] = True

    assert problems(misspelt) == [
        "cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
        " cloudrun-tasks:protect? this program reads cloudrun-tasks:* and gcp:* keys"
    ]


def test_a_secret_value_is_never_shown_and_a_plain_one_is() -> None:
    def protect(config: dict[str, Any]) -> None:
        config["cloudrun-tasks:protect"] = "yes"

    assert problems(protect, secret=["cloudrun-tasks:protect"]) == [
        "protect: must be true or false, got [secret]"
    ]
    assert problems(protect) == ['protect: must be true or false, got "yes"']


@pytest.mark.parametrize(
    ("location", "region", "is_near"),
    [
        ("us-central1", "us-central1", True),
        ("nam5", "us-east1", True),
        ("eur3", "europe-west1", True),
        ("eur3", "us-east1", False),
        ("us-east1", "us-central1", False),
        ("nowhere", "us-central1", False),
    ],
)
def test_a_database_is_near_its_own_region_and_its_geographys_multi_region(
    location: str, region: str, is_near: bool
) -> None:
    assert near(location, region) is is_near


def test_the_retry_window_is_the_longer_of_the_last_attempt_by_time_and_every_attempt() -> None:
    deadline = Duration.of_seconds(600)
    hour = Duration.of_seconds(3600)
    # 5 attempts of 600 s with 4 waits of 3600 s = 17400 s, over 1 h + the last attempt.
    assert retry_window(5, hour, hour, deadline) == Duration.of_seconds(17400)
    # 2 attempts: the day, and the attempt started just before it ended.
    assert retry_window(2, Duration.of_seconds(86400), hour, deadline) == (
        Duration.of_seconds(87000)
    )
    assert retry_window(-1, Duration.of_seconds(7200), hour, deadline) == (
        Duration.of_seconds(7800)
    )
    # 0s: no time limit, the count alone; one attempt never waits.
    assert retry_window(1, Duration(0), hour, deadline) == deadline
