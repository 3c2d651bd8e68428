"""Every resource of every stack, and of a config with every option on, parsed strictly by
the message Google's API takes for it (tests/judges/api_types.py), and every id it is
given checked against Google's rule for that field (components/name_rules.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import ParseError

from components import name_rules as rules
from plan.recorder import RecordedResource, Recording
from tests.infra.conftest import STACKS
from tests.judges.api_types import TABLE, parse
from tests.judges.conftest import EVERY_OPTION_STACK

JUDGED = [*STACKS, EVERY_OPTION_STACK]


def custom(rec: Recording) -> list[RecordedResource]:
    return [r for r in rec.resources if r.custom]


@pytest.mark.parametrize("stack", JUDGED)
def test_every_resource_parses_as_googles_message(stack: str, judged: dict[str, Recording]) -> None:
    resources = custom(judged[stack])
    assert resources
    unjudged = sorted({r.type for r in resources} - set(TABLE))
    assert not unjudged, f"no API message mapped for {unjudged}: add it to api_types.TABLE"
    for resource in resources:
        parse(resource)


def test_every_mapping_is_used(judged: dict[str, Recording]) -> None:
    """A table entry no stack registers would judge nothing: the every-option config
    must reach each type."""
    assert {r.type for r in custom(judged[EVERY_OPTION_STACK])} == set(TABLE)


def ids(rec: Recording) -> Iterator[tuple[rules.NameRule, str, str]]:
    """(rule, id, where) for every id, display name and derived text the recording gives
    Google (tests/infra/test_derived_text_limits.py: the same at maximum name lengths)."""
    for r in custom(rec):
        where = f"{r.type} {r.name}"
        out: dict[str, Any] = dict(r.outputs)
        if r.type in ("gcp:pubsub/topic:Topic", "gcp:pubsub/subscription:Subscription"):
            yield rules.PUBSUB_ID, out["name"], where
        elif r.type == "gcp:cloudrunv2/service:Service":
            yield rules.RUN_SERVICE, out["name"], where
        elif r.type == "gcp:cloudtasks/queue:Queue":
            yield rules.QUEUE_ID, out["name"], where
        elif r.type == "gcp:serviceaccount/account:Account":
            yield rules.SERVICE_ACCOUNT_ID, out["accountId"], where
            yield rules.SERVICE_ACCOUNT_DISPLAY_NAME, out["displayName"], where
        elif r.type == "gcp:cloudscheduler/job:Job":
            yield rules.SCHEDULER_JOB_DESCRIPTION, out["description"], where
        elif r.type == "gcp:logging/metric:Metric":
            yield rules.LOG_METRIC_NAME, out["name"], where
            yield rules.LOG_METRIC_DESCRIPTION, out["description"], where
        elif r.type == "gcp:storage/bucket:Bucket":
            yield rules.BUCKET_NAME, out["name"], where
        elif r.type == "gcp:firestore/database:Database":
            yield rules.FIRESTORE_DATABASE_ID, out["name"], where
        elif r.type in (
            "gcp:monitoring/alertPolicy:AlertPolicy",
            "gcp:monitoring/notificationChannel:NotificationChannel",
        ):
            yield rules.ALERT_DISPLAY_NAME, out["displayName"], where
            for condition in out.get("conditions") or []:
                yield rules.ALERT_CONDITION_DISPLAY_NAME, condition["displayName"], where
            if doc := out.get("documentation"):
                yield rules.ALERT_SUBJECT, doc["subject"], where
                yield rules.ALERT_DOCUMENTATION, doc["content"], where
        elif r.type == "gcp:monitoring/dashboard:Dashboard":
            yield (
                rules.DASHBOARD_DISPLAY_NAME,
                json.loads(out["dashboardJson"])["displayName"],
                where,
            )
        for key, value in (out.get("userLabels") or {}).items():
            yield rules.ALERT_USER_LABEL, key, where
            yield rules.ALERT_USER_LABEL, value, where
        labels = out.get("labels")
        if isinstance(labels, dict) and r.type != (
            "gcp:monitoring/notificationChannel:NotificationChannel"  # channel settings
        ):
            for key, value in labels.items():
                yield rules.LABEL_KEY, key, where
                yield rules.LABEL_VALUE, value, where


@pytest.mark.parametrize("stack", JUDGED)
def test_every_id_follows_googles_rule_for_its_field(
    stack: str, judged: dict[str, Recording]
) -> None:
    checked = list(ids(judged[stack]))
    # dev and the every-option config enable payloads: the others have no bucket.
    unused = set() if stack in (EVERY_OPTION_STACK, "dev") else {rules.BUCKET_NAME}
    if not judged[stack].of_type("gcp:cloudscheduler/job:Job"):
        unused |= {rules.SCHEDULER_JOB_DESCRIPTION}
    assert {rule for rule, _, _ in checked} == set(rules.RULES) - unused
    broken = [
        f"{where}: {rule.what} {value!r} {problem}"
        for rule, value, where in checked
        if (problem := rule.problem(value)) is not None
    ]
    assert not broken


# --- each judge can fail: values Google refuses -----------------------------------------


def _one(rec: Recording, type_: str) -> RecordedResource:
    return next(r for r in rec.resources if r.type == type_)


def _with(resource: RecordedResource, **inputs: Any) -> RecordedResource:
    return dataclasses.replace(resource, inputs={**resource.inputs, **inputs})


QUEUE = "gcp:cloudtasks/queue:Queue"
SERVICE = "gcp:cloudrunv2/service:Service"
JOB = "gcp:cloudscheduler/job:Job"
METRIC = "gcp:logging/metric:Metric"


@pytest.mark.parametrize(
    ("type_", "change", "refused"),
    [
        # An enum value the API does not have.
        (QUEUE, {"desiredState": "STOPPED"}, "STOPPED"),
        (SERVICE, {"ingress": "INGRESS_TRAFFIC_PRIVATE"}, "INGRESS_TRAFFIC_PRIVATE"),
        # Durations go to Google as decimal seconds: `15m` is how config spells it.
        (
            QUEUE,
            {"retryConfig": {"maxBackoff": "15m", "maxAttempts": 5}},
            "15m",
        ),
        # A whole number of attempts.
        (QUEUE, {"retryConfig": {"maxAttempts": 2.5}}, "2.5"),
        # The output-only field that fails on create (facts: terraform-provider-google
        # #9539) is in the message; a misspelt one is not.
        (QUEUE, {"rateLimits": {"maxBurst": 10}}, "maxBurst"),
        (
            "gcp:firestore/field:Field",
            {"ttlConfig": {"expirationOffset": "31d"}},
            "31d",
        ),
        ("gcp:firestore/database:Database", {"type": "NATIVE"}, "NATIVE"),
        # Subscription retention in config's spelling, and an alert's auto-close.
        (
            "gcp:pubsub/subscription:Subscription",
            {"messageRetentionDuration": "7d"},
            "7d",
        ),
        (
            "gcp:monitoring/alertPolicy:AlertPolicy",
            {"alertStrategy": {"autoClose": "30m"}},
            "30m",
        ),
        # A job's attempt deadline in config's spelling, an HTTP method Cloud Scheduler
        # does not have, a fractional retry count.
        (JOB, {"attemptDeadline": "15m"}, "15m"),
        (
            JOB,
            {"httpTarget": {"uri": "https://x.run.app/_tick/", "httpMethod": "FETCH"}},
            "FETCH",
        ),
        (JOB, {"retryConfig": {"retryCount": 2.5}}, "2.5"),
        # A log metric's kind and label type outside google.api.MetricDescriptor's enums.
        (METRIC, {"metricDescriptor": {"metricKind": "COUNTER", "valueType": "INT64"}}, "COUNTER"),
        (
            METRIC,
            {
                "metricDescriptor": {
                    "metricKind": "DELTA",
                    "valueType": "INT64",
                    "labels": [{"key": "status", "valueType": "TEXT"}],
                }
            },
            "TEXT",
        ),
        # An IAM condition with a field google.type.Expr does not have.
        (
            "gcp:projects/iAMMember:IAMMember",
            {"condition": {"expression": "true", "title": "t", "scope": "database"}},
            "scope",
        ),
    ],
)
def test_google_refuses(
    type_: str, change: dict[str, Any], refused: str, judged: dict[str, Recording]
) -> None:
    resource = _one(judged[EVERY_OPTION_STACK], type_)
    parse(resource)
    with pytest.raises(ParseError, match=refused):
        parse(_with(resource, **change))


def test_a_provider_only_field_left_undropped_is_refused(judged: dict[str, Recording]) -> None:
    """The drop list is what lets deletionPolicy pass: without it, the judge refuses."""
    resource = _one(judged[EVERY_OPTION_STACK], "gcp:firestore/database:Database")
    undropped = dataclasses.replace(TABLE[resource.type], dropped=("project",))
    with pytest.raises(ParseError, match="deletionPolicy"):
        parse(resource, undropped)


def test_a_job_sent_with_paused_is_refused(judged: dict[str, Recording]) -> None:
    """`paused` is the provider's: Job has no such field, only the `state` that
    jobs.pause and jobs.resume leave; the wrap is what lets it pass."""
    resource = _one(judged[EVERY_OPTION_STACK], JOB)
    assert resource.inputs["paused"] is True
    unwrapped = dataclasses.replace(TABLE[JOB], wrap=None)
    with pytest.raises(ParseError, match="paused"):
        parse(resource, unwrapped)


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (rules.PUBSUB_ID, "google-ads-dead-letters-0a1b2c3"),
        (rules.PUBSUB_ID, "ab"),
        (rules.PUBSUB_ID, "1orders"),
        (rules.SERVICE_ACCOUNT_ID, "a-inv"),
        (rules.SERVICE_ACCOUNT_ID, "orders-invoker-" + "x" * 16),
        (rules.RUN_SERVICE, "orders-" + "x" * 43),
        (rules.RUN_SERVICE, "Orders"),
        (rules.QUEUE_ID, "orders_queue"),
        (rules.FIRESTORE_DATABASE_ID, "(default)"),
        (rules.FIRESTORE_DATABASE_ID, "tasks-"),
        (rules.ALERT_DISPLAY_NAME, "x" * 513),
        (rules.DASHBOARD_DISPLAY_NAME, ""),
        (rules.LABEL_KEY, "Team"),
        (rules.LABEL_VALUE, "x" * 64),
        (rules.ALERT_USER_LABEL, "Orders"),
    ],
)
def test_each_rule_refuses_what_its_source_refuses(rule: rules.NameRule, value: str) -> None:
    assert rule.problem(value) is not None


def test_the_service_with_an_app_parses_as_two_containers(judged: dict[str, Recording]) -> None:
    """The handler and its app reach Google as two run.v2 Containers: the ingress one with
    its port and dependsOn, the app with its probe; without the ports wrap (pulumi-gcp's
    single object), Google's type refuses the body."""
    resource = next(
        r
        for r in custom(judged[EVERY_OPTION_STACK])
        if r.type == "gcp:cloudrunv2/service:Service" and r.name == "orders"
    )
    message = parse(resource)
    handler, app = message.template.containers  # type: ignore[attr-defined]
    assert (handler.name, [p.container_port for p in handler.ports]) == ("handler", [8080])
    assert list(handler.depends_on) == ["app"]
    assert (app.name, len(app.ports)) == ("app", 0)
    assert app.startup_probe.http_get.path == "/healthz"
    assert app.startup_probe.http_get.port == 9000
    assert app.startup_probe.failure_threshold == 40
    unwrapped = dataclasses.replace(TABLE[resource.type], wrap=None)
    with pytest.raises(ParseError, match="ports"):
        parse(resource, unwrapped)
    probe = {**resource.inputs["template"]["containers"][1]["startupProbe"], "exec": {}}
    containers = [
        resource.inputs["template"]["containers"][0],
        {**resource.inputs["template"]["containers"][1], "startupProbe": probe},
    ]
    with pytest.raises(ParseError, match="exec"):
        parse(_with(resource, template={**resource.inputs["template"], "containers": containers}))
