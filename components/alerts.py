"""A pipeline's alert policies, and the stack's notification channels and dashboard.

Each policy is one Cloud Monitoring AlertPolicy with a PromQL condition (why PromQL:
components/observability.py) that selects this pipeline's queue or service by every
label of its monitored resource, and a markdown runbook as its documentation. Queue and
service names are auto-generated, so the queries are built from their outputs, never
from the pipeline's logical name.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from . import observability as q
from .dashboard import RowInput, dashboard_layout
from .name_rules import (
    ALERT_TITLES,
    BACKLOG,
    CAPACITY,
    CLAIMS_LOST,
    DEAD_LETTERS,
    FAILING_ATTEMPTS,
    alert_display_name,
    alert_subject,
    claims_lost_condition_display_name,
    claims_lost_metric_description,
)
from .names import alert_policy, email_channel, schedule_job
from .observability import PipelineNames
from .settings import PipelineSettings

# PromQL conditions are evaluated on a multiple of 30 s (monitoring/promql/promql-in-alerting);
# the metrics are sampled every 60 s, so evaluating more often would only repeat points.
EVALUATION_INTERVAL = "60s"
# An incident whose condition has had no data this long is closed (AlertStrategy.autoClose).
AUTO_CLOSE = "1800s"
MARKDOWN = "text/markdown"


@dataclass
class PipelineAlertsArgs:
    project: pulumi.Input[str]
    settings: PipelineSettings
    """Validated pipeline settings: thresholds resolved (backlog from the queue's rate)."""
    queue_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    dead_letter_subscription: pulumi.Input[str]
    """Id of the pipeline's dead-letter subscription (alert 3)."""
    notification_channels: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Channel ids every policy notifies; none (dev, staging) opens incidents silently."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """The ProjectApis component: the Monitoring API must be on first."""


def pipeline_alerts(
    name: str, args: PipelineAlertsArgs, parent: pulumi.Resource
) -> dict[str, gcp.monitoring.AlertPolicy]:
    """Backlog, failing attempts, dead letters, capacity and claims-lost alerts of one
    pipeline, and the logs-based metric the last one reads, children of PARENT (its
    TaskPipeline).

    Not a component of their own: a component costs about as much to register as a
    resource, and bench.scale at 100 pipelines is judged against the plain program.
    """
    s = args.settings
    a = s.alerts
    location = s.resolved_location
    names = pulumi.Output.all(
        args.project, args.queue_name, args.service_name, args.dead_letter_subscription
    ).apply(lambda v: PipelineNames(name, v[0], location, v[1], v[2], v[3]))
    backlog, failing, capacity, lost = a.backlog, a.failing_attempts, a.capacity, a.claims_lost
    threshold = a.backlog_threshold
    max_instances = s.service.max_instances
    specs = {
        BACKLOG: (
            ALERT_TITLES[BACKLOG],
            "WARNING",
            [
                (
                    f"more than {threshold} tasks waiting for {backlog.duration}",
                    names.apply(lambda n: q.backlog_query(n, threshold)),
                    str(backlog.duration),
                )
            ],
            names.apply(lambda n: q.backlog_runbook(n, threshold, str(backlog.duration))),
        ),
        FAILING_ATTEMPTS: (
            ALERT_TITLES[FAILING_ATTEMPTS],
            "ERROR",
            [
                (
                    f"over {failing.ratio:.0%} of attempts non-OK over {failing.window}",
                    names.apply(
                        lambda n: q.failing_attempts_query(n, failing.ratio, str(failing.window))
                    ),
                    str(failing.duration),
                )
            ],
            names.apply(
                lambda n: q.failing_attempts_runbook(n, failing.ratio, str(failing.window))
            ),
        ),
        DEAD_LETTERS: (
            ALERT_TITLES[DEAD_LETTERS],
            "ERROR",
            [
                (
                    "a dead letter waits for a replay",
                    names.apply(q.dead_letters_query),
                    # Every dead letter is a task that failed for good: one point is enough.
                    "0s",
                )
            ],
            names.apply(q.dead_letters_runbook),
        ),
        CAPACITY: (
            ALERT_TITLES[CAPACITY],
            "WARNING",
            [
                (
                    f"at maxInstances ({max_instances}) for {capacity.duration}",
                    names.apply(lambda n: q.at_max_instances_query(n, max_instances)),
                    str(capacity.duration),
                ),
                (
                    f"over {capacity.error_ratio:.0%} 5xx over {capacity.error_window}",
                    names.apply(
                        lambda n: q.server_errors_query(
                            n, capacity.error_ratio, str(capacity.error_window)
                        )
                    ),
                    # The window already smooths it; one evaluation above is enough.
                    "0s",
                ),
            ],
            names.apply(
                lambda n: q.capacity_runbook(
                    n, max_instances, capacity.error_ratio, str(capacity.error_window)
                )
            ),
        ),
        # WARNING, not ERROR: a lost claim is a possible second run, not a failure; a
        # processor that checks its fencing token still applies its effects once, and the
        # cause (a store outage, starved instances) raises its own alerts.
        CLAIMS_LOST: (
            ALERT_TITLES[CLAIMS_LOST],
            "WARNING",
            [
                (
                    claims_lost_condition_display_name(str(lost.window)),
                    names.apply(lambda n: q.claims_lost_query(n, str(lost.window))),
                    # Each loss is one event: one point is enough.
                    "0s",
                )
            ],
            names.apply(lambda n: q.claims_lost_runbook(n, str(lost.window))),
        ),
    }
    channels = list(args.notification_channels)
    child = pulumi.ResourceOptions(parent=parent, depends_on=list(args.depends_on))
    metric = claims_lost_metric(name, args.project, location, args.service_name, child)
    # Before the alert reads it: a policy on a metric that doesn't exist yet fails.
    after_metric = pulumi.ResourceOptions(parent=parent, depends_on=[*args.depends_on, metric])
    return {
        kind: gcp.monitoring.AlertPolicy(
            alert_policy(name, kind),
            project=args.project,
            display_name=alert_display_name(name, title),
            combiner="OR",
            enabled=a.enabled,
            severity=severity,
            notification_channels=channels,
            user_labels={"pipeline": name, "alert": kind},
            conditions=[
                gcp.monitoring.AlertPolicyConditionArgs(
                    display_name=condition,
                    condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                        query=query,
                        duration=duration,
                        evaluation_interval=EVALUATION_INTERVAL,
                    ),
                )
                for condition, query, duration in conditions
            ],
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                subject=alert_subject(name, title),
                content=runbook,
                mime_type=MARKDOWN,
            ),
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
            opts=after_metric if kind == CLAIMS_LOST else child,
        )
        for kind, (title, severity, conditions, runbook) in specs.items()
    }


def claims_lost_metric(
    pipeline: str,
    project: pulumi.Input[str],
    location: str,
    service_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> gcp.logging.Metric:
    """The logs-based metric counting the claim_lost lines of PIPELINE's service
    (components/observability.py says what it matches, and why no label)."""
    return gcp.logging.Metric(
        q.claims_lost_metric_name(pipeline),
        project=project,
        name=q.claims_lost_metric_name(pipeline),
        description=claims_lost_metric_description(pipeline),
        filter=pulumi.Output.from_input(service_name).apply(
            lambda service: q.claims_lost_log_filter(location, service)
        ),
        metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
            metric_kind="DELTA", value_type="INT64", unit="1"
        ),
        opts=opts,
    )


@dataclass
class AlertChannelsArgs:
    project: pulumi.Input[str]
    channel_ids: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Existing channels, `projects/P/notificationChannels/N`, passed through."""
    emails: Sequence[str] = field(default_factory=tuple)
    """Addresses the stack makes email channels for."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class AlertChannels(pulumi.ComponentResource):
    """Where every policy of the stack notifies: given channel ids, plus email channels."""

    ids: list[pulumi.Input[str]]

    def __init__(
        self, name: str, args: AlertChannelsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:AlertChannels", name, None, opts)
        emails = [
            gcp.monitoring.NotificationChannel(
                email_channel(address),
                project=args.project,
                type="email",
                display_name=f"cloudrun-tasks alerts: {address}",
                labels={"email_address": address},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            for address in args.emails
        ]
        self.ids = [*args.channel_ids, *(channel.id for channel in emails)]
        self.register_outputs({"ids": self.ids})


@dataclass(frozen=True)
class DashboardRow:
    """One pipeline's row: its name, its service's ceiling, its schedules' names, and the
    names its series are selected by (known once the queue and service exist)."""

    pipeline: str
    location: pulumi.Input[str]
    max_instances: int
    schedules: Sequence[str]
    queue_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    dead_letter_subscription: pulumi.Input[str]
    """Id, not path."""
    payload_bucket: pulumi.Input[str] | None = None
    """None without payloads."""


@dataclass
class StackDashboardArgs:
    project: pulumi.Input[str]
    stack: str
    rows: Sequence[DashboardRow]
    """One row per pipeline, in order."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class StackDashboard(pulumi.ComponentResource):
    """One dashboard for the stack, a row per pipeline (components/dashboard.py)."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: StackDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:StackDashboard", name, None, opts)
        # Per row: location, queue, service, subscription, bucket ("" without payloads).
        width = 5
        values = [
            value if value is not None else ""
            for row in args.rows
            for value in (
                row.location,
                row.queue_name,
                row.service_name,
                row.dead_letter_subscription,
                row.payload_bucket,
            )
        ]

        def render(resolved: list[str]) -> str:
            project, names = resolved[0], resolved[1:]
            rows = [
                RowInput(
                    PipelineNames(
                        row.pipeline,
                        project,
                        *names[width * i : width * i + 4],
                        payload_bucket=names[width * i + 4] or None,
                    ),
                    row.max_instances,
                    tuple(schedule_job(row.pipeline, schedule) for schedule in row.schedules),
                )
                for i, row in enumerate(args.rows)
            ]
            layout = dashboard_layout(args.stack, rows)
            return json.dumps(layout.to_json(), sort_keys=True)

        dashboard = gcp.monitoring.Dashboard(
            name,
            project=args.project,
            dashboard_json=pulumi.Output.all(args.project, *values).apply(render),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.url = pulumi.Output.all(args.project, dashboard.id).apply(
            lambda v: q.dashboard_url(v[0], v[1])
        )
        self.register_outputs({"url": self.url})
