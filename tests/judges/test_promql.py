"""Every PromQL expression of the alert policies and the dashboard, parsed by a PromQL parser
(promql-parser, the Rust crate's Python binding), and every metric and label it selects
checked against the kept catalogue of Cloud Monitoring's metrics and monitored resources
(monitoring_catalogue.yaml, each entry with its page). Each selector must also pin its
resource's identifying labels to one pipeline's own queue, service or subscription."""

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

from plan.recorder import Recording
from tests.judges.conftest import EVERY_OPTION_STACK
from tests.judges.test_api_types import JUDGED

CATALOGUE = Path(__file__).with_name("monitoring_catalogue.yaml")
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
DISTRIBUTION_SERIES = ("_bucket", "_count", "_sum")


def promql_name(metric_type: str) -> str:
    """Cloud Monitoring's PromQL name of a metric type (promql-mapping): the first `/`
    becomes `:`, every other `.` and `/` becomes `_`."""
    domain, _, path = metric_type.partition("/")
    return re.sub(r"[./]", "_", domain) + ":" + re.sub(r"[./]", "_", path)


@cache
def catalogue() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(monitored resources, metrics by every PromQL series name they have)."""
    data = yaml.safe_load(CATALOGUE.read_text())
    series: dict[str, dict[str, Any]] = {}
    for metric_type, metric in data["metrics"].items():
        name = promql_name(metric_type)
        if metric["value"] == "DISTRIBUTION":
            for suffix in DISTRIBUTION_SERIES:
                extra = ["le"] if suffix == "_bucket" else []
                series[name + suffix] = {**metric, "labels": [*metric["labels"], *extra]}
        else:
            series[name] = metric
    return data["monitored_resources"], series


def problems(query: str, pinned: Mapping[str, set[str]]) -> list[str]:
    """What Cloud Monitoring would not find, or what selects beyond its pipeline, in QUERY.

    PINNED: for each identifying label, the values this query may select (one pipeline's
    own for an alert, any of the stack's pipelines' for the dashboard). A parse error
    raises ValueError."""
    resources, series = catalogue()
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
            resource = resources[metric["resource"]]
            allowed = {"monitored_resource", *resource["labels"], *metric["labels"]}
            equal = {}
            for matcher in node.matchers.matchers:
                if matcher.name not in allowed:
                    found.append(f"{node.name}: no label {matcher.name!r} (has {sorted(allowed)})")
                if matcher.op == promql_parser.MatchOp.Equal:
                    equal[matcher.name] = matcher.value
            if equal.get("monitored_resource") != metric["resource"]:
                found.append(f"{node.name}: must select monitored_resource={metric['resource']!r}")
            for label in resource["identifying"]:
                if equal.get(label) not in pinned.get(label, set()):
                    found.append(
                        f"{node.name}: {label}={equal.get(label)!r} is not one of"
                        f" {sorted(pinned.get(label, set()))}"
                    )
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouped.extend(node.modifier.labels)

    promql_parser.walk(promql_parser.parse(query), visit)
    labels = {label for metric in selected for label in metric["labels"]}
    found += [
        f"by ({label}): no selected metric has it" for label in grouped if label not in labels
    ]
    return found


def pins(rec: Recording, pipelines: list[str]) -> dict[str, set[str]]:
    """The identifying label values of PIPELINES' queues, services and subscriptions."""
    outputs = rec.outputs["pipelines"]
    project = {r.inputs["project"] for r in rec.resources if r.type == POLICY}
    return {
        "project_id": project,
        "location": {outputs[p]["location"] for p in pipelines},
        "queue_id": {outputs[p]["queueName"] for p in pipelines},
        "service_name": {outputs[p]["serviceName"] for p in pipelines},
        "subscription_id": {
            outputs[p]["deadLetterSubscription"].rsplit("/", 1)[1] for p in pipelines
        },
    }


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
    # Five alert conditions per pipeline (capacity has two) and the dashboard's charts.
    conditions = sum(len(p.inputs["conditions"]) for p in rec.of_type(POLICY))
    assert conditions == 5 * len(rec.outputs["pipelines"])
    assert len(checked) > conditions
    broken = {where: p for where, query, pinned in checked if (p := problems(query, pinned))}
    assert not broken


def selector_names(query: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(query), visit)
    return names


def test_every_catalogued_metric_is_queried(judged: dict[str, Recording]) -> None:
    """No stale entries: the catalogue holds what the program queries, and no more."""
    selected = {
        name
        for _, query, _ in queries(judged[EVERY_OPTION_STACK])
        for name in selector_names(query)
    }
    families = {promql_name(t) for t in yaml.safe_load(CATALOGUE.read_text())["metrics"]}
    unqueried = {f for f in families if not any(s.startswith(f) for s in selected)}
    assert not unqueried


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
