"""A whole stack config validated without running the program (components/settings/stack.py
and config.py): labels, regions, the idempotency store against the pipelines, schedule
texts, config keys and namespaces, secret keys, and the values resolved from other keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from datetime import timedelta
from typing import Any

import pulumi
import pytest

from components.durations import Duration
from components.name_rules import schedule_problems
from components.settings import (
    ConfigError,
    StackSettings,
    load_settings,
    parse_pipeline,
    parse_settings,
    settings_from_config,
)
from tests.infra.conftest import base_config

P = "cloudrun-tasks:pipelines"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
LABEL_KEY_HELP = (
    "must be a label key: 1..63 lowercase letters, digits, '_' or '-', starting with a"
    " lowercase letter (international characters allowed), under 128 bytes"
)


def settings(config: dict[str, Any], secret: Collection[str] = (), stack: str = "dev") -> Any:
    return settings_from_config(config, secret, stack)


def problems(config: dict[str, Any], secret: Collection[str] = (), stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_config(config, secret, stack)
    return caught.value.problems


def with_labels(labels: Any) -> dict[str, Any]:
    return {**base_config(), "cloudrun-tasks:labels": labels}


def test_labels_are_checked_key_and_value_each_named() -> None:
    assert problems(with_labels({"Team": "x", "team": "Payments", "pipeline": "y"})) == [
        f'labels.Team: {LABEL_KEY_HELP}, got "Team"',
        "labels.pipeline: is set by the project itself (reserved label keys: pipeline,"
        ' goog-pulumi-provisioned), got "pipeline"',
        "labels.team: must be a label value: 0..63 lowercase letters, digits, '_' or '-'"
        ' (international characters allowed), under 128 bytes, got "Payments"',
    ]
    kept = settings(with_labels({"team": "payments", "cost-centre": ""}))
    assert kept.labels == {"team": "payments", "cost-centre": ""}


def test_sixty_two_labels_are_taken_and_sixty_three_refused() -> None:
    assert len(settings(with_labels({f"k{i}": "v" for i in range(62)})).labels) == 62
    assert problems(with_labels({f"k{i}": "v" for i in range(63)})) == [
        "labels: has 63 labels: at most 62, since Cloud Run takes 64 and the project adds"
        " pipeline, goog-pulumi-provisioned"
    ]
    # A bad key and too many: both said.
    labels = {f"k{i}": "v" for i in range(62)} | {"Bad": "v"}
    assert problems(with_labels(labels)) == [f'labels.Bad: {LABEL_KEY_HELP}, got "Bad"']


def test_without_gcp_region_every_pipeline_needs_a_location() -> None:
    config = base_config()
    del config["gcp:region"]
    config[P]["b"] = {"service": {"image": IMAGE}, "location": "europe-west1"}
    config[P]["c"] = {"service": {"image": 1}}
    assert problems(config) == [
        "pipelines.c.location: is required when gcp:region is not set",
        "pipelines.c.service.image: must be a string, got 1",
        "pipelines.orders.location: is required when gcp:region is not set",
    ]
    config[P]["c"] = "pipeline"
    assert problems(config) == [
        'pipelines.c: must be a mapping, got "pipeline"',
        "pipelines.orders.location: is required when gcp:region is not set",
    ]


def test_pipelines_take_gcp_region_unless_they_set_their_own() -> None:
    config = base_config()
    config[P]["eu"] = {"service": {"image": IMAGE}, "location": "europe-west1"}
    resolved = settings(config)
    assert resolved.region == "us-central1"
    assert {n: p.resolved_location for n, p in resolved.pipelines.items()} == {
        "orders": "us-central1",
        "eu": "europe-west1",
    }
    # Two geographies: the database goes near gcp:region.
    assert resolved.database_location == "nam5"


def test_the_database_is_named_after_the_stack_unless_set() -> None:
    assert settings(base_config(), stack="Prod_EU").database_id == "tasks-prod-eu"
    config = {**base_config(), "cloudrun-tasks:idempotency": {"database": "orders-db"}}
    assert settings(config, stack="Prod_EU").database_id == "orders-db"


def test_a_database_location_is_unresolved_until_validation_resolves_it() -> None:
    bare = StackSettings.model_validate(
        {"gcp:project": "acme-test", "pipelines": {"a": {"service": {"image": IMAGE}}}}
    )
    with pytest.raises(RuntimeError, match="resolved by StackSettings validation"):
        _ = bare.database_location


def test_the_database_location_is_judged_once_every_pipeline_has_a_region() -> None:
    config = base_config()
    config["cloudrun-tasks:idempotency"] = {"location": "eur3"}
    assert problems(config) == [
        "idempotency.location: must be near every pipeline (the pipeline's own region, or the"
        " multi-region of its geography (nam5 or nam7 for us-*, eur3 for europe-*)), e.g."
        " 'us-central1'; not near: orders (us-central1), got \"eur3\""
    ]
    # A pipeline whose location is bad: nothing to judge the database's against.
    config[P]["orders"]["location"] = "europe"
    assert [line.split(":")[0] for line in problems(config)] == ["pipelines.orders.location"]
    # No region anywhere for a pipeline: the location rule says so, not the database's.
    config = base_config()
    del config["gcp:region"]
    config["cloudrun-tasks:idempotency"] = {"location": "eur3"}
    assert [line.split(":")[0] for line in problems(config)] == ["pipelines.orders.location"]
    # A bad gcp:region: its own line only.
    config["gcp:region"] = "us"
    assert [line.split(":")[0] for line in problems(config)] == ["gcp"]


def test_the_ttl_must_cover_each_pipelines_retry_window_named() -> None:
    config = base_config()
    config[P]["orders"]["queue"] = {"maxAttempts": -1, "maxRetryDuration": "800h"}
    config[P]["b"] = {"service": {"image": IMAGE}, "queue": {"maxRetryDuration": "801h"}}
    assert problems(config) == [
        f"idempotency.ttl: must be >= {window}: pipeline {name!r} can redeliver a task that"
        " long after its first attempt (the longer of maxRetryDuration + dispatchDeadline and"
        " maxAttempts x dispatchDeadline + (maxAttempts - 1) x maxBackoff), and a record"
        ' deleted before that lets a redelivery run twice, got "2678400s"'
        # b: 801 h + 600 s; orders: 800 h + 600 s
        for name, window in (("b", "2884200s"), ("orders", "2880600s"))
    ]
    config["cloudrun-tasks:idempotency"] = {"ttl": "2884200s"}
    assert settings(config).idempotency.ttl == Duration.of_seconds(2884200)


def test_the_ttl_rule_skips_pipelines_and_queues_that_failed_on_their_own() -> None:
    config = base_config()
    config[P]["orders"]["queue"] = {"maxAttempts": 5000, "maxRetryDuration": 5}
    config[P]["b"] = {"service": {"image": IMAGE}, "queue": "q"}
    config[P]["c"] = "pipeline"
    config[P]["d"] = {
        "service": {"image": IMAGE},
        "dispatchDeadline": 600,
        "queue": {"maxRetryDuration": "900h"},
    }
    assert [line.split(":")[0] for line in problems(config)] == [
        "pipelines.b.queue",
        "pipelines.c",
        "pipelines.d.dispatchDeadline",
        "pipelines.orders.queue.maxRetryDuration",
    ]
    config[P] = {
        "e": {"service": {"image": IMAGE}, "queue": {"maxAttempts": 0, "maxRetryDuration": "900h"}}
    }
    assert [line.split(":")[0] for line in problems(config)] == ["pipelines.e.queue.maxAttempts"]
    config[P] = {"orders": {"service": {"image": IMAGE}, "queue": {"maxRetryDuration": "900h"}}}
    config["cloudrun-tasks:idempotency"] = {"ttl": "1s"}
    assert [line.split(":")[0] for line in problems(config)] == ["idempotency.ttl"]


def test_a_pipeline_skipped_by_the_ttl_rule_does_not_end_it() -> None:
    config = base_config()
    config[P] = {
        "a": {"service": {"image": IMAGE}, "queue": "q"},
        "b": {"service": {"image": IMAGE}, "queue": {"maxAttempts": 0}},
        "c": {"service": {"image": IMAGE}, "queue": {"maxRetryDuration": "900h"}},
    }
    assert [line.split(": ")[0] for line in problems(config)] == [
        "idempotency.ttl",
        "pipelines.a.queue",
        "pipelines.b.queue.maxAttempts",
    ]
    assert "pipeline 'c'" in problems(config)[0]


def test_unlimited_attempts_without_a_duration_is_the_queues_problem_alone() -> None:
    config = base_config()
    config[P]["orders"]["queue"] = {"maxAttempts": -1, "maxRetryDuration": "0s"}
    assert problems(config) == [
        "pipelines.orders.queue.maxAttempts: -1 (unlimited) needs a maxRetryDuration above 0s,"
        " or a failing task is retried forever, got -1"
    ]


def test_schedule_texts_too_long_together_are_named_per_schedule() -> None:
    name = "p" * 22
    long_schedule, fine = "s" * 450, "nightly"
    config = base_config()
    config[P] = {
        name: {
            "service": {"image": IMAGE},
            "schedules": {long_schedule: {"cron": "0 3 * * *"}, fine: {"cron": "0 3 * * *"}},
        },
        "bad": {"service": {"image": IMAGE}, "schedules": "nightly"},
    }
    [expected] = schedule_problems(name, long_schedule)
    assert problems(config) == [
        'pipelines.bad.schedules: must be a mapping, got "nightly"',
        f"pipelines.{name}.schedules.{long_schedule}: {expected}",
    ]


def test_what_a_stack_uses_secrets_and_schedules() -> None:
    plain = settings(base_config())
    assert (plain.uses_secrets, plain.uses_schedules) == (False, False)
    config = base_config()
    config[P]["orders"]["service"]["secrets"] = {"KEY": "k:1"}
    assert settings(config).uses_secrets is True
    config = base_config()
    config[P]["orders"]["service"]["app"] = {"image": IMAGE, "secrets": {"KEY": "k:1"}}
    assert settings(config).uses_secrets is True
    config[P]["orders"]["service"]["app"] = {"image": IMAGE}
    assert settings(config).uses_secrets is False
    config[P]["orders"]["schedules"] = {"nightly": {"cron": "0 3 * * *"}}
    assert settings(config).uses_schedules is True


def test_secret_keys_are_recorded_per_top_level_key() -> None:
    plain = settings(base_config())
    assert (plain.secret_env, plain.secret_labels) == (False, False)
    both = settings(base_config(), secret=[P, "cloudrun-tasks:labels"])
    assert (both.secret_env, both.secret_labels) == (True, True)
    labels = settings(base_config(), secret=["cloudrun-tasks:labels"])
    assert (labels.secret_env, labels.secret_labels) == (False, True)


# --- config.py: keys, namespaces, decoding, secret values ---------------------------------


def test_structured_values_arrive_as_json_text_and_plain_strings_stay() -> None:
    config = base_config()
    config[P] = json.dumps({"orders": {"service": {"image": IMAGE}}})
    config["cloudrun-tasks:protect"] = "true"
    config["cloudrun-tasks:labels"] = '{"team": "x"}'
    resolved = settings(config)
    assert (resolved.protect, resolved.labels) == (True, {"team": "x"})
    assert resolved.pipelines["orders"].service.image == IMAGE
    config["cloudrun-tasks:protect"] = "maybe"
    assert problems(config) == ['protect: must be true or false, got "maybe"']


@pytest.mark.parametrize(
    ("key", "line"),
    [
        (
            "protect",
            "protect: config keys are NAMESPACE:NAME, e.g. cloudrun-tasks:protect",
        ),
        (
            "gcp:regoin",
            "gcp:regoin: unknown key of the gcp provider; did you mean gcp:region? its keys"
            " are those of pulumi_gcp.config",
        ),
        (
            "gcp:xyzzyq",
            "gcp:xyzzyq: unknown key of the gcp provider; its keys are those of pulumi_gcp.config",
        ),
        (
            "cloudrun-task:protect",
            "cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
            " cloudrun-tasks:protect? this program reads cloudrun-tasks:* and gcp:* keys",
        ),
        (
            "gpc:zone",
            "gpc:zone: unknown namespace 'gpc'; did you mean gcp:zone? this program reads"
            " cloudrun-tasks:* and gcp:* keys",
        ),
        (
            "aws:region",
            "aws:region: unknown namespace 'aws'; this program reads cloudrun-tasks:* and"
            " gcp:* keys",
        ),
    ],
)
def test_keys_outside_what_the_program_reads_are_refused(key: str, line: str) -> None:
    assert problems({**base_config(), key: "x"}) == [line]


def test_a_key_is_split_at_its_first_colon() -> None:
    assert problems({**base_config(), "cloudrun-tasks:protect:x": True}) == [
        "protect:x: unknown key; did you mean protect? allowed keys: gcp:project, gcp:region,"
        " protect, labels, pipelines, alerts, idempotency"
    ]


def test_without_a_stack_name_the_database_is_tasks() -> None:
    assert (
        parse_settings(
            {
                "gcp:project": "acme-test",
                "gcp:region": "europe-west1",
                "pipelines": {"orders": {"service": {"image": IMAGE}}},
            }
        ).database_id
        == "tasks"
    )


def test_provider_and_engine_keys_are_taken_and_not_read() -> None:
    config = {**base_config(), "gcp:zone": "us-central1-a", "pulumi:tags": '{"a": "b"}'}
    assert settings(config).project == base_config()["gcp:project"]


def test_every_kind_of_problem_at_once_sorted_by_key() -> None:
    config = {
        **base_config(),
        "protect": True,
        "aws:region": "x",
        "cloudrun-tasks:protect": "yes",
        "cloudrun-tasks:labels": {"Team": "x"},
    }
    config[P]["orders"]["service"]["concurrency"] = 0
    assert [line.split(": ")[0] for line in problems(config, stack="prod")] == [
        "alerts.notificationChannels",
        "aws:region",
        "labels.Team",
        "pipelines.orders.service.concurrency",
        "protect",
        "protect",
    ]


def test_values_under_secret_keys_are_never_shown_whatever_the_namespace() -> None:
    config = {**base_config(), "gcp:project": "Bad_Project", "cloudrun-tasks:protect": "yes"}
    assert problems(config, secret=["gcp:project", "cloudrun-tasks:protect"]) == [
        "gcp:project: must be a project id (6..30 lowercase letters, digits, hyphens), got"
        " [secret]",
        "protect: must be true or false, got [secret]",
    ]
    config[P]["orders"]["service"]["ingress"] = "open"
    lines = problems(config, secret=[P])
    assert "pipelines.orders.service.ingress: must be one of 'internal', " in lines[1]
    assert lines[1].endswith("got [secret]")
    assert lines[0].endswith('got "Bad_Project"')


def test_parse_settings_takes_keys_without_the_namespace() -> None:
    resolved = parse_settings(
        {
            "gcp:project": "acme-test",
            "gcp:region": "europe-west1",
            "pipelines": {"orders": {"service": {"image": IMAGE}}},
            "protect": True,
        }
    )
    assert (resolved.project, resolved.protect, resolved.database_location) == (
        "acme-test",
        True,
        "europe-west1",
    )


def test_a_value_from_a_program_that_is_no_json_is_shown_as_text() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline({"service": {"image": IMAGE}, "dispatchDeadline": timedelta(minutes=10)})
    assert caught.value.problems == [
        "dispatchDeadline: must be a duration string such as '600s', '10m', '1.5h' or"
        " '250ms', got \"0:10:00\""
    ]


@pytest.fixture
def engine() -> Iterator[Callable[[str, dict[str, Any], list[str]], None]]:
    """What the Pulumi engine hands a program: its stack's name, config as text, secret keys."""

    def hand(stack: str, config: dict[str, Any], secret_keys: list[str]) -> None:
        pulumi.runtime.settings.reset_options(project="cloudrun-tasks", stack=stack)
        pulumi.runtime.set_all_config(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
            secret_keys=secret_keys,
        )

    yield hand
    pulumi.runtime.set_all_config({}, secret_keys=[])
    pulumi.runtime.settings.reset_options()


def test_load_settings_reads_the_engines_stack_config_and_secret_keys(
    engine: Callable[[str, dict[str, Any], list[str]], None],
) -> None:
    config = {**base_config(), "gcp:project": "Bad_Project"}
    engine("prod", config, ["gcp:project"])
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [
        "alerts.notificationChannels: stack 'prod' is production: name at least one"
        " notification channel ('projects/PROJECT/notificationChannels/NUMBER') or"
        " alerts.emails, or its alerts notify nobody",
        "gcp:project: must be a project id (6..30 lowercase letters, digits, hyphens), got"
        " [secret]",
    ]
    engine("Staging", base_config(), [P])
    loaded = load_settings()
    assert (loaded.database_id, loaded.secret_env, loaded.secret_labels) == (
        "tasks-staging",
        True,
        False,
    )
    assert loaded.pipelines["orders"].service.image == IMAGE


def test_a_rules_value_under_a_secret_key_is_hidden_too() -> None:
    config = base_config()
    config[P]["orders"]["service"].update(minInstances=5, maxInstances=4)
    assert problems(config, secret=[P]) == [
        "pipelines.orders.service.minInstances: must be <= maxInstances (4), got [secret]"
    ]
    assert problems(config) == [
        "pipelines.orders.service.minInstances: must be <= maxInstances (4), got 5"
    ]
