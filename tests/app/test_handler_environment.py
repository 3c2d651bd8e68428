"""The handler's environment at its edges: each bad variable's exact refusal, the limits
accepted and one past them refused, and what the start-up line says of each choice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handler import settings
from handler.settings import SettingsError


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        settings.runtime(environ)
    return str(raised.value)


@pytest.mark.parametrize(("raw", "threads"), [("1", 1), ("1000", 1000), (" 7 ", 7)])
def test_concurrency_from_one_to_cloud_runs_limit(raw: str, threads: int) -> None:
    assert settings.runtime({"TASK_CONCURRENCY": raw}).threads == threads


@pytest.mark.parametrize("raw", ["0", "1001", "-1", "1.5", "8a", "٣", "²"])
def test_concurrency_outside_the_range_or_not_a_number_is_refused(raw: str) -> None:
    assert refusal({"TASK_CONCURRENCY": raw}) == (
        f"TASK_CONCURRENCY: {raw!r} must be an integer from 1 to 1000"
    )


@pytest.mark.parametrize(("raw", "seconds"), [("0.001s", 0.001), ("30s", 30.0), ("1800s", 1800.0)])
def test_the_dispatch_deadline_is_read_from_its_variable(raw: str, seconds: float) -> None:
    runtime = settings.runtime({"TASK_DISPATCH_DEADLINE": raw})
    assert runtime.dispatch_deadline == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["0s", "0.0s", "600", "-5s", "1e3s", "s"])
def test_a_deadline_that_is_not_a_positive_number_of_seconds_is_refused(raw: str) -> None:
    assert refusal({"TASK_DISPATCH_DEADLINE": raw}) == (
        f"TASK_DISPATCH_DEADLINE: {raw!r} must be a positive number of seconds, e.g. '600s'"
    )


@pytest.mark.parametrize("raw", ["orders", "projects/p/topics/", "projects/p/subscriptions/s"])
def test_a_topic_that_is_not_a_topic_path_is_refused(raw: str) -> None:
    assert refusal({"TASK_DEAD_LETTER_TOPIC": raw}) == (
        f"TASK_DEAD_LETTER_TOPIC: {raw!r} must be projects/P/topics/T"
    )


def test_the_publish_timeout_is_a_third_of_the_deadline_up_to_30_s() -> None:
    topic = "projects/p/topics/dl"
    short = settings.runtime({"TASK_DEAD_LETTER_TOPIC": topic, "TASK_DISPATCH_DEADLINE": "60s"})
    assert short.describe()["deadLetters"] == f"pubsub topic {topic}, publish timeout 20s"
    at_host = settings.runtime(
        {"TASK_DEAD_LETTER_TOPIC": topic, "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}
    )
    assert at_host.describe()["deadLetters"] == (
        f"pubsub topic {topic} at 127.0.0.1:8085, publish timeout 30s"
    )


def test_the_store_line_names_the_emulator_and_the_lease_from_the_deadline() -> None:
    runtime = settings.runtime(
        {
            "TASK_FIRESTORE_DATABASE": " tasks-dev ",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080",
            "TASK_DISPATCH_DEADLINE": "30s",
        }
    )
    assert runtime.describe()["idempotencyStore"] == (
        "firestore database 'tasks-dev' at 127.0.0.1:8080, collection 'idempotency', lease 15s"
        " renewed while the work runs, records kept per the database's TTL policy"
    )
    assert runtime.describe()["dispatchDeadline"] == "30s"


def test_tracing_names_the_project_and_whether_spans_leave() -> None:
    off = settings.runtime({"GOOGLE_CLOUD_PROJECT": "acme-prod"})
    assert off.tracing.project == "acme-prod"
    assert off.describe()["tracing"] == (
        "log lines in traces of project acme-prod; spans not exported (TASK_TRACE_EXPORT is"
        " not set)"
    )
    on = settings.runtime({"GOOGLE_CLOUD_PROJECT": "acme-prod", "TASK_TRACE_EXPORT": "cloud-trace"})
    assert on.tracing.project == "acme-prod"
    assert on.describe()["tracing"] == (
        "log lines in traces of project acme-prod; spans exported to Cloud Trace"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TASK_TRACE_EXPORT": "cloud-trace"},
            "TASK_TRACE_EXPORT: cloud-trace needs GOOGLE_CLOUD_PROJECT",
        ),
        (
            {"TASK_TRACE_EXPORT": "jaeger"},
            "TASK_TRACE_EXPORT: 'jaeger' must be one of off, cloud-trace",
        ),
        (
            {"GOOGLE_CLOUD_PROJECT": "Acme"},
            "GOOGLE_CLOUD_PROJECT: 'Acme' must be a project id (lowercase letters, digits and"
            " hyphens, starting with a letter)",
        ),
    ],
)
def test_tracing_refusals(environ: dict[str, str], message: str) -> None:
    assert refusal(environ) == message


@pytest.mark.parametrize(("raw", "attempts"), [("", None), ("-1", None), ("1", 1), (" 100 ", 100)])
def test_max_attempts(raw: str, attempts: int | None) -> None:
    assert settings.max_attempts({"TASK_MAX_ATTEMPTS": raw}) == attempts


@pytest.mark.parametrize("raw", ["0", "-2", "x", "1.0"])
def test_max_attempts_refusals(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings.max_attempts({"TASK_MAX_ATTEMPTS": raw})
    assert str(raised.value) == f"TASK_MAX_ATTEMPTS: {raw!r} must be a positive integer or -1"


@pytest.mark.parametrize(
    ("raw", "duration"),
    [
        ("", None),
        ("0s", None),
        ("0.000s", None),
        ("600s", timedelta(seconds=600)),
        ("0.5s", timedelta(seconds=0.5)),
    ],
)
def test_max_retry_duration(raw: str, duration: timedelta | None) -> None:
    assert settings.max_retry_duration({"TASK_MAX_RETRY_DURATION": raw}) == duration


def test_max_retry_duration_refusal() -> None:
    with pytest.raises(SettingsError) as raised:
        settings.max_retry_duration({"TASK_MAX_RETRY_DURATION": "10m"})
    assert str(raised.value) == (
        "TASK_MAX_RETRY_DURATION: '10m' must be a number of seconds, e.g. '600s' (0s: unlimited)"
    )


def test_schedules() -> None:
    assert settings.schedules({}) == {}
    assert settings.schedules({"TASK_SCHEDULES": ' {"a_b": "/reports"} '}) == {"a_b": "/reports"}
    for bad in ["[]", '{"a": "reports"}', '{"a": 1}', "{", "[" * 100_000]:
        with pytest.raises(SettingsError) as raised:
            settings.schedules({"TASK_SCHEDULES": bad})
        assert str(raised.value) == (
            "TASK_SCHEDULES: must be a JSON object of job id -> task path starting with '/',"
            ' e.g. {"orders_nightly": "/reports"}'
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("handler.example", "TASK_PROCESSOR: 'handler.example' must be module:function"),
        (":process", "TASK_PROCESSOR: ':process' must be module:function"),
        ("handler.example:", "TASK_PROCESSOR: 'handler.example:' must be module:function"),
        (
            "handler.example:nothing",
            "TASK_PROCESSOR: 'handler.example' has no function 'nothing'",
        ),
        (
            "handler.example:logger",
            "TASK_PROCESSOR: 'handler.example' has no function 'logger'",
        ),
    ],
)
def test_processor_refusals(spec: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings.processor({"TASK_PROCESSOR": spec})
    assert str(raised.value) == message


def test_the_processor_default_and_an_unimportable_module() -> None:
    from handler import example

    assert settings.processor({}) is example.process
    assert settings.processor({"TASK_PROCESSOR": ""}) is example.process
    with pytest.raises(SettingsError, match=r"^TASK_PROCESSOR: cannot import 'no_such_mod': "):
        settings.processor({"TASK_PROCESSOR": "no_such_mod:f"})


def test_unset_retry_limits_are_unlimited() -> None:
    assert settings.max_attempts({}) is None
    assert settings.max_retry_duration({}) is None


def test_the_processor_is_split_at_the_first_colon() -> None:
    with pytest.raises(SettingsError) as raised:
        settings.processor({"TASK_PROCESSOR": "handler.example:process:x"})
    assert str(raised.value) == "TASK_PROCESSOR: 'handler.example' has no function 'process:x'"
