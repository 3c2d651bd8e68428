"""Alert policies and the dashboard, under mocks: from every stack file and generated configs.

Per pipeline: exactly the backlog, failing-attempts, dead-letters, capacity and claims-lost
policies, each condition selecting this pipeline's queue, service or subscription and no
other's, thresholds from config or the derived default, the stack's channels attached, a
runbook. One dashboard, valid against
the Monitoring Dashboards API's own message types, one row per pipeline.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml
from google.cloud.monitoring_dashboard_v1 import Dashboard
from google.protobuf.json_format import ParseError

from bench.scale import stack_config
from components.settings import ConfigError
from plan.recorder import RecordedResource, Recording, run_program
from tests.infra.conftest import ROOT, STACKS, base_config, record
from tests.infra.test_invalid_config import run_invalid, with_value

POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
P = "cloudrun-tasks:pipelines"
KINDS = ("backlog", "capacity", "claims-lost", "dead-letters", "failing-attempts")
CHANNEL_ID = "projects/acme-tasks-test/notificationChannels/1234567890123456789"


def stack_file(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def queries(policy: RecordedResource) -> list[str]:
    return [c["conditionPrometheusQueryLanguage"]["query"] for c in policy.inputs["conditions"]]


def selected(query: str, label: str) -> set[str]:
    return set(re.findall(rf'{label}="([^"]+)"', query))


def check_alerts(rec: Recording, config: dict[str, Any]) -> None:
    """Every pipeline of CONFIG has exactly its five policies, aimed at its own names."""
    pipelines = config[P]
    outputs = rec.outputs["pipelines"]
    # Each schedule has its own failing-ticks policy (tests/infra/test_schedules.py).
    schedules = sum(len(p.get("schedules", {})) for p in pipelines.values())
    policies = [
        p for p in rec.of_type(POLICY) if p.inputs["userLabels"]["alert"] != "failing-ticks"
    ]
    assert len(rec.of_type(POLICY)) == len(KINDS) * len(pipelines) + schedules
    channels = rec.of_type(CHANNEL)
    expected_channels = [
        *config.get("cloudrun-tasks:alerts", {}).get("notificationChannels", []),
        # The mocks give each resource the id NAME-id (plan/recorder.py).
        *(f"{c.name}-id" for c in channels),
    ]
    for name, pipeline in pipelines.items():
        mine = {p.inputs["userLabels"]["alert"]: p for p in policies if p.name.startswith(name)}
        mine = {k: p for k, p in mine.items() if p.inputs["userLabels"]["pipeline"] == name}
        assert sorted(mine) == list(KINDS), name
        queue, service = outputs[name]["queueName"], outputs[name]["serviceName"]
        subscription = outputs[name]["deadLetterSubscription"].rsplit("/", 1)[1]
        others_q = {o["queueName"] for n, o in outputs.items() if n != name}
        others_s = {o["serviceName"] for n, o in outputs.items() if n != name}
        others_d = {
            o["deadLetterSubscription"].rsplit("/", 1)[1] for n, o in outputs.items() if n != name
        }
        location = pipeline.get("location", config.get("gcp:region"))
        for kind, policy in mine.items():
            for query in queries(policy):
                assert selected(query, "project_id") == {config["gcp:project"]}, query
                if kind == "dead-letters":
                    # Subscriptions are global: no location label, just this one's id.
                    assert query == (
                        "sum(pubsub_googleapis_com:subscription_num_undelivered_messages{"
                        'monitored_resource="pubsub_subscription",'
                        f'project_id="{config["gcp:project"]}",subscription_id="{subscription}"'
                        "}) > 0"
                    )
                    assert not selected(query, "subscription_id") & others_d
                    continue
                assert selected(query, "location") == {location}, query
                if kind in ("capacity", "claims-lost"):
                    assert selected(query, "service_name") == {service}, query
                    assert 'monitored_resource="cloud_run_revision"' in query
                else:
                    assert selected(query, "queue_id") == {queue}, query
                    assert 'monitored_resource="cloud_tasks_queue"' in query
                assert not selected(query, "queue_id") & others_q
                assert not selected(query, "service_name") & others_s
            docs = policy.inputs["documentation"]
            assert docs["mimeType"] == "text/markdown"
            assert "First three things to check" in docs["content"]
            assert re.search(r"^3\. ", docs["content"], re.M)
            assert f"project={config['gcp:project']}" in docs["content"]
            named = {"capacity": service, "claims-lost": service, "dead-letters": subscription}
            named = named.get(kind, queue)
            assert named in docs["content"]
            if kind == "dead-letters":  # each reason the handler gives, and what to do
                assert "`failed after the dispatch deadline`" in docs["content"]
                assert "`another delivery still held the task`" in docs["content"]
                assert "`task.time_left()`" in docs["content"]
            assert policy.inputs["notificationChannels"] == expected_channels
            assert policy.inputs["enabled"] == pipeline.get("alerts", {}).get("enabled", True)
        rate = pipeline.get("queue", {}).get("maxDispatchesPerSecond", 10)
        threshold = pipeline.get("alerts", {}).get("backlog", {}).get("threshold")
        expected = threshold if threshold is not None else -(-600 * rate // 1)
        assert queries(mine["backlog"])[0].endswith(f") > {int(expected)}")
        max_instances = pipeline["service"].get("maxInstances", 10)
        assert queries(mine["capacity"])[0].endswith(f") >= {max_instances}")
        # The default, 900s, and the override test's 2h, as PromQL spells a range.
        window = {None: "15m", "2h": "120m"}[
            pipeline.get("alerts", {}).get("claimsLost", {}).get("window")
        ]
        assert queries(mine["claims-lost"]) == [
            f"sum(increase(logging_googleapis_com:user_cloudrun_tasks_{name.replace('-', '_')}"
            '_claims_lost{monitored_resource="cloud_run_revision",'
            f'project_id="{config["gcp:project"]}",location="{location}",'
            f'service_name="{service}"}}[{window}])) > 0'
        ]


PAYLOAD_CHART = "Payload bucket (measured daily)"


def check_payload_chart(tile: Any, project: str, bucket: str) -> None:
    """Objects on the left axis, bytes on the right, of BUCKET alone."""
    chart = tile.widget.xy_chart
    by_axis = {
        data.target_axis.name: data.time_series_query.prometheus_query for data in chart.data_sets
    }
    assert by_axis == {
        "Y1": "sum(storage_googleapis_com:storage_object_count{"
        f'monitored_resource="gcs_bucket",project_id="{project}",bucket_name="{bucket}"}})',
        "Y2": "sum(storage_googleapis_com:storage_total_bytes{"
        f'monitored_resource="gcs_bucket",project_id="{project}",bucket_name="{bucket}"}})',
    }
    assert (chart.y_axis.label, chart.y2_axis.label) == ("objects", "bytes")


def check_dashboard(rec: Recording, config: dict[str, Any]) -> None:
    [dashboard] = rec.of_type(DASHBOARD)
    text = dashboard.inputs["dashboardJson"]
    # The API's own message types: an unknown or misspelt field, a wrong type, fails here.
    parsed = Dashboard.from_json(text, ignore_unknown_fields=False)
    layout = parsed.mosaic_layout
    assert layout.columns == 48
    headers = [t for t in layout.tiles if t.widget.text.content]
    assert len(headers) == len(config[P])
    outputs = rec.outputs["pipelines"]
    for name, header in zip(config[P], headers, strict=True):
        assert header.widget.title == f"Pipeline {name}"
        row = [t for t in layout.tiles if t.y_pos == header.y_pos + header.height]
        scheduled = bool(config[P][name].get("schedules"))
        offloads = config[P][name].get("payloads", {}).get("enabled", False)
        assert [t.widget.title for t in row] == [
            "Queue depth",
            "Attempts/s by response code",
            "Attempt delay",
            "Cloud Run requests/s",
            "Cloud Run latency",
            "Cloud Run instances",
            "Dead letters waiting",
            "Claims lost/min",
            *([PAYLOAD_CHART] if offloads else []),
            *(["Schedule ticks/min by job"] if scheduled else []),
        ]
        assert sum(t.width for t in row) == 48
        if offloads:
            [payloads] = [t for t in row if t.widget.title == PAYLOAD_CHART]
            check_payload_chart(payloads, config["gcp:project"], outputs[name]["payloadBucket"])
            row = [t for t in row if t is not payloads]
        if scheduled:
            # Every job of this pipeline, and no other pipeline's, by its monitored resource.
            [ticks] = row[-1].widget.xy_chart.data_sets
            query = ticks.time_series_query.prometheus_query
            assert 'monitored_resource="cloud_scheduler_job"' in query
            assert f"user_cloudrun_tasks_{name.replace('-', '_')}_ticks" in query
            assert selected(query, "location") == {
                config[P][name].get("location", config.get("gcp:region"))
            }
            row = row[:-1]
        for tile in row:
            for data in tile.widget.xy_chart.data_sets:
                query = data.time_series_query.prometheus_query
                chosen = (
                    selected(query, "queue_id")
                    | selected(query, "service_name")
                    | selected(query, "subscription_id")
                )
                assert chosen <= {
                    outputs[name]["queueName"],
                    outputs[name]["serviceName"],
                    outputs[name]["deadLetterSubscription"].rsplit("/", 1)[1],
                }, query
                assert chosen, query
    # Tiles never overlap and stay on the grid.
    cells: set[tuple[int, int]] = set()
    for tile in layout.tiles:
        assert tile.x_pos + tile.width <= 48
        mine = {
            (x, y)
            for x in range(tile.x_pos, tile.x_pos + tile.width)
            for y in range(tile.y_pos, tile.y_pos + tile.height)
        }
        assert not mine & cells
        cells |= mine
    assert rec.outputs["dashboardUrl"].startswith(
        "https://console.cloud.google.com/monitoring/dashboards/builder/"
    )
    assert rec.outputs["dashboardUrl"].endswith(f"?project={config['gcp:project']}")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_get_their_alerts_and_dashboard(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    config = stack_file(stack)
    check_alerts(stack_recordings[stack], config)
    check_dashboard(stack_recordings[stack], config)


@pytest.mark.parametrize("pipelines", [1, 3, 12])
def test_generated_configs_get_their_alerts_and_dashboard(pipelines: int) -> None:
    config = stack_config(pipelines)
    rec = run_program(ROOT, "bench", copy.deepcopy(config))
    check_alerts(rec, config)
    check_dashboard(rec, config)


def test_overrides_reach_the_policies_and_channels_are_attached() -> None:
    config = base_config()
    config["cloudrun-tasks:alerts"] = {
        "notificationChannels": [CHANNEL_ID],
        "emails": ["oncall@acme.example"],
    }
    config[P]["orders"]["alerts"] = {
        "backlog": {"threshold": 250, "duration": "10m"},
        "failingAttempts": {"ratio": 0.25, "window": "15m", "duration": "120s"},
        "capacity": {"duration": "1h", "errorRatio": 0.5, "errorWindow": "2m"},
        "claimsLost": {"window": "2h"},
    }
    rec = record(config)
    check_alerts(rec, config)
    [email] = rec.of_type(CHANNEL)
    assert email.inputs["type"] == "email"
    assert email.inputs["labels"] == {"email_address": "oncall@acme.example"}
    by_kind = {p.inputs["userLabels"]["alert"]: p for p in rec.of_type(POLICY)}
    assert by_kind["backlog"].inputs["notificationChannels"] == [CHANNEL_ID, f"{email.name}-id"]
    backlog = by_kind["backlog"].inputs["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert backlog["query"].endswith(") > 250") and backlog["duration"] == "600s"
    failing = by_kind["failing-attempts"].inputs["conditions"][0]
    promql = failing["conditionPrometheusQueryLanguage"]
    assert "[15m]" in promql["query"] and promql["query"].endswith(" > 0.25")
    assert 'response_code!="ok"' in promql["query"] and promql["duration"] == "120s"
    at_max, errors = by_kind["capacity"].inputs["conditions"]
    assert at_max["conditionPrometheusQueryLanguage"]["duration"] == "3600s"
    assert errors["conditionPrometheusQueryLanguage"]["query"].endswith(" > 0.5")
    assert "[2m]" in errors["conditionPrometheusQueryLanguage"]["query"]
    assert 'response_code_class="5xx"' in errors["conditionPrometheusQueryLanguage"]["query"]


def test_derived_backlog_default_is_ten_minutes_of_work() -> None:
    config = base_config()
    config[P]["orders"]["queue"] = {"maxDispatchesPerSecond": 0.5}
    [backlog] = [p for p in record(config).of_type(POLICY) if p.name == "orders-backlog"]
    assert queries(backlog)[0].endswith(") > 300")


def test_disabled_alerts_are_kept_but_off() -> None:
    config = base_config()
    config[P]["orders"]["alerts"] = {"enabled": False}
    policies = record(config).of_type(POLICY)
    assert len(policies) == len(KINDS) and {p.inputs["enabled"] for p in policies} == {False}


def test_dev_without_channels_opens_incidents_silently() -> None:
    policies = record(base_config()).of_type(POLICY)
    assert {tuple(p.inputs["notificationChannels"]) for p in policies} == {()}


def test_queries_use_the_auto_generated_names_not_the_logical_one() -> None:
    rec = record(base_config())
    queue = rec.outputs["pipelines"]["orders"]["queueName"]
    assert queue != "orders"
    for policy in rec.of_type(POLICY):
        for query in queries(policy):
            assert 'queue_id="orders"' not in query and 'service_name="orders"' not in query


def test_only_a_pipeline_with_payloads_charts_its_bucket_and_nothing_alerts_on_it() -> None:
    config = base_config()
    config[P]["orders"]["payloads"] = {"enabled": True}
    config[P]["reports"] = {
        "service": {"image": "us-docker.pkg.dev/cloudrun/container/hello"},
        "payloads": {"enabled": False},
    }
    rec = record(config)
    check_dashboard(rec, config)
    bucket = rec.outputs["pipelines"]["orders"]["payloadBucket"]
    assert "payloadBucket" not in rec.outputs["pipelines"]["reports"]
    [dashboard] = rec.of_type(DASHBOARD)
    text = dashboard.inputs["dashboardJson"]
    tiles = Dashboard.from_json(text, ignore_unknown_fields=False).mosaic_layout.tiles
    assert [t.widget.title for t in tiles].count(PAYLOAD_CHART) == 1
    [chart] = [t for t in tiles if t.widget.title == PAYLOAD_CHART]
    [orders_header, _] = [t for t in tiles if t.widget.text.content]
    assert chart.y_pos == orders_header.y_pos + orders_header.height
    check_payload_chart(chart, config["gcp:project"], bucket)
    # The bucket is read in that one chart and nowhere else: no policy watches it.
    assert set(re.findall(r'bucket_name=\\"([^\\"]+)', text)) == {bucket}
    assert text.count("gcs_bucket") == 2
    assert not [q for p in rec.of_type(POLICY) for q in queries(p) if "gcs_bucket" in q]


def test_without_payloads_the_row_has_no_bucket_chart() -> None:
    rec = record(base_config())
    [dashboard] = rec.of_type(DASHBOARD)
    assert PAYLOAD_CHART not in dashboard.inputs["dashboardJson"]
    assert "gcs_bucket" not in dashboard.inputs["dashboardJson"]


def test_dashboard_schema_check_can_fail() -> None:
    rec = record(base_config())
    [dashboard] = rec.of_type(DASHBOARD)
    broken = json.loads(dashboard.inputs["dashboardJson"])
    broken["mosaicLayout"]["tiles"][1]["widget"]["xyChart"]["dataSets"][0]["plotTyp"] = "LINE"
    with pytest.raises(ParseError, match="plotTyp"):
        Dashboard.from_json(json.dumps(broken), ignore_unknown_fields=False)


BAD: list[tuple[str, Any, str]] = [
    (
        "cloudrun-tasks:alerts.notificationChannels",
        ["1234"],
        "alerts.notificationChannels.0: must be a channel id",
    ),
    (
        "cloudrun-tasks:alerts.notificationChannels",
        ["projects/acme-tasks-test/notificationChannels/abc"],
        "alerts.notificationChannels.0: must be a channel id",
    ),
    (
        "cloudrun-tasks:alerts.notificationChannels",
        [CHANNEL_ID, CHANNEL_ID],
        "alerts.notificationChannels.1: is listed twice",
    ),
    ("cloudrun-tasks:alerts.notificationChannels", CHANNEL_ID, "alerts.notificationChannels:"),
    ("cloudrun-tasks:alerts.emails", ["not-an-address"], "alerts.emails.0: must be an email"),
    ("cloudrun-tasks:alerts.pager", [], "alerts.pager: unknown key"),
    (f"{P}.orders.alerts.enabled", "no", "pipelines.orders.alerts.enabled: must be true or false"),
    (f"{P}.orders.alerts.backlog.threshold", 0, "pipelines.orders.alerts.backlog.threshold:"),
    (f"{P}.orders.alerts.backlog.threshold", 10**10, "pipelines.orders.alerts.backlog.threshold:"),
    (f"{P}.orders.alerts.backlog.threshold", 2.5, "pipelines.orders.alerts.backlog.threshold:"),
    (
        f"{P}.orders.alerts.backlog.duration",
        "90s",
        "pipelines.orders.alerts.backlog.duration: must be a whole number of minutes",
    ),
    (
        f"{P}.orders.alerts.backlog.duration",
        "25h",
        "pipelines.orders.alerts.backlog.duration: must be >= 60s and <= 86400s",
    ),
    (
        f"{P}.orders.alerts.failingAttempts.ratio",
        0,
        "pipelines.orders.alerts.failingAttempts.ratio: must be > 0 and <= 1",
    ),
    (
        f"{P}.orders.alerts.failingAttempts.ratio",
        1.5,
        "pipelines.orders.alerts.failingAttempts.ratio: must be > 0 and <= 1",
    ),
    (
        f"{P}.orders.alerts.failingAttempts.window",
        "0s",
        "pipelines.orders.alerts.failingAttempts.window: must be >= 60s",
    ),
    (
        f"{P}.orders.alerts.capacity.errorRatio",
        -0.1,
        "pipelines.orders.alerts.capacity.errorRatio: must be > 0 and <= 1",
    ),
    (f"{P}.orders.alerts.capacity.threshold", 3, "pipelines.orders.alerts.capacity.threshold:"),
    (
        f"{P}.orders.alerts.claimsLost.window",
        "90s",
        "pipelines.orders.alerts.claimsLost.window: must be a whole number of minutes",
    ),
    (
        f"{P}.orders.alerts.claimsLost.window",
        "25h",
        "pipelines.orders.alerts.claimsLost.window: must be >= 60s and <= 86400s",
    ),
    (
        f"{P}.orders.alerts.claimsLost.window",
        "soon",
        "pipelines.orders.alerts.claimsLost.window:",
    ),
    (f"{P}.orders.alerts.claimsLost.threshold", 2, "pipelines.orders.alerts.claimsLost.threshold:"),
    (f"{P}.orders.alerts.claimsLost", "on", "pipelines.orders.alerts.claimsLost:"),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_alert_settings_are_named_and_nothing_registered(
    path: str, value: Any, expected: str
) -> None:
    error, recording = run_invalid(with_value(path, value))
    assert [p for p in error.problems if p.startswith(expected)], error.problems
    assert recording.resources == []


@pytest.mark.parametrize("alerts", [None, {}, {"notificationChannels": [], "emails": []}])
def test_prod_without_a_channel_is_a_config_error(alerts: dict[str, Any] | None) -> None:
    config = base_config()
    if alerts is not None:
        config["cloudrun-tasks:alerts"] = alerts
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "prod", config)
    assert any(
        p.startswith("alerts.notificationChannels: stack 'prod' is production")
        for p in caught.value.problems
    ), caught.value.problems
    # The same config is fine outside prod, and in prod once a channel or an email is named.
    record(config, stack="staging")
    for fix in ({"notificationChannels": [CHANNEL_ID]}, {"emails": ["oncall@acme.example"]}):
        run_program(ROOT, "prod", {**config, "cloudrun-tasks:alerts": fix})
