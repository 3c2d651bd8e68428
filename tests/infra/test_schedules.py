"""Schedules under mocks: one Cloud Scheduler job per schedule, the ticker identity and its
grants exactly, the alert per schedule, and every bad schedule key in one ConfigError."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

import pytest
import yaml

from components.settings import ConfigError
from components.settings.schedule import MAX_BODY_BYTES
from handler.tick_wire import QUEUE_HEADER, TICK_PREFIX
from plan.recorder import RecordedResource, Recording, run_program
from tests.infra.conftest import PROJECT, ROOT, base_config, record

P = "cloudrun-tasks:pipelines"
JOB = "gcp:cloudscheduler/job:Job"
ACCOUNT = "gcp:serviceaccount/account:Account"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
API = "gcp:projects/service:Service"
LOG_METRIC = "gcp:logging/metric:Metric"
MEMBER_TYPES = {
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:cloudtasks/queueIamMember:QueueIamMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:pubsub/topicIAMMember:TopicIAMMember",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
    "gcp:projects/iAMMember:IAMMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
}
TICKER = f"serviceAccount:orders-ticker@{PROJECT}.iam.gserviceaccount.com"
RUNTIME = f"serviceAccount:orders-runtime@{PROJECT}.iam.gserviceaccount.com"
SCHEDULES = {
    "nightly-report": {
        "cron": "0 3 * * *",
        "timeZone": "Europe/Berlin",
        "body": {"kind": "report"},
        "path": "/reports",
    },
    "every_minute": {"cron": "* * * * *", "paused": True},
}


def with_schedules(schedules: Any) -> dict[str, Any]:
    config = base_config()
    config[P]["orders"]["schedules"] = copy.deepcopy(schedules)
    return config


@pytest.fixture(scope="module")
def rec() -> Recording:
    return record(with_schedules(SCHEDULES))


def _member_grants(rec: Recording, member: str) -> set[tuple[str, str, str]]:
    """(resource type, role, granted-on name) of every grant to MEMBER."""
    by_urn = {r.urn: r for r in rec.resources}
    grants = set()
    for r in rec.resources:
        if r.type in MEMBER_TYPES and r.inputs.get("member") == member:
            on = r.inputs.get("name") or r.inputs.get("serviceAccountId") or r.inputs.get("project")
            grants.add((r.type.rsplit(":", 1)[-1], r.inputs["role"], str(on)))
    assert by_urn  # the recording holds resources at all
    return grants


def _service(rec: Recording) -> RecordedResource:
    return rec.one("gcp:cloudrunv2/service:Service", "orders")


def _queue(rec: Recording) -> RecordedResource:
    return rec.one("gcp:cloudtasks/queue:Queue", "orders")


def test_one_job_per_schedule_with_cron_zone_body_and_target(rec: Recording) -> None:
    jobs = {r.name: r for r in rec.of_type(JOB)}
    assert set(jobs) == {"orders_nightly-report", "orders_every_minute"}
    service_url = _service(rec).outputs["uri"]
    queue = _queue(rec).outputs
    queue_path = f"projects/{PROJECT}/locations/us-central1/queues/{queue['name']}"

    nightly = jobs["orders_nightly-report"].inputs
    assert nightly["name"] == "orders_nightly-report"
    assert nightly["region"] == "us-central1"
    assert (nightly["schedule"], nightly["timeZone"], nightly["paused"]) == (
        "0 3 * * *",
        "Europe/Berlin",
        False,
    )
    target = nightly["httpTarget"]
    assert json.loads(base64.b64decode(target["body"])) == {"kind": "report"}
    assert target["uri"] == f"{service_url}{TICK_PREFIX}/reports"
    assert target["httpMethod"] == "POST"
    assert target["headers"] == {QUEUE_HEADER: queue_path, "Content-Type": "application/json"}
    assert target["oidcToken"] == {
        "serviceAccountEmail": TICKER.removeprefix("serviceAccount:"),
        "audience": service_url,
    }
    assert nightly["retryConfig"]["retryCount"] == 5

    minute = jobs["orders_every_minute"].inputs
    assert (minute["schedule"], minute["timeZone"], minute["paused"]) == ("* * * * *", "UTC", True)
    assert "body" not in minute["httpTarget"]
    assert minute["httpTarget"]["uri"] == f"{service_url}{TICK_PREFIX}/"


def test_the_ticker_and_runtime_hold_exactly_what_a_tick_needs(rec: Recording) -> None:
    service, queue = _service(rec).outputs["name"], _queue(rec).outputs["name"]
    assert _member_grants(rec, TICKER) == {("ServiceIamMember", "roles/run.invoker", service)}
    # The runtime account's grants without schedules, plus enqueuer on its own queue only.
    plain = record(base_config())
    assert _member_grants(rec, RUNTIME) == _member_grants(plain, RUNTIME) | {
        ("QueueIamMember", "roles/cloudtasks.enqueuer", queue)
    }
    agent_grants = [
        r
        for r in rec.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.name.startswith("orders-ticker-")
    ]
    assert [(g.inputs["role"], g.name) for g in agent_grants] == [
        (
            "roles/iam.serviceAccountOpenIdTokenCreator",
            "orders-ticker-iam-serviceAccountOpenIdTokenCreator-cloudscheduler-agent",
        )
    ]
    agent = rec.one("gcp:projects/serviceIdentity:ServiceIdentity", "apis-cloudscheduler-agent")
    assert agent_grants[0].inputs["member"] == agent.outputs["member"]
    assert agent.inputs["service"] == "cloudscheduler.googleapis.com"


def test_the_scheduler_and_logging_apis_are_enabled_and_kept_on_destroy(
    rec: Recording,
) -> None:
    """Cloud Scheduler for the jobs, Logging for the tick metric (projects.metrics.create);
    the metric waits for the APIs. Logging is on in every stack (the claims-lost metric of
    every pipeline), Cloud Scheduler only with schedules."""
    for name, service in (
        ("apis-cloudscheduler", "cloudscheduler.googleapis.com"),
        ("apis-logging", "logging.googleapis.com"),
    ):
        api = rec.one(API, name)
        assert api.inputs["service"] == service
        assert api.inputs["disableOnDestroy"] is False
    metric = rec.one(LOG_METRIC, "cloudrun-tasks-orders-ticks")
    assert rec.one(API, "apis-logging").urn in metric.dependencies
    plain = {r.inputs["service"] for r in record(base_config()).of_type(API)}
    assert "cloudscheduler.googleapis.com" not in plain and "logging.googleapis.com" in plain


def test_a_failing_ticks_alert_per_schedule_scoped_to_its_job(rec: Recording) -> None:
    alerts = {r.name: r for r in rec.of_type(ALERT) if r.name.endswith("-failing-ticks")}
    assert set(alerts) == {
        "orders_nightly-report-failing-ticks",
        "orders_every_minute-failing-ticks",
    }
    metric = rec.one(LOG_METRIC, "cloudrun-tasks-orders-ticks")
    for job, alert in (
        ("orders_nightly-report", alerts["orders_nightly-report-failing-ticks"]),
        ("orders_every_minute", alerts["orders_every_minute-failing-ticks"]),
    ):
        query = alert.inputs["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
        assert f'job_id="{job}"' in query
        assert 'monitored_resource="cloud_scheduler_job"' in query
        assert "logging_googleapis_com:user_cloudrun_tasks_orders_ticks" in query
        assert f'"{job}"' in metric.inputs["filter"]
        assert metric.urn in alert.dependencies


def test_without_schedules_nothing_of_them_is_registered() -> None:
    plain = record(base_config())
    assert plain.of_type(JOB) == []
    # The one logs-based metric left is every pipeline's claims-lost count (test_claims_lost).
    assert [m.name for m in plain.of_type(LOG_METRIC)] == ["cloudrun-tasks-orders-claims-lost"]
    assert [r.name for r in plain.of_type(ACCOUNT) if r.name.endswith("-ticker")] == []


def test_a_schedule_in_every_stack_file_is_a_job(stack_recordings: dict[str, Recording]) -> None:
    from plan.recorder import stack_config

    for stack, recording in stack_recordings.items():
        pipelines = json.loads(json.dumps(stack_config(ROOT, stack)[P]))
        expected = {
            f"{pipeline}_{schedule}": spec["cron"]
            for pipeline, p in pipelines.items()
            for schedule, spec in p.get("schedules", {}).items()
        }
        jobs = {r.name: r.inputs["schedule"] for r in recording.of_type(JOB)}
        assert jobs == expected, stack


BIG = "x" * (MAX_BODY_BYTES + 1)


@pytest.mark.parametrize(
    ("schedules", "lines"),
    [
        (
            {"a": {"cron": "61 * * * *"}},
            ["pipelines.orders.schedules.a.cron: is not a valid unix-cron schedule: Bad minute"],
        ),
        (
            {"a": {"cron": "* * *"}},
            ["pipelines.orders.schedules.a.cron: must be a unix-cron schedule of 5 fields"],
        ),
        (
            # A macro is named as unsupported, with the fields expected instead.
            {"a": {"cron": "@daily"}},
            [
                "pipelines.orders.schedules.a.cron: @daily and the other @ macros are not"
                " supported: write the 5 unix-cron fields (minute hour day-of-month month"
                " day-of-week), e.g. '0 0 * * *' for daily"
            ],
        ),
        (
            {"a": {"cron": "0 0 L * *"}},
            ["pipelines.orders.schedules.a.cron: uses L, LW or #"],
        ),
        (
            {"a": {"cron": "* * * * *", "timeZone": "Mars/Olympus"}},
            ["pipelines.orders.schedules.a.timeZone: must be an IANA time zone name"],
        ),
        (
            {"a": {"cron": "* * * * *", "body": {"blob": BIG}}},
            [f"pipelines.orders.schedules.a.body: is {len(BIG) + 11} bytes as JSON"],
        ),
        (
            {"bad name!": {"cron": "* * * * *"}},
            ["pipelines.orders.schedules.bad name!: must be 1..477 letters, digits"],
        ),
        (
            {"a": {"cron": "* * * * *", "path": "/_tick/x"}},
            ["pipelines.orders.schedules.a.path: must not start with /_tick"],
        ),
        (
            # Every problem at once, in key order.
            {
                "a": {"cron": "61 * * * *", "timeZone": "Nowhere", "bogus": 1},
                "b": {"cron": "* * *", "body": {"blob": BIG}},
            },
            [
                "pipelines.orders.schedules.a.bogus: unknown key",
                "pipelines.orders.schedules.a.cron: is not a valid unix-cron schedule",
                "pipelines.orders.schedules.a.timeZone: must be an IANA time zone name",
                "pipelines.orders.schedules.b.body: is ",
                "pipelines.orders.schedules.b.cron: must be a unix-cron schedule of 5 fields",
            ],
        ),
    ],
)
def test_bad_schedules_are_one_config_error_naming_each_key(
    schedules: dict[str, Any], lines: list[str]
) -> None:
    recording = Recording(project="cloudrun-tasks", stack="test")
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "test", with_schedules(schedules), into=recording)
    problems = caught.value.problems
    assert len(problems) == len(lines), problems
    for problem, start in zip(problems, lines, strict=True):
        assert problem.startswith(start), problems
    assert recording.resources == []


def test_the_documented_schedule_example_and_its_errors_are_the_real_ones() -> None:
    section = (ROOT / "docs" / "concepts" / "schedules.md").read_text(encoding="utf-8")
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "schedules:" in b]
    schedules = yaml.safe_load(example)["orders"]["schedules"]
    jobs = {r.name: r.inputs for r in record(with_schedules(schedules)).of_type(JOB)}
    assert jobs["orders_nightly-report"]["schedule"] == "0 3 * * *"
    [errors] = [b for b in re.findall(r"```text\n(.*?)```", section, re.S) if "cron:" in b]
    with pytest.raises(ConfigError) as caught:
        record(with_schedules({"a": {"cron": "61 * * * *"}, "b": {"cron": "* * *"}}))
    assert caught.value.problems == errors.splitlines()
