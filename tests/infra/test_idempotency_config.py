"""Idempotency store and replayers in config: every bad value is one clear line."""

from __future__ import annotations

from typing import Any

import pytest

from components.name_rules import FIRESTORE_DATABASE_ID
from components.names import check_names
from components.settings import ConfigError, settings_from_config
from components.settings.idempotency import database_for_stack, default_location, location_problem
from tests.infra.conftest import ENQUEUER, base_config

P = "cloudrun-tasks:pipelines"
IDEMPOTENCY = "cloudrun-tasks:idempotency"


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        settings_from_config(config, stack="test")
    return error.value.problems


def pipelines(**locations: str) -> dict[str, Any]:
    config = base_config()
    config[P] = {n: {"location": r, "service": {"image": "img"}} for n, r in locations.items()}
    return config


@pytest.mark.parametrize(
    ("database", "why"),
    [("abc", "4..63"), ("Tasks", "lowercase"), ("1tasks", "starting"), ("tasks-", "ending")],
)
def test_bad_database_id(database: str, why: str) -> None:
    config = base_config()
    config[IDEMPOTENCY] = {"database": database}
    [line] = problems(config)
    assert line.startswith("idempotency.database: must be a database id: 4..63")
    assert why in line and f'got "{database}"' in line


def test_database_defaults_to_the_stack_name_and_location_to_the_pipelines() -> None:
    settings = settings_from_config(pipelines(a="us-central1", b="us-east1"), stack="Prod_EU")
    assert (settings.database_id, settings.database_location) == ("tasks-prod-eu", "nam5")
    settings = settings_from_config(pipelines(a="europe-west1"), stack="dev")
    assert settings.database_location == "europe-west1"
    settings = settings_from_config(pipelines(a="europe-west1", b="europe-west4"), stack="x")
    assert settings.database_location == "eur3"


@pytest.mark.parametrize(
    ("location", "regions", "message"),
    [
        ("eur3", {"a": "us-central1"}, "must be near every pipeline"),
        ("us-east1", {"a": "us-central1"}, "not near: a (us-central1)"),
        ("nam5", {"a": "us-central1", "b": "europe-west1", "c": "asia-east1"}, None),
        ("asia-east2", {"a": "us-central1", "b": "europe-west1"}, "near at least one pipeline"),
        ("mars-north1", {"a": "us-central1"}, "must be a Firestore location"),
    ],
)
def test_location_pairing(location: str, regions: dict[str, str], message: str | None) -> None:
    config = pipelines(**regions)
    config[IDEMPOTENCY] = {"location": location}
    if message is None:
        assert settings_from_config(config).database_location == location
        return
    [line] = problems(config)
    assert line.startswith("idempotency.location: ") and message in line


def test_location_required_when_nothing_suggests_one() -> None:
    config = pipelines(a="asia-east1", b="europe-west1")
    del config["gcp:region"]
    [line] = problems(config)
    assert line.startswith("idempotency.location: is required")


@pytest.mark.parametrize(
    ("queue", "deadline", "window"),
    [
        # Windows longer than the 31-day default. By time: maxRetryDuration plus the last
        # attempt's deadline.
        ({"maxAttempts": -1, "maxRetryDuration": "800h"}, "600s", 2880600),
        # maxRetryDuration 0s: no time limit, the attempts bound it.
        ({"maxAttempts": 5000, "maxRetryDuration": "0s"}, "600s", 5000 * 600 + 4999 * 300),
        # Both set: retries stop once both are spent, so the longer one.
        ({"maxAttempts": 2000, "maxRetryDuration": "1h"}, "1800s", 2000 * 1800 + 1999 * 300),
    ],
)
def test_ttl_covers_every_retry_window(queue: dict[str, Any], deadline: str, window: int) -> None:
    config = base_config()
    config[P]["orders"].update(queue=queue, dispatchDeadline=deadline)
    [line] = problems(config)
    assert line.startswith(f"idempotency.ttl: must be >= {window}s: pipeline 'orders'")
    config[IDEMPOTENCY] = {"ttl": f"{window}s"}
    assert settings_from_config(config).idempotency.ttl.seconds == window


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("2678400.5s", "whole number of seconds"),
        ("0s", ">= 2678400s and <= 2147483647s: dead letters are kept 31 days"),
        # Shorter than the dead letters' retention: a late replay would find no record.
        ("604800s", ">= 2678400s"),
        ("2678399s", ">= 2678400s"),
        ("2147483648s", "<= 2147483647s"),
    ],
)
def test_bad_ttl(ttl: str, message: str) -> None:
    config = base_config()
    config[IDEMPOTENCY] = {"ttl": ttl}
    assert any(
        line.startswith("idempotency.ttl: ") and message in line for line in problems(config)
    )


def test_the_default_ttl_is_the_dead_letters_retention() -> None:
    assert settings_from_config(base_config()).idempotency.ttl.seconds == 31 * 24 * 3600


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (["allUsers"], "replayers.0: public members (allUsers, allAuthenticatedUsers) may not"),
        (["allAuthenticatedUsers"], "replayers.0: public members"),
        (["bob@example.com"], "replayers.0: must be an IAM member"),
        ([ENQUEUER, ENQUEUER], "replayers.1: is listed twice"),
    ],
)
def test_bad_replayers(members: list[str], expected: str) -> None:
    config = base_config()
    config[P]["orders"]["replayers"] = members
    assert f"pipelines.orders.{expected}" in "\n".join(problems(config))


@pytest.mark.parametrize(
    "name",
    [
        "TASK_FIRESTORE_DATABASE",
        "TASK_DEAD_LETTER_TOPIC",
        "TASK_DISPATCH_DEADLINE",
        "TASK_CONCURRENCY",
        "GOOGLE_CLOUD_PROJECT",
    ],
)
@pytest.mark.parametrize("section", ["env", "secrets"])
def test_pipeline_env_is_reserved(name: str, section: str) -> None:
    config = base_config()
    config[P]["orders"]["service"][section] = {name: "x:1" if section == "secrets" else "x"}
    [line] = problems(config)
    assert line.startswith(f"pipelines.orders.service.{section}.{name}: is set by Cloud Run")


def test_a_member_both_enqueuer_and_replayer_gets_one_grant_per_role() -> None:
    config = base_config()
    config[P]["orders"]["replayers"] = [ENQUEUER, "group:replay@acme.example"]
    derived = check_names(settings_from_config(config)).derived
    queue_grants = [d for d in derived if d.kind == "gcp:cloudtasks/queueIamMember:QueueIamMember"]
    assert [d.path for d in queue_grants] == [
        "pipelines.orders.enqueuers.0",
        "pipelines.orders.replayers.1",
    ]


def test_dead_letter_names_collide_with_a_pipeline_named_like_them() -> None:
    """`a` and `a-dead-letters` are both valid pipelines; their names never meet, since a
    topic is always PIPELINE-dead-letters and no other kind uses that spelling."""
    config = pipelines(**{"a": "us-central1", "a-dead-letters": "us-central1"})
    derived = check_names(settings_from_config(config)).derived
    topics = sorted(d.name.name for d in derived if d.kind == "gcp:pubsub/topic:Topic")
    assert topics == ["a-dead-letters", "a-dead-letters-dead-letters"]


@pytest.mark.parametrize(
    ("stack", "database"),
    [
        ("Prod_EU", "tasks-prod-eu"),
        ("--Prod--", "tasks-prod"),
        ("Déjà vu", "tasks-d-j-vu"),
        ("", "tasks"),
        ("___", "tasks"),
        ("x" * 100, "tasks-" + "x" * 57),
        # Cut at 63 on a hyphen: the id may not end with one.
        ("a" * 56 + "-bbb", "tasks-" + "a" * 56),
    ],
)
def test_the_default_database_id_is_the_stack_name_made_valid(stack: str, database: str) -> None:
    assert database_for_stack(stack) == database
    assert FIRESTORE_DATABASE_ID.problem(database) is None


@pytest.mark.parametrize(
    ("regions", "stack_region", "location"),
    [
        (["us-central1"], None, "us-central1"),
        (["us-central1", "us-central1"], "europe-west1", "us-central1"),
        # A region Firestore does not list: its geography's multi-region.
        (["us-central9"], None, "nam5"),
        (["us-central1", "us-east1"], None, "nam5"),
        (["europe-west1", "europe-west4"], "us-east1", "eur3"),
        # Several geographies: near gcp:region.
        (["asia-east1", "us-east1"], None, None),
        (["asia-east1", "us-east1"], "europe-west1", "eur3"),
        (["asia-east1", "europe-west1"], "us-east4", "nam5"),
        (["us-east1", "europe-west1"], "asia-east1", "asia-east1"),
        (["us-east1", "europe-west1"], "asia-east9", None),
        ([], None, None),
        ([], "asia-east1", "asia-east1"),
    ],
)
def test_default_location_is_near_every_pipeline_else_near_gcp_region(
    regions: list[str], stack_region: str | None, location: str | None
) -> None:
    assert default_location(regions, stack_region) == location


NEAR = (
    "(the pipeline's own region, or the multi-region of its geography (nam5 or nam7 for us-*,"
    " eur3 for europe-*))"
)


def test_location_problem_for_each_case() -> None:
    us = {"b": "us-east1", "a": "us-central1"}
    apart = {"b": "asia-east1", "a": "europe-west1"}
    assert location_problem(None, us, None) is None
    assert location_problem(None, apart, "us-east1") is None
    assert location_problem(None, apart, None) == (
        "is required: no Firestore location is near every pipeline (a (europe-west1), b"
        f" (asia-east1)) and gcp:region suggests none; pick one near at least one of them {NEAR}"
    )
    assert location_problem("nam7", us, None) is None
    assert location_problem("us-east1", us, None) == (
        f"must be near every pipeline {NEAR}, e.g. 'nam5'; not near: a (us-central1)"
    )
    assert location_problem("eur3", us, None) == (
        f"must be near every pipeline {NEAR}, e.g. 'nam5'; not near: a (us-central1), b (us-east1)"
    )
    assert location_problem("eur3", apart, None) is None
    assert location_problem("nam5", apart, "europe-west1") == (
        f"must be near at least one pipeline {NEAR}; it is near none"
    )


def test_a_bad_location_and_ttl_say_what_is_allowed() -> None:
    config = base_config()
    config[IDEMPOTENCY] = {"location": "us", "ttl": "2678400.5s"}
    assert problems(config) == [
        "idempotency.location: must be a Firestore location: a multi-region (eur3, nam5,"
        " nam7) or a region such as 'us-central1' (firestore/native/docs/locations), got"
        ' "us"',
        "idempotency.ttl: must be a whole number of seconds (Firestore TTL offsets are), got"
        ' "2678400.5s"',
    ]
    for ttl in ("2678400s", "2147483647s"):
        config[IDEMPOTENCY] = {"ttl": ttl}
        assert str(settings_from_config(config).idempotency.ttl) == ttl
    config[IDEMPOTENCY] = {"ttl": "2678399s"}
    assert problems(config) == [
        "idempotency.ttl: must be >= 2678400s and <= 2147483647s: dead letters are kept 31"
        " days, and a replay whose task's record is gone could run a task that had finished"
        ' after all, got "2678399s"'
    ]
