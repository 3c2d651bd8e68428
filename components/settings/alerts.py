"""Alerting settings: where alerts go (per stack) and when they fire (per pipeline).

Stack level, `cloudrun-tasks:alerts`: existing notification channels by id, and email
addresses the stack makes channels for. Pipeline level, `pipelines.P.alerts`: whether the
pipeline's policies are enabled, and overrides of each condition's threshold and duration.
A default that depends on the pipeline (the backlog threshold) is resolved from its queue.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..durations import Duration
from .validation import (
    Problem,
    Settings,
    fail,
    known,
    matching,
    within,
)

# A notification channel's resource name (monitoring/api/ref_v3/rest/v3/
# projects.notificationChannels: `projects/[PROJECT_ID_OR_NUMBER]/notificationChannels/
# [CHANNEL_ID]`, the id a number the API assigns).
CHANNEL_ID = (
    r"projects/(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})/notificationChannels/[0-9]{1,20}"
)
# Addresses only as far as a typo shows: the channel's verification mail checks the rest.
EMAIL = r"[^@\s]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# Stacks whose name says production: they must page someone (ConfigError otherwise).
PROD_STACKS = frozenset({"prod", "production"})

# Condition durations and windows: whole minutes. Cloud Tasks and Cloud Run metrics are
# sampled every 60 s (monitoring/api/metrics_gcp_c, metrics_gcp_p_z: "Sampled every 60
# seconds"), so a shorter window holds no point; PromQL conditions are evaluated on a
# multiple of 30 s (monitoring/promql/promql-in-alerting). A day bounds them: an alert
# that needs longer to decide has stopped being an alert.
MINUTE = Duration.of_seconds(60)
MAX_ALERT_DURATION = Duration.of_seconds(24 * 3600)
# Default: ten minutes of work at the queue's maxDispatchesPerSecond.
BACKLOG_MINUTES_OF_WORK = 10
MAX_BACKLOG_THRESHOLD = 10**9


def _minutes(value: Duration) -> Duration:
    if value.nanos % MINUTE.nanos:
        raise fail("must be a whole number of minutes, e.g. '300s' or '5m'")
    if not MINUTE <= value <= MAX_ALERT_DURATION:
        raise fail(f"must be >= {MINUTE} and <= {MAX_ALERT_DURATION}")
    return value


AlertDuration = Annotated[Duration, AfterValidator(_minutes)]
Ratio = Annotated[float, within(0, 1, low_open=True)]
ChannelId = Annotated[
    str,
    matching(CHANNEL_ID, "a channel id 'projects/PROJECT/notificationChannels/NUMBER'"),
]
Email = Annotated[str, matching(EMAIL, "an email address such as 'oncall@example.com'")]


class BacklogAlert(Settings):
    """Alert 1: tasks waiting in the queue (`queue/depth`) above `threshold` for `duration`."""

    # Default (None): ten minutes of work at maxDispatchesPerSecond (PipelineSettings.resolve).
    threshold: Annotated[int, within(1, MAX_BACKLOG_THRESHOLD)] | None = None
    """Tasks waiting, 1..10^9; default ten minutes of work at `queue.maxDispatchesPerSecond` (10/s:
    6000)."""
    duration: AlertDuration = Duration.of_seconds(300)
    """How long above the threshold: whole minutes, 60s..24h."""


class FailingAttemptsAlert(Settings):
    """Alert 2: share of attempts answered non-OK (`queue/task_attempt_count`) over `window`."""

    ratio: Ratio = 0.1
    """Share of attempts answered non-OK, in (0, 1]."""
    window: AlertDuration = Duration.of_seconds(600)
    """Over how long the share is taken: whole minutes, 60s..24h."""
    duration: AlertDuration = Duration.of_seconds(300)
    """How long above the ratio: whole minutes, 60s..24h."""


class CapacityAlert(Settings):
    """Alert 4: the service at maxInstances for `duration`, or 5xx share above `errorRatio`."""

    duration: AlertDuration = Duration.of_seconds(900)
    """How long at `maxInstances`: whole minutes, 60s..24h."""
    error_ratio: Ratio = Field(0.05, alias="errorRatio")
    """Share of 5xx answers, in (0, 1]."""
    error_window: AlertDuration = Field(Duration.of_seconds(300), alias="errorWindow")
    """Over how long the 5xx share is taken: whole minutes, 60s..24h."""


class ClaimsLostAlert(Settings):
    """Alert 5: a claim lost (the handler's `claim_lost` lines, counted by the pipeline's
    logs-based metric) within `window`: a task that may have run twice."""

    # As the schedules' failing-ticks alert, the other count of log lines: a logs-based
    # metric's point can arrive minutes after its entry, well inside 15 minutes.
    window: AlertDuration = Duration.of_seconds(900)
    """How long one lost claim keeps the alert firing: whole minutes, 60s..24h. Each loss is one
    event, so this is how long it stays an open incident, not a rate's window."""


class PipelineAlerts(Settings):
    """A pipeline's alert policies. `enabled: false` keeps them, disabled (the policy pack
    refuses that in prod): history stays and turning them back on changes one field."""

    enabled: bool = True
    """`false` keeps the policies, disabled; the policy pack's `queue-alerts-present` refuses that
    in prod."""
    backlog: BacklogAlert = Field(default_factory=lambda: BacklogAlert.model_validate({}))
    """The backlog alert (queue depth)."""
    failing_attempts: FailingAttemptsAlert = Field(
        default_factory=lambda: FailingAttemptsAlert.model_validate({}), alias="failingAttempts"
    )
    """The failing-attempts alert (share of non-OK attempts)."""
    capacity: CapacityAlert = Field(default_factory=lambda: CapacityAlert.model_validate({}))
    """The capacity alert (instances at the maximum, or 5xx answers)."""
    claims_lost: ClaimsLostAlert = Field(
        default_factory=lambda: ClaimsLostAlert.model_validate({}), alias="claimsLost"
    )
    """The claims-lost alert (a delivery lost its claim: the task may have run twice)."""

    def resolve_backlog(self, max_dispatches_per_second: float) -> None:
        if self.backlog.threshold is None:
            self.backlog.threshold = default_backlog_threshold(max_dispatches_per_second)

    @property
    def backlog_threshold(self) -> int:
        if self.backlog.threshold is None:
            raise RuntimeError("backlog.threshold is resolved by PipelineSettings")
        return self.backlog.threshold


def default_backlog_threshold(max_dispatches_per_second: float) -> int:
    """Ten minutes of work at the queue's dispatch rate: a backlog the queue can't clear
    in that time at full speed is one a person should look at."""
    return max(1, math.ceil(BACKLOG_MINUTES_OF_WORK * 60 * max_dispatches_per_second))


class StackAlerts(Settings):
    """Where a stack's alerts go: existing channels, and emails it makes channels for.

    With neither, incidents still open in Cloud Monitoring but notify nobody: allowed in
    dev and staging, a ConfigError in prod (PROD_STACKS)."""

    notification_channels: list[ChannelId] = Field(
        default_factory=list, alias="notificationChannels"
    )
    """Existing Cloud Monitoring channels, `projects/PROJECT/notificationChannels/NUMBER`."""
    emails: list[Email] = Field(default_factory=list)
    """Email addresses the stack creates email channels for."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        for key, values in (
            ("notificationChannels", view.notification_channels),
            ("emails", view.emails),
        ):
            if known(values):
                for index, value in enumerate(values):
                    if value in values[:index]:
                        yield ((key, index), "is listed twice", value)

    @property
    def has_channels(self) -> bool:
        return bool(self.notification_channels or self.emails)


def prod_problems(stack: str, raw: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """A prod stack must notify someone: at least one channel id or email."""
    if stack not in PROD_STACKS:
        return []
    alerts = raw.get("alerts")
    if isinstance(alerts, dict) and (alerts.get("notificationChannels") or alerts.get("emails")):
        return []
    return [
        (
            ("alerts", "notificationChannels"),
            f"alerts.notificationChannels: stack {stack!r} is production: name at least one"
            " notification channel ('projects/PROJECT/notificationChannels/NUMBER') or"
            " alerts.emails, or its alerts notify nobody",
        )
    ]
