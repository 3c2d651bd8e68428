"""Every PromQL expression of the alert policies and the dashboard, parsed by a PromQL parser
(promql-parser, the Rust crate's Python binding), and every metric and label it selects
checked against the kept catalogue of Cloud Monitoring's metrics and monitored resources
(monitoring_catalogue.yaml, each entry with its page) and against the logs-based metrics
the stack defines. Each selector must also pin its resource's identifying labels to one
pipeline's own queue, service, subscription, Cloud Scheduler jobs or payload bucket."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from components import observability as q
from components.observability import PipelineNames
from plan.recorder import RecordedResource, Recording
from tests.judges.conftest import EVERY_OPTION_STACK
from tests.judges.test_api_types import JUDGED

CATALOGUE = Path(__file__).with_name("monitoring_catalogue.yaml")
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
LOG_METRIC = "gcp:logging/metric:Metric"
JOB = "gcp:cloudscheduler/job:Job"
PIPELINE = "cloudrun-tasks:index:TaskPipeline"
USER_METRIC_PREFIX = "logging.googleapis.com/user/"
DISTRIBUTION_SERIES = ("_bucket", "_count", "_sum")
Series = dict[str, dict[str, Any]]


def promql_name(metric_type: str) -> str:
    """Cloud Monitoring's PromQL name of a metric type (promql-mapping): the first `/`
    becomes `:`, every other special character (`.`, `/`, `-`, ...) becomes `_`."""
    domain, _, path = metric_type.partition("/")
    return re.sub(r"\W", "_", domain) + ":" + re.sub(r"\W", "_", path)


def _series(metric_type: str, metric: dict[str, Any]) -> Series:
    """Every PromQL series name METRIC has, with the labels each carries."""
    name = promql_name(metric_type)
    if metric["value"] != "DISTRIBUTION":
        return {name: metric}
    return {
        name + suffix: {
            **metric,
            "labels": [*metric["labels"], *(["le"] if suffix == "_bucket" else [])],
        }
        for suffix in DISTRIBUTION_SERIES
    }


@cache
def catalogue() -> tuple[dict[str, Any], Series]:
    """(monitored resources, metrics by every PromQL series name they have)."""
    data = yaml.safe_load(CATALOGUE.read_text())
    series: Series = {}
    for metric_type, metric in data["metrics"].items():
        series |= _series(metric_type, metric)
    return data["monitored_resources"], series


def owner(rec: Recording, resource: RecordedResource) -> str:
    """The pipeline whose component RESOURCE belongs to."""
    by_urn = {r.urn: r for r in rec.resources}
    parent = by_urn.get(resource.parent)
    while parent is not None and parent.type != PIPELINE:
        parent = by_urn.get(parent.parent)
    assert parent is not None, f"{resource.name} belongs to no pipeline"
    return parent.name


def logs_based_series(rec: Recording) -> Series:
    """The stack's own logs-based metrics as Cloud Monitoring will hold them (see the
    catalogue's header): type from the name, resource from the filter, labels from the
    extractors, each marked with the pipeline that owns it."""
    resources, _ = catalogue()
    series: Series = {}
    for metric in rec.of_type(LOG_METRIC):
        descriptor = metric.inputs["metricDescriptor"]
        [resource] = re.findall(r'resource\.type="([^"]+)"', metric.inputs["filter"])
        assert resource in resources, f"{metric.name}: {resource} is not catalogued"
        labels = [label["key"] for label in descriptor.get("labels", [])]
        assert sorted(labels) == sorted(metric.inputs.get("labelExtractors", {})), metric.name
        series |= _series(
            USER_METRIC_PREFIX + metric.inputs["name"],
            {
                "resource": resource,
                "kind": descriptor["metricKind"],
                "value": descriptor["valueType"],
                "labels": labels,
                "owner": owner(rec, metric),
            },
        )
    return series


def _pinned_values(matcher: Any) -> set[str] | None:
    """What an `=` or `=~` matcher selects, as a set of values; None for anything else
    (`!=`, `!~`, or a regex other than a plain alternation)."""
    if matcher.op == promql_parser.MatchOp.Equal:
        return {matcher.value}
    if matcher.op == promql_parser.MatchOp.Re and re.fullmatch(r"[\w-]+(\|[\w-]+)*", matcher.value):
        return set(matcher.value.split("|"))
    return None


def problems(
    query: str, pinned: Mapping[str, set[str]], own_series: Series | None = None
) -> list[str]:
    """What Cloud Monitoring would not find, or what selects beyond its pipeline, in QUERY.

    PINNED: for each identifying label, the values this query may select (one pipeline's
    own for an alert, any of the stack's pipelines' for the dashboard), and under
    `pipeline` the pipelines whose logs-based metrics it may read. OWN_SERIES: the
    stack's logs-based metrics (logs_based_series). A parse error raises ValueError."""
    resources, catalogued = catalogue()
    series = {**catalogued, **(own_series or {})}
    found: list[str] = []
    selected: list[dict[str, Any]] = []
    grouped: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            metric = series.get(node.name or "")
            if metric is None:
                found.append(f"{node.name}: not a metric in the catalogue")
                return
            selected.append(metric)
            if "owner" in metric and metric["owner"] not in pinned.get("pipeline", set()):
                found.append(f"{node.name}: pipeline {metric['owner']!r}'s metric")
            resource = resources[metric["resource"]]
            allowed = {"monitored_resource", *resource["labels"], *metric["labels"]}
            selects: dict[str, set[str] | None] = {}
            for matcher in node.matchers.matchers:
                if matcher.name not in allowed:
                    found.append(f"{node.name}: no label {matcher.name!r} (has {sorted(allowed)})")
                selects[matcher.name] = _pinned_values(matcher)
            if selects.get("monitored_resource") != {metric["resource"]}:
                found.append(f"{node.name}: must select monitored_resource={metric['resource']!r}")
            for label in resource["identifying"]:
                values = selects.get(label)
                if not values or not values <= pinned.get(label, set()):
                    found.append(
                        f"{node.name}: {label} selects {sorted(values or ['anything'])}, not"
                        f" only of {sorted(pinned.get(label, set()))}"
                    )
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouped.extend(node.modifier.labels)

    promql_parser.walk(promql_parser.parse(query), visit)
    # A series carries its metric's labels and its monitored resource's.
    labels = {
        label
        for metric in selected
        for label in [*metric["labels"], *resources[metric["resource"]]["labels"]]
    }
    found += [
        f"by ({label}): no selected series has it" for label in grouped if label not in labels
    ]
    return found


def pins(rec: Recording, pipelines: list[str]) -> dict[str, set[str]]:
    """The identifying label values of PIPELINES' queues, services, subscriptions, Cloud
    Scheduler jobs and payload buckets (of those with payloads), and the PIPELINES
    themselves (whose logs-based metrics)."""
    outputs = rec.outputs["pipelines"]
    project = {r.inputs["project"] for r in rec.resources if r.type == POLICY}
    return {
        "pipeline": set(pipelines),
        "job_id": {j.inputs["name"] for j in rec.of_type(JOB) if owner(rec, j) in pipelines},
        "project_id": project,
        "location": {outputs[p]["location"] for p in pipelines},
        "queue_id": {outputs[p]["queueName"] for p in pipelines},
        "service_name": {outputs[p]["serviceName"] for p in pipelines},
        "subscription_id": {
            outputs[p]["deadLetterSubscription"].rsplit("/", 1)[1] for p in pipelines
        },
        "bucket_name": {
            outputs[p]["payloadBucket"] for p in pipelines if "payloadBucket" in outputs[p]
        },
    }


def jobs(rec: Recording) -> list[RecordedResource]:
    return rec.of_type(JOB)


def queries(rec: Recording) -> Iterator[tuple[str, str, dict[str, set[str]]]]:
    """(where, query, what it may select) for every PromQL expression the stack deploys."""
    for policy in rec.of_type(POLICY):
        pinned = pins(rec, [policy.inputs["userLabels"]["pipeline"]])
        for condition in policy.inputs["conditions"]:
            yield policy.name, condition["conditionPrometheusQueryLanguage"]["query"], pinned
    every = pins(rec, list(rec.outputs["pipelines"]))
    [dashboard] = rec.of_type(DASHBOARD)
    for tile in json.loads(dashboard.inputs["dashboardJson"])["mosaicLayout"]["tiles"]:
        for data in tile["widget"].get("xyChart", {}).get("dataSets", []):
            yield tile["widget"]["title"], data["timeSeriesQuery"]["prometheusQuery"], every


@pytest.mark.parametrize("stack", JUDGED)
def test_every_query_parses_and_selects_only_catalogued_series_of_its_pipeline(
    stack: str, judged: dict[str, Recording]
) -> None:
    rec = judged[stack]
    checked = list(queries(rec))
    # Six alert conditions per pipeline (five policies, capacity has two), one per schedule
    # (its failing ticks), and the dashboard's charts.
    conditions = sum(len(p.inputs["conditions"]) for p in rec.of_type(POLICY))
    assert conditions == 6 * len(rec.outputs["pipelines"]) + len(jobs(rec))
    assert len(checked) > conditions
    own = logs_based_series(rec)
    broken = {where: p for where, query, pinned in checked if (p := problems(query, pinned, own))}
    assert not broken


def test_each_failing_ticks_alert_pins_one_job_of_its_pipeline(
    judged: dict[str, Recording],
) -> None:
    """Job scope: a schedule's alert reads its own job alone; each job has one alert."""
    rec = judged[EVERY_OPTION_STACK]
    alerted: list[str] = []
    for policy in rec.of_type(POLICY):
        if policy.inputs["userLabels"]["alert"] != "failing-ticks":
            continue
        [condition] = policy.inputs["conditions"]
        query = condition["conditionPrometheusQueryLanguage"]["query"]
        [job] = re.findall(r'job_id="([^"]+)"', query)
        assert job in pins(rec, [policy.inputs["userLabels"]["pipeline"]])["job_id"]
        alerted.append(job)
    assert sorted(alerted) == sorted(j.inputs["name"] for j in jobs(rec))
    assert len(alerted) == 3


def selector_names(query: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(query), visit)
    return names


def test_every_catalogued_metric_is_queried(judged: dict[str, Recording]) -> None:
    """No stale entries: the catalogue holds what the program queries, and no more."""
    rec = judged[EVERY_OPTION_STACK]
    selected = {name for _, query, _ in queries(rec) for name in selector_names(query)}
    families = {promql_name(t) for t in yaml.safe_load(CATALOGUE.read_text())["metrics"]}
    families |= set(logs_based_series(rec))
    unqueried = {f for f in families if not any(s.startswith(f) for s in selected)}
    assert not unqueried
    resources, _ = catalogue()
    used = {m["resource"] for m in [*catalogue()[1].values(), *logs_based_series(rec).values()]}
    assert set(resources) == used


# --- the judge can fail ------------------------------------------------------------------

QUEUE = (
    'monitored_resource="cloud_tasks_queue",project_id="p",location="us-central1",'
    'queue_id="orders-0a1b2c3"'
)
PINNED = {
    "project_id": {"p"},
    "location": {"us-central1"},
    "queue_id": {"orders-0a1b2c3"},
}


def test_a_well_formed_query_passes() -> None:
    assert problems(f"sum(cloudtasks_googleapis_com:queue_depth{{{QUEUE}}}) > 10", PINNED) == []


@pytest.mark.parametrize(
    "query",
    [
        f"sum(cloudtasks_googleapis_com:queue_depth{{{QUEUE}}} > 10",
        f"sum(rate(cloudtasks_googleapis_com:queue_task_attempt_count{{{QUEUE}}}[5 m]))",
        f"cloudtasks_googleapis_com:queue_depth{{{QUEUE},}} >",
    ],
)
def test_broken_promql_is_refused_by_the_parser(query: str) -> None:
    with pytest.raises(ValueError):
        problems(query, PINNED)


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        # An unknown label (the queue is `queue_id`, not `queue_name`).
        (
            'sum(cloudtasks_googleapis_com:queue_depth{monitored_resource="cloud_tasks_queue",'
            'project_id="p",location="us-central1",queue_name="orders-0a1b2c3"})',
            "no label 'queue_name'",
        ),
        # A metric label of another metric.
        (
            f'sum(cloudtasks_googleapis_com:queue_depth{{{QUEUE},response_code="ok"}})',
            "response_code",
        ),
        # The metric type's spelling, not its PromQL name.
        (f"sum(cloudtasks_googleapis_com:queue/depth{{{QUEUE}}})", "queue"),
        # An unknown metric.
        (f"sum(cloudtasks_googleapis_com:queue_oldest_task_age{{{QUEUE}}})", "not a metric"),
        # Another pipeline's queue, and a selector that pins none.
        (
            f"sum(cloudtasks_googleapis_com:queue_depth{{{QUEUE.replace('orders', 'reports')}}})",
            "queue_id",
        ),
        (
            'sum(cloudtasks_googleapis_com:queue_depth{monitored_resource="cloud_tasks_queue"})',
            "queue_id",
        ),
        # Grouped by a label the metric does not have.
        (
            f"sum by (response_code_class) (cloudtasks_googleapis_com:queue_depth{{{QUEUE}}})",
            "by (response_code_class)",
        ),
    ],
)
def test_the_catalogue_refuses_what_monitoring_would_not_find(query: str, refused: str) -> None:
    try:
        found = problems(query, PINNED)
    except ValueError:
        found = ["parse error"]
    assert any(refused in p for p in found), found


# --- job scope: the ticks' logs-based metric ------------------------------------------

TICKS = "logging_googleapis_com:user_cloudrun_tasks_orders_ticks"
SCHEDULER = 'monitored_resource="cloud_scheduler_job",project_id="p",location="us-central1"'
OWN: Series = {
    TICKS: {
        "resource": "cloud_scheduler_job",
        "kind": "DELTA",
        "value": "INT64",
        "labels": ["status"],
        "owner": "orders",
    },
    "logging_googleapis_com:user_cloudrun_tasks_reports_ticks": {
        "resource": "cloud_scheduler_job",
        "kind": "DELTA",
        "value": "INT64",
        "labels": ["status"],
        "owner": "reports",
    },
}
JOBS_PINNED = {
    **PINNED,
    "pipeline": {"orders"},
    "job_id": {"orders_nightly", "orders_hourly"},
}


def test_a_user_metric_is_spelled_with_every_special_as_underscore() -> None:
    assert promql_name("logging.googleapis.com/user/cloudrun-tasks-orders-ticks") == TICKS


@pytest.mark.parametrize(
    "query",
    [
        f'sum(increase({TICKS}{{{SCHEDULER},job_id="orders_nightly",status!=""}}[15m])) > 0',
        f"sum by (job_id, status) (rate({TICKS}{{{SCHEDULER},"
        f'job_id=~"orders_nightly|orders_hourly"}}[5m])) * 60',
    ],
)
def test_a_query_of_its_own_jobs_passes(query: str) -> None:
    assert problems(query, JOBS_PINNED, OWN) == []


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        # Another pipeline's job, a regex reaching beyond the pipeline's jobs, no job, a
        # negative matcher.
        (f'sum({TICKS}{{{SCHEDULER},job_id="reports_weekly"}})', "job_id"),
        (f'sum({TICKS}{{{SCHEDULER},job_id=~"orders_.*"}})', "job_id"),
        (f"sum({TICKS}{{{SCHEDULER}}})", "job_id"),
        (f'sum({TICKS}{{{SCHEDULER},job_id!="reports_weekly"}})', "job_id"),
        # Another pipeline's metric, a metric the stack does not define, a label the
        # resource does not have (`job_name` is the AttemptFinished payload's).
        (
            "sum(logging_googleapis_com:user_cloudrun_tasks_reports_ticks"
            f'{{{SCHEDULER},job_id="orders_nightly"}})',
            "pipeline 'reports'",
        ),
        (
            "sum(logging_googleapis_com:user_cloudrun_tasks_orders_tick"
            f'{{{SCHEDULER},job_id="orders_nightly"}})',
            "not a metric",
        ),
        (
            f'sum({TICKS}{{{SCHEDULER},job_id="orders_nightly",job_name="x"}})',
            "no label 'job_name'",
        ),
        # The ticks metric read on the queue's resource.
        (
            f'sum({TICKS}{{{QUEUE},job_id="orders_nightly"}})',
            "monitored_resource='cloud_scheduler_job'",
        ),
    ],
)
def test_job_scope_refuses_what_selects_beyond_the_pipelines_jobs(query: str, refused: str) -> None:
    found = problems(query, JOBS_PINNED, OWN)
    assert any(refused in p for p in found), found


# --- service scope: the claims-lost logs-based metric -----------------------------------

LOST = "logging_googleapis_com:user_cloudrun_tasks_orders_claims_lost"
RUN = 'monitored_resource="cloud_run_revision",project_id="p",location="us-central1"'
LOST_OWN: Series = {
    f"logging_googleapis_com:user_cloudrun_tasks_{pipeline}_claims_lost": {
        "resource": "cloud_run_revision",
        "kind": "DELTA",
        "value": "INT64",
        "labels": [],
        "owner": pipeline,
    }
    for pipeline in ("orders", "reports")
}
SERVICE_PINNED = {**PINNED, "pipeline": {"orders"}, "service_name": {"orders-0a1b2c3"}}
ORDERS = PipelineNames(
    "orders", "p", "us-central1", "orders-0a1b2c3", "orders-0a1b2c3", "orders-dead-letters"
)


def test_every_claims_lost_metric_counts_on_its_service_with_no_label(
    judged: dict[str, Recording],
) -> None:
    """One per pipeline, on cloud_run_revision, no label of its own (no task name or
    delivery: those are unbounded)."""
    rec = judged[EVERY_OPTION_STACK]
    lost = {
        name: metric
        for name, metric in logs_based_series(rec).items()
        if name.endswith("_claims_lost")
    }
    assert sorted(m["owner"] for m in lost.values()) == sorted(rec.outputs["pipelines"])
    assert {(m["resource"], m["kind"], m["value"], tuple(m["labels"])) for m in lost.values()} == {
        ("cloud_run_revision", "DELTA", "INT64", ())
    }


@pytest.mark.parametrize(
    "query", [q.claims_lost_query(ORDERS, "900s"), q.claims_lost_per_minute(ORDERS)]
)
def test_the_claims_lost_queries_of_its_own_service_pass(query: str) -> None:
    assert problems(query, SERVICE_PINNED, LOST_OWN) == []


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        # Another pipeline's metric, another pipeline's service, no service at all.
        (
            "sum(logging_googleapis_com:user_cloudrun_tasks_reports_claims_lost"
            f'{{{RUN},service_name="orders-0a1b2c3"}})',
            "pipeline 'reports'",
        ),
        (f'sum({LOST}{{{RUN},service_name="reports-0a1b2c3"}})', "service_name"),
        (f"sum({LOST}{{{RUN}}})", "service_name"),
        # A label the metric does not have: it extracts none.
        (f'sum by (taskName) ({LOST}{{{RUN},service_name="orders-0a1b2c3"}})', "taskName"),
        (f'sum({LOST}{{{RUN},service_name="orders-0a1b2c3",status="x"}})', "no label 'status'"),
        # Read on the queue's resource.
        (f"sum({LOST}{{{QUEUE}}})", "monitored_resource='cloud_run_revision'"),
    ],
)
def test_service_scope_refuses_what_selects_beyond_the_pipelines_service(
    query: str, refused: str
) -> None:
    found = problems(query, SERVICE_PINNED, LOST_OWN)
    assert any(refused in p for p in found), found


# --- bucket scope: the payload bucket's daily measurements --------------------------------

OBJECTS = "storage_googleapis_com:storage_object_count"
BYTES = "storage_googleapis_com:storage_total_bytes"
BUCKET = 'monitored_resource="gcs_bucket",project_id="p",bucket_name="orders-payloads-0a1b2c3d4e"'
OTHER_PROJECT = BUCKET.replace('project_id="p"', 'project_id="q"')
BUCKETS_PINNED = {**PINNED, "bucket_name": {"orders-payloads-0a1b2c3d4e"}}


def test_the_storage_metrics_are_spelled_by_the_mapping_rule() -> None:
    assert promql_name("storage.googleapis.com/storage/object_count") == OBJECTS
    assert promql_name("storage.googleapis.com/storage/total_bytes") == BYTES


@pytest.mark.parametrize(
    "query",
    [
        f"sum({OBJECTS}{{{BUCKET}}})",
        f"sum({BYTES}{{{BUCKET}}})",
        f'sum by (storage_class) ({BYTES}{{{BUCKET},storage_class="STANDARD"}})',
    ],
)
def test_a_query_of_its_own_bucket_passes(query: str) -> None:
    assert problems(query, BUCKETS_PINNED) == []


@pytest.mark.parametrize(
    ("query", "refused"),
    [
        # Another pipeline's bucket, no bucket, a regex reaching beyond it, a negative
        # matcher, another project.
        (f"sum({OBJECTS}{{{BUCKET.replace('orders', 'reports')}}})", "bucket_name"),
        (f'sum({OBJECTS}{{monitored_resource="gcs_bucket",project_id="p"}})', "bucket_name"),
        (
            f'sum({OBJECTS}{{monitored_resource="gcs_bucket",project_id="p",'
            'bucket_name=~"orders-payloads-.*"})',
            "bucket_name",
        ),
        (
            f'sum({OBJECTS}{{monitored_resource="gcs_bucket",project_id="p",'
            'bucket_name!="reports-payloads-0a1b2c3d4e"})',
            "bucket_name",
        ),
        (f"sum({BYTES}{{{OTHER_PROJECT}}})", "project_id"),
        # A label the resource does not have (the bucket's is `bucket_name`), the metric
        # type's spelling, the bucket metrics read on the queue's resource.
        (
            f'sum({OBJECTS}{{monitored_resource="gcs_bucket",project_id="p",'
            'bucket="orders-payloads-0a1b2c3d4e"})',
            "no label 'bucket'",
        ),
        (f"sum(storage_googleapis_com:storage/object_count{{{BUCKET}}})", "storage"),
        (
            f'sum({OBJECTS}{{{QUEUE},bucket_name="orders-payloads-0a1b2c3d4e"}})',
            "monitored_resource='gcs_bucket'",
        ),
        # Grouped by a label the bucket's series do not have.
        (f"sum by (queue_id) ({OBJECTS}{{{BUCKET}}})", "by (queue_id)"),
    ],
)
def test_bucket_scope_refuses_what_selects_beyond_the_pipelines_bucket(
    query: str, refused: str
) -> None:
    try:
        found = problems(query, BUCKETS_PINNED)
    except ValueError:
        found = ["parse error"]
    assert any(refused in p for p in found), found
