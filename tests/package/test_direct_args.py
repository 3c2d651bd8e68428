"""A consumer constructing a component directly gets the checks a stack file gets: every
problem at once, one line each, naming the input, the same lines as the stack-file route."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import IdempotencyStore, TaskPipeline
from components.inputs import PipelineInputs, config_keys, pipeline_inputs, validate
from components.settings import ConfigError, PipelineSettings, settings_from_config

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
PROJECT = "acme-tasks"


def inputs(**changes: Any) -> PipelineInputs:
    pipeline: dict[str, Any] = {
        "location": "us-central1",
        "service": {"image": IMAGE},
        "queue": {"max_attempts": 5},
        "enqueuers": ["serviceAccount:api@acme.iam.gserviceaccount.com"],
    }
    for path, value in changes.items():
        *parents, key = path.split("__")
        here = pipeline
        for parent in parents:
            here = here.setdefault(parent, {})
        here[key] = value
    return pipeline  # type: ignore[return-value]


def direct_error(pipeline: PipelineInputs) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        TaskPipeline(
            "orders",
            {
                "project": PROJECT,
                "pipeline": pipeline,
                "cloudtasks_agent_member": "m",
                "database": "d",
                "cloudscheduler_agent_member": "s",
            },
        )
    return raised.value


def stack_file_lines(pipeline: PipelineInputs) -> list[str]:
    """The same pipeline in a stack file, through the program's own loading."""
    raw = config_keys(PipelineSettings, pipeline)
    with pytest.raises(ConfigError) as raised:
        settings_from_config(
            {"gcp:project": PROJECT, "cloudrun-tasks:pipelines": {"orders": copy.deepcopy(raw)}}
        )
    return [line.removeprefix("pipelines.orders.") for line in raised.value.problems]


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"queue__max_retry_duration": "1 hour"},
            "args.pipeline.queue.maxRetryDuration: must be a duration such as '600s', '10m',"
            " '1.5h' or '250ms', got \"1 hour\"",
        ),
        (
            {"enqueuers": ["api@acme.example"]},
            "args.pipeline.enqueuers.0: must be an IAM member such as"
            " 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com' (prefixes: serviceAccount,"
            ' user, group, principal, principalSet), got "api@acme.example"',
        ),
        (
            {"enqueuers": ["allUsers"]},
            "args.pipeline.enqueuers.0: public members (allUsers, allAuthenticatedUsers) may not"
            ' enqueue tasks, got "allUsers"',
        ),
        (
            {"service__max_instanses": 3},
            "args.pipeline.service.max_instanses: unknown key; did you mean maxInstances?"
            " allowed keys: image, ingress, timeout, concurrency, minInstances, maxInstances,"
            " cpu, memory, env, secrets, app",
        ),
        (
            {"schedules": {"nightly": {"cron": "0 3 L * *"}}},
            "args.pipeline.schedules.nightly.cron: uses L, LW or # (last day, last weekday, nth"
            ' weekday), which Cloud Scheduler does not support, got "0 3 L * *"',
        ),
        (
            {"schedules": {"nightly": {"cron": "0 3 * * *", "time_zone": "Mars/Olympus"}}},
            "args.pipeline.schedules.nightly.timeZone: must be an IANA time zone name such as"
            " 'UTC' or 'Europe/Berlin' (the tz database, as Cloud Scheduler takes it), got"
            ' "Mars/Olympus"',
        ),
        (
            {"schedules": {"nightly": {"cron": "0 3 * * *", "path": "/_tick/x"}}},
            "args.pipeline.schedules.nightly.path: must not start with /_tick (reserved for the"
            ' ticks themselves), got "/_tick/x"',
        ),
        (
            {"payloads": {"threshold": 1000}},
            "args.pipeline.payloads.threshold: needs payloads.enabled: true, got 1000",
        ),
    ],
)
def test_a_bad_input_is_one_line_naming_it(changes: dict[str, Any], line: str) -> None:
    error = direct_error(inputs(**changes))
    assert error.problems == [line]
    assert str(error).splitlines() == [
        "invalid args of TaskPipeline 'orders' (1 problem):",
        f"  {line}",
    ]
    assert [f"args.pipeline.{p}" for p in stack_file_lines(inputs(**changes))] == [line]


def test_every_problem_at_once() -> None:
    error = direct_error(
        inputs(dispatch_deadline="5s", service__timeout="4000s", queue__max_attempts=0)
    )
    assert [p.split(":")[0] for p in error.problems] == [
        "args.pipeline.dispatchDeadline",
        "args.pipeline.queue.maxAttempts",
        "args.pipeline.service.timeout",
    ]


def test_schedules_need_the_scheduler_agent_said_with_the_other_problems() -> None:
    pipeline = inputs(schedules={"nightly": {"cron": "0 3 * * *", "time_zone": "Mars"}})
    with pytest.raises(ConfigError) as raised:
        TaskPipeline(
            "orders",
            {
                "project": PROJECT,
                "pipeline": pipeline,
                "cloudtasks_agent_member": "m",
                "database": "d",
            },
        )
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "args.cloudschedulerAgentMember",
        "args.pipeline.schedules.nightly.timeZone",
    ]
    assert "ProjectApis.cloudschedulerAgentMember" in raised.value.problems[0]


def test_idempotency_store_args_are_checked() -> None:
    with pytest.raises(ConfigError) as raised:
        IdempotencyStore("s", {"project": "P", "database": "x", "location": "nam5", "ttl": "5q"})
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "args.database",
        "args.project",
        "args.ttl",
    ]
    with pytest.raises(ConfigError) as raised:
        IdempotencyStore("s", {"project": "p"})  # type: ignore[typeddict-item]
    assert raised.value.problems == ["args.database: required", "args.location: required"]


def test_validated_settings_round_trip_as_args() -> None:
    """The program hands its validated pipelines to the public component: nothing changes."""
    pipeline = inputs(
        schedules={
            "nightly": {"cron": "0 3 * * *", "time_zone": "Asia/Tokyo", "body": {"a": None}}
        },
        payloads={"enabled": True, "threshold": 10},
    )
    settings = settings_from_config(
        {
            "gcp:project": PROJECT,
            "gcp:region": "europe-west1",
            "cloudrun-tasks:pipelines": {"orders": config_keys(PipelineSettings, pipeline)},
        }
    ).pipelines["orders"]
    again = validate(PipelineSettings, pipeline_inputs(settings), "t", "args")
    assert again == settings
    assert (again.schedules["nightly"].time_zone, again.payloads.threshold) == ("Asia/Tokyo", 10)


def test_labels_and_project_are_checked_as_stack_files_are() -> None:
    with pytest.raises(ConfigError) as raised:
        TaskPipeline(
            "orders",
            {
                "project": "Acme",
                "pipeline": inputs(),
                "cloudtasks_agent_member": "m",
                "database": "d",
                "labels": {"Team": "payments", "pipeline": "x"},
            },
        )
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "args.labels.Team",
        "args.labels.pipeline",
        "args.project",
    ]
    many = {f"k{i}": "v" for i in range(63)}
    with pytest.raises(ConfigError) as raised:
        TaskPipeline(
            "orders",
            {
                "project": PROJECT,
                "pipeline": inputs(),
                "cloudtasks_agent_member": "m",
                "database": "d",
                "labels": many,
            },
        )
    assert raised.value.problems == [
        "args.labels: has 63 labels: at most 62, since Cloud Run takes 64 and the project adds"
        " pipeline, goog-pulumi-provisioned"
    ]


@pytest.mark.parametrize("name", ["google-ads", "Orders", "orders-", "a-very-long-pipeline-name-x"])
def test_a_name_google_would_refuse_is_said_with_the_other_problems(name: str) -> None:
    """The name becomes the dead-letter topic, accounts, service, queue and labels: a
    consumer gets the stack-file route's line for it (`google-ads`: Pub/Sub refuses ids
    starting with `goog`), beside any other problem, before any resource."""
    with pytest.raises(ConfigError) as raised:
        TaskPipeline(
            name,
            {
                "project": PROJECT,
                "pipeline": inputs(queue__max_attempts=0),
                "cloudtasks_agent_member": "m",
                "database": "d",
            },
        )
    lines = [p.split(":")[0] for p in raised.value.problems]
    assert lines == ["args.pipeline.queue.maxAttempts", "name"]
    with pytest.raises(ConfigError) as stack_file:
        settings_from_config(
            {
                "gcp:project": PROJECT,
                "cloudrun-tasks:pipelines": {
                    name: config_keys(PipelineSettings, inputs(queue__max_attempts=0))
                },
            }
        )
    [line] = [p for p in stack_file.value.problems if p.startswith(f"pipelines.{name}:")]
    assert raised.value.problems[1] == "name:" + line.removeprefix(f"pipelines.{name}:")


def test_stack_dashboard_rows_are_checked_all_at_once() -> None:
    from components import StackDashboard

    row = {
        "location": "us-central1",
        "queue_name": "q",
        "service_name": "s",
        "dead_letter_subscription": "d",
    }
    args: Any = {
        "project": "Acme",
        "pipelines": [
            {"name": "orders", "max_instances": 0, **row},
            {"name": "google-ads", "schedules": ["bad name"], **row},
        ],
    }
    with pytest.raises(ConfigError) as raised:
        StackDashboard("dashboard", args)
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "args.pipelines.0.maxInstances",
        "args.pipelines.1.name",
        "args.pipelines.1.schedules.0",
        "args.project",
    ]
