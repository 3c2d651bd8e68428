"""The claims-lost metric and alert, under mocks, and the handler's own log line against the
metric's filter.

Per pipeline: one logs-based metric counting its service's `claim_lost` lines (no label),
one alert on it that waits for it, kept when alerts are disabled. The filter is judged
against the line the handler really writes (FirestoreStore's report of a lost claim,
formatted by handler/logs.py's logging configuration), turned into the LogEntry Cloud
Run's logging agent makes of it and parsed as Google's LogEntry message.

No evaluator of Cloud Logging's filter language is published on PyPI (searched: the one
package naming the language, gcp-observability, builds queries; the others write logs),
so `matches` below evaluates the one form these filters take, a conjunction of
`field="value"` comparisons, and refuses any other form rather than guess at it.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from google.cloud.logging_v2.types import LogEntry
from google.protobuf.json_format import ParseDict

from handler.firestore_store import (
    GENERATION,
    HOLDER,
    FirestoreStore,
    _Held,  # pyright: ignore[reportPrivateUsage]
)
from handler.logs import logging_config
from plan.recorder import Recording
from tests.infra.conftest import PROJECT, base_config, record

P = "cloudrun-tasks:pipelines"
METRIC = "gcp:logging/metric:Metric"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
PIPELINE = "cloudrun-tasks:index:TaskPipeline"
API = "gcp:projects/service:Service"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"


def two_pipelines() -> dict[str, Any]:
    config = base_config()
    config[P]["reports"] = {"service": {"image": IMAGE}, "location": "europe-west1"}
    return config


@pytest.fixture(scope="module")
def rec() -> Recording:
    return record(two_pipelines())


def lost_policy(rec: Recording, pipeline: str) -> Any:
    [policy] = [
        p
        for p in rec.of_type(POLICY)
        if p.inputs["userLabels"] == {"pipeline": pipeline, "alert": "claims-lost"}
    ]
    return policy


@pytest.mark.parametrize(
    ("pipeline", "location"), [("orders", "us-central1"), ("reports", "europe-west1")]
)
def test_each_pipeline_counts_its_own_service_s_lost_claims(
    rec: Recording, pipeline: str, location: str
) -> None:
    service = rec.outputs["pipelines"][pipeline]["serviceName"]
    metric = rec.one(METRIC, f"cloudrun-tasks-{pipeline}-claims-lost")
    assert metric.inputs["name"] == f"cloudrun-tasks-{pipeline}-claims-lost"
    assert metric.inputs["project"] == PROJECT
    assert metric.inputs["filter"] == (
        f'resource.type="cloud_run_revision" AND resource.labels.location="{location}"'
        f' AND resource.labels.service_name="{service}" AND jsonPayload.status="claim_lost"'
    )
    # A counter of entries, with no label: task names and deliveries are unbounded.
    assert metric.inputs["metricDescriptor"] == {
        "metricKind": "DELTA",
        "valueType": "INT64",
        "unit": "1",
    }
    assert not metric.inputs.get("labelExtractors")
    assert not metric.inputs.get("valueExtractor")
    # The pipeline's own, after the APIs (Logging's among them).
    assert metric.parent == rec.one(PIPELINE, pipeline).urn
    assert rec.one(API, "apis-logging").urn in metric.dependencies


@pytest.mark.parametrize("pipeline", ["orders", "reports"])
def test_the_alert_reads_that_metric_after_it_exists(rec: Recording, pipeline: str) -> None:
    metric = rec.one(METRIC, f"cloudrun-tasks-{pipeline}-claims-lost")
    policy = lost_policy(rec, pipeline)
    assert policy.name == f"{pipeline}-claims-lost"
    assert metric.urn in policy.dependencies
    assert (policy.inputs["severity"], policy.inputs["enabled"]) == ("WARNING", True)
    [condition] = policy.inputs["conditions"]
    promql = condition["conditionPrometheusQueryLanguage"]
    service = rec.outputs["pipelines"][pipeline]["serviceName"]
    assert f'service_name="{service}"' in promql["query"]
    assert f"user_cloudrun_tasks_{pipeline}_claims_lost{{" in promql["query"]
    assert promql["query"].endswith("[15m])) > 0")
    assert (promql["duration"], promql["evaluationInterval"]) == ("0s", "60s")
    assert condition["displayName"] == "a claim was lost in the last 900s"


def test_the_runbook_links_the_lines_and_names_the_envelope(rec: Recording) -> None:
    policy = lost_policy(rec, "orders")
    docs = policy.inputs["documentation"]
    content = docs["content"]
    assert docs["subject"] == "cloudrun-tasks orders: claims lost"
    assert "docs/guarantees.md" in content and "fencing token" in content
    for check in ("Firestore", "CPU", "paused", "`takenBy`", "`claimGeneration`"):
        assert check in content, check
    # The logs link opens exactly the lines the metric counts.
    metric = rec.one(METRIC, "cloudrun-tasks-orders-claims-lost")
    [link] = re.findall(
        r"\[claims lost\]\(https://console\.cloud\.google\.com/logs/query;query=([^?]+)", content
    )
    assert unquote(link) == metric.inputs["filter"]


def test_disabled_alerts_keep_the_metric_and_a_window_override_reaches_the_query() -> None:
    config = base_config()
    config[P]["orders"]["alerts"] = {"enabled": False, "claimsLost": {"window": "30m"}}
    rec = record(config)
    assert [m.name for m in rec.of_type(METRIC)] == ["cloudrun-tasks-orders-claims-lost"]
    policy = lost_policy(rec, "orders")
    assert policy.inputs["enabled"] is False
    [condition] = policy.inputs["conditions"]
    assert condition["conditionPrometheusQueryLanguage"]["query"].endswith("[30m])) > 0")
    assert "in the last 1800s" in policy.inputs["documentation"]["content"]


# --- the handler's line against the filter -----------------------------------------------

# What Cloud Run's agent moves out of a JSON line into LogEntry fields (logging/docs/
# structured-logging, "Special JSON fields in messages"); the rest stays in jsonPayload.
SPECIAL = {"severity": "severity", "time": "timestamp"}
SPECIAL_PREFIX = "logging.googleapis.com/"
TERM = re.compile(r'([A-Za-z_.]+)="([^"\\]*)"')


def as_cloud_run_entry(line: str, project: str, location: str, service: str) -> dict[str, Any]:
    """The LogEntry Cloud Run writes for LINE, a JSON object the service printed on stdout."""
    payload = json.loads(line)
    entry: dict[str, Any] = {
        "logName": f"projects/{project}/logs/run.googleapis.com%2Fstdout",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": project,
                "location": location,
                "service_name": service,
                "revision_name": f"{service}-00001-abc",
                "configuration_name": service,
            },
        },
    }
    for field, target in SPECIAL.items():
        if field in payload:
            entry[target] = payload.pop(field)
    entry["jsonPayload"] = {k: v for k, v in payload.items() if not k.startswith(SPECIAL_PREFIX)}
    return entry


def matches(log_filter: str, entry: dict[str, Any]) -> bool:
    """LOG_FILTER, a conjunction of `field="value"` comparisons, holds for ENTRY."""
    terms = log_filter.split(" AND ")
    parsed = [TERM.fullmatch(term) for term in terms]
    assert all(parsed), f"not a conjunction of equalities: {log_filter}"
    for match in parsed:
        assert match is not None
        value: Any = entry
        for part in match.group(1).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or value != match.group(2):
            return False
    return True


@pytest.fixture
def stdout() -> Iterator[Callable[[], str]]:
    """The handler's real logging configuration, its stdout handler writing to a buffer."""
    config = logging_config()
    buffer = io.StringIO()
    config["handlers"]["stdout"]["stream"] = buffer
    logging.config.dictConfig(config)
    try:
        yield buffer.getvalue
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def lost_line(stdout: Callable[[], str]) -> str:
    """The line FirestoreStore writes when another delivery took its task over."""
    store = FirestoreStore(project=PROJECT, database="tasks", lease=timedelta(seconds=5))
    held = _Held("owner-token", 0.0, generation=1, holder="t1 retry 0 on a")
    taken = {HOLDER: "t1 retry 3 on b", GENERATION: 2, "state": "claimed"}
    store._lost("orders-0a1b2c3/t1", held, taken, "its work is still running here")  # pyright: ignore[reportPrivateUsage]
    assert store.claims_lost == 1
    [line] = [x for x in stdout().splitlines() if x]
    return line


def test_the_handler_s_claim_lost_line_is_what_the_metric_counts(
    rec: Recording, stdout: Callable[[], str]
) -> None:
    line = lost_line(stdout)
    service = rec.outputs["pipelines"]["orders"]["serviceName"]
    entry = as_cloud_run_entry(line, PROJECT, "us-central1", service)
    # Google's LogEntry message takes it as it is (an unknown field would fail here).
    ParseDict(entry, LogEntry.pb(LogEntry()), ignore_unknown_fields=False)
    assert entry["severity"] == "ERROR"
    assert (entry["jsonPayload"]["queue"], entry["jsonPayload"]["taskName"]) == (
        "orders-0a1b2c3",
        "t1",
    )
    assert entry["jsonPayload"]["delivery"] == "t1 retry 0 on a"
    assert entry["jsonPayload"]["takenBy"] == "t1 retry 3 on b"
    orders = rec.one(METRIC, "cloudrun-tasks-orders-claims-lost").inputs["filter"]
    reports = rec.one(METRIC, "cloudrun-tasks-reports-claims-lost").inputs["filter"]
    assert matches(orders, entry)
    # Another pipeline's metric does not count it.
    assert not matches(reports, entry)


def test_the_filter_counts_nothing_else(rec: Recording, stdout: Callable[[], str]) -> None:
    """Lines that must not count: another line of the handler's, the same line from another
    service or region, and a line that is not JSON (textPayload)."""
    line = lost_line(stdout)
    service = rec.outputs["pipelines"]["orders"]["serviceName"]
    orders = rec.one(METRIC, "cloudrun-tasks-orders-claims-lost").inputs["filter"]
    other_status = json.loads(line) | {"status": "done"}
    assert not matches(
        orders, as_cloud_run_entry(json.dumps(other_status), PROJECT, "us-central1", service)
    )
    assert not matches(orders, as_cloud_run_entry(line, PROJECT, "us-central1", "other-0a1b2c3"))
    assert not matches(orders, as_cloud_run_entry(line, PROJECT, "europe-west1", service))
    text = as_cloud_run_entry(line, PROJECT, "us-central1", service)
    text["textPayload"] = json.dumps(text.pop("jsonPayload"))
    assert not matches(orders, text)


def test_the_evaluator_refuses_a_form_it_does_not_know() -> None:
    with pytest.raises(AssertionError, match="not a conjunction"):
        matches('resource.type="cloud_run_revision" OR severity>=ERROR', {})
