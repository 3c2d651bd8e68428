"""Alert settings validated without running the program (components/settings/alerts.py):
durations in whole minutes, ratios, channels and emails, the backlog default, and a
production stack that must page someone."""

from __future__ import annotations

from typing import Any

import pytest

from components.durations import Duration
from components.settings import ConfigError, parse_pipeline, settings_from_config
from components.settings.alerts import PipelineAlerts, default_backlog_threshold
from tests.infra.conftest import base_config

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
CHANNEL = "projects/acme-prod/notificationChannels/123"


def alerts(**fields: Any) -> PipelineAlerts:
    return parse_pipeline({"service": {"image": IMAGE}, "alerts": fields}).alerts


def problems(**fields: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline({"service": {"image": IMAGE}, "alerts": fields})
    return caught.value.problems


def stack_problems(stack: str, stack_alerts: Any = None) -> list[str] | None:
    config = base_config()
    if stack_alerts is not None:
        config["cloudrun-tasks:alerts"] = stack_alerts
    try:
        settings_from_config(config, stack=stack)
    except ConfigError as error:
        return error.problems
    return None


def test_defaults_are_those_documented() -> None:
    a = alerts()
    assert a.enabled is True
    assert (a.backlog.threshold, a.backlog.duration) == (6000, Duration.of_seconds(300))
    assert (a.failing_attempts.ratio, a.failing_attempts.window, a.failing_attempts.duration) == (
        0.1,
        Duration.of_seconds(600),
        Duration.of_seconds(300),
    )
    assert (a.capacity.duration, a.capacity.error_ratio, a.capacity.error_window) == (
        Duration.of_seconds(900),
        0.05,
        Duration.of_seconds(300),
    )
    assert a.claims_lost.window == Duration.of_seconds(900)


@pytest.mark.parametrize("value", ["60s", "1m", "5m", "1440m", "24h"])
def test_a_whole_number_of_minutes_within_a_day_is_taken(value: str) -> None:
    assert alerts(claimsLost={"window": value}).claims_lost.window == Duration.parse(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("90s", "must be a whole number of minutes, e.g. '300s' or '5m'"),
        ("60.5s", "must be a whole number of minutes, e.g. '300s' or '5m'"),
        ("0s", "must be >= 60s and <= 86400s"),
        ("1441m", "must be >= 60s and <= 86400s"),
    ],
)
def test_other_durations_are_refused(value: str, message: str) -> None:
    assert problems(capacity={"errorWindow": value}) == [
        f'alerts.capacity.errorWindow: {message}, got "{value}"'
    ]


def test_ratios_are_above_zero_and_at_most_one() -> None:
    assert alerts(failingAttempts={"ratio": 1.0}).failing_attempts.ratio == 1.0
    assert alerts(capacity={"errorRatio": 0.001}).capacity.error_ratio == 0.001
    assert problems(failingAttempts={"ratio": 0.0}, capacity={"errorRatio": 1.01}) == [
        "alerts.capacity.errorRatio: must be > 0 and <= 1, got 1.01",
        "alerts.failingAttempts.ratio: must be > 0 and <= 1, got 0.0",
    ]


@pytest.mark.parametrize(
    ("rate", "threshold"), [(10, 6000), (0.5, 300), (0.0017, 2), (0.001, 1), (0.0001, 1)]
)
def test_the_backlog_default_is_ten_minutes_of_work_at_least_one_task(
    rate: float, threshold: int
) -> None:
    assert default_backlog_threshold(rate) == threshold
    resolved = parse_pipeline(
        {"service": {"image": IMAGE}, "queue": {"maxDispatchesPerSecond": rate}}
    )
    assert resolved.alerts.backlog_threshold == threshold


def test_a_backlog_threshold_is_unresolved_until_its_pipeline_resolves_it() -> None:
    bare = PipelineAlerts.model_validate({})
    with pytest.raises(RuntimeError, match="resolved by PipelineSettings"):
        _ = bare.backlog_threshold
    bare.resolve_backlog(2.0)
    assert bare.backlog_threshold == 1200
    bare.resolve_backlog(500.0)  # an explicit or resolved threshold stays
    assert bare.backlog_threshold == 1200


def test_stack_channels_and_emails_are_checked_each_and_listed_once() -> None:
    assert stack_problems(
        "dev",
        {
            "notificationChannels": [CHANNEL, CHANNEL, "projects/acme/notificationChannels/x"],
            "emails": ["oncall@example.com"],
        },
    ) == [
        "alerts.notificationChannels.2: must be a channel id"
        " 'projects/PROJECT/notificationChannels/NUMBER', got"
        ' "projects/acme/notificationChannels/x"'
    ]
    assert stack_problems(
        "dev",
        {
            "notificationChannels": [CHANNEL, CHANNEL],
            "emails": ["a@example.com", "b@example.com", "a@example.com"],
        },
    ) == [
        'alerts.emails.2: is listed twice, got "a@example.com"',
        f'alerts.notificationChannels.1: is listed twice, got "{CHANNEL}"',
    ]
    assert stack_problems("dev", {"emails": ["oncall@", "x y@example.com"]}) == [
        "alerts.emails.0: must be an email address such as 'oncall@example.com', got \"oncall@\"",
        "alerts.emails.1: must be an email address such as 'oncall@example.com', got"
        ' "x y@example.com"',
    ]


PROD_LINE = (
    "alerts.notificationChannels: stack {!r} is production: name at least one notification"
    " channel ('projects/PROJECT/notificationChannels/NUMBER') or alerts.emails, or its"
    " alerts notify nobody"
)


@pytest.mark.parametrize("stack", ["prod", "production"])
@pytest.mark.parametrize(
    "stack_alerts", [None, {}, {"notificationChannels": [], "emails": []}, "oncall"]
)
def test_a_production_stack_must_notify_someone(stack: str, stack_alerts: Any) -> None:
    lines = stack_problems(stack, stack_alerts)
    assert lines is not None and PROD_LINE.format(stack) in lines


@pytest.mark.parametrize(
    "stack_alerts", [{"notificationChannels": [CHANNEL]}, {"emails": ["oncall@example.com"]}]
)
def test_a_production_stack_with_a_channel_or_an_email_is_taken(stack_alerts: Any) -> None:
    assert stack_problems("prod", stack_alerts) is None


@pytest.mark.parametrize("stack", ["dev", "staging", "Prod", "prod-eu", ""])
def test_other_stacks_may_notify_nobody(stack: str) -> None:
    assert stack_problems(stack) is None
    settings = settings_from_config(base_config(), stack=stack)
    assert settings.alerts.has_channels is False


def test_has_channels_with_either_kind() -> None:
    for stack_alerts in ({"notificationChannels": [CHANNEL]}, {"emails": ["a@example.com"]}):
        config = {**base_config(), "cloudrun-tasks:alerts": stack_alerts}
        assert settings_from_config(config, stack="dev").alerts.has_channels is True


def test_the_prod_line_sorts_with_the_other_alerts_problems_by_key() -> None:
    lines = stack_problems("prod", {"emails": "", "notificationZ": 1, "zzz": 1}) or []
    assert [line.split(": ")[0] for line in lines] == [
        "alerts.emails",
        "alerts.notificationChannels",
        "alerts.notificationZ",
        "alerts.zzz",
    ]
    assert lines[1] == PROD_LINE.format("prod")
