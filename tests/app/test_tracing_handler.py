"""The handler continues the task's trace: its log lines (through the real logging
configuration, JSON on stdout) carry Cloud Logging's trace fields, malformed trace context
is ignored and never logged, dead letters keep the original trace context, spans export
only when configured."""

import io
import json
import logging
import logging.config
import time
from collections.abc import Callable, Iterator, Mapping

import pytest
from flask.testing import FlaskClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from handler import settings
from handler.app import Processor, create_app
from handler.dead_letter import ATTRIBUTE_VALUE_MAX_BYTES, DeadLetter, LogDeadLetterSink
from handler.logs import logging_config
from handler.task import PermanentTaskError, TaskRequest, parse_task
from handler.tracing import (
    SAMPLED_FIELD,
    SPAN_ID_FIELD,
    TRACE_FIELD,
    TraceLogFields,
    Tracing,
    annotate,
)

PROJECT = "acme-tasks"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"


def delivery(name: str = "t1", **extra: str) -> dict[str, str]:
    return {
        "X-CloudTasks-QueueName": "orders",
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": "0",
        **extra,
    }


@pytest.fixture
def stdout() -> Iterator[Callable[[], str]]:
    """The real logging configuration, its stdout handler writing to a buffer instead (pytest
    swaps sys.stdout only once the test runs); call it for the text written so far."""
    config = logging_config()
    buffer = io.StringIO()
    config["handlers"]["stdout"]["stream"] = buffer
    logging.config.dictConfig(config)
    try:
        yield buffer.getvalue
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def lines_of(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line]


def app(processor: Processor, tracing: Tracing | None = None) -> FlaskClient:
    return create_app(
        processor,
        dead_letter=LogDeadLetterSink(),
        max_attempts=3,
        tracing=tracing or Tracing(PROJECT),
    ).test_client()


def post(test: FlaskClient, headers: Mapping[str, str], payload: object = None) -> int:
    response = test.post("/", data=json.dumps(payload or {}), headers=dict(headers))
    return response.status_code


def task_line(lines: list[dict[str, object]], name: str = "t1") -> dict[str, object]:
    [line] = [x for x in lines if x.get("taskName") == name and "status" in x]
    return line


def test_the_task_line_and_the_processor_s_lines_continue_the_task_s_trace(
    stdout: Callable[[], str],
) -> None:
    def work(task: TaskRequest) -> None:
        logging.getLogger("user.processor").info("working on %s", task.name)

    assert post(app(work), delivery(traceparent=TRACEPARENT)) == 200
    lines = lines_of(stdout())
    line = task_line(lines)
    assert line[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    # The handler's own span: a child of the task's span, so a new id.
    span_id = line[SPAN_ID_FIELD]
    assert isinstance(span_id, str) and len(span_id) == 16 and span_id != PARENT_SPAN
    int(span_id, 16)
    assert line[SAMPLED_FIELD] is True
    [own] = [x for x in lines if x.get("message") == "working on t1"]
    assert (own[TRACE_FIELD], own[SPAN_ID_FIELD]) == (line[TRACE_FIELD], span_id)


def test_an_unsampled_trace_is_logged_as_unsampled(
    stdout: Callable[[], str],
) -> None:
    assert (
        post(app(lambda _t: None), delivery(traceparent=f"00-{TRACE_ID}-{PARENT_SPAN}-00")) == 200
    )
    line = task_line(lines_of(stdout()))
    assert line[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line[SAMPLED_FIELD] is False


MALFORMED = [
    "garbage",
    f"00-{TRACE_ID}-{PARENT_SPAN}",  # no flags
    f"00-{'0' * 32}-{PARENT_SPAN}-01",  # zero trace id
    f"00-{TRACE_ID}-{'0' * 16}-01",  # zero span id
    f"00-{TRACE_ID.upper()}-{PARENT_SPAN}-01",  # upper-case hex
    f"ff-{TRACE_ID}-{PARENT_SPAN}-01",  # forbidden version
    f"00-{TRACE_ID}-{PARENT_SPAN}-01-extra",  # version 00 has four fields
    f'00-{TRACE_ID}-{PARENT_SPAN}-01","{TRACE_FIELD}":"projects/evil/traces/{TRACE_ID}',
    f"00-{TRACE_ID}x-{PARENT_SPAN}-01",
    f"00-{TRACE_ID}-{PARENT_SPAN}-01 " + "x" * 600,  # over the propagator's 512 characters
]


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_traceparent_is_ignored_and_nothing_of_it_is_logged(
    value: str, stdout: Callable[[], str]
) -> None:
    assert post(app(lambda _t: None), delivery(traceparent=value)) == 200
    out = stdout()
    assert TRACE_ID not in out.lower() and "evil" not in out and "extra" not in out
    line = task_line(lines_of(out))
    # A trace of the delivery's own, not sampled (nothing exports it).
    trace = line[TRACE_FIELD]
    assert isinstance(trace, str) and trace.startswith(f"projects/{PROJECT}/traces/")
    assert len(trace.rsplit("/", 1)[1]) == 32 and line[SAMPLED_FIELD] is False


def test_a_future_version_s_extra_fields_are_dropped_its_ids_kept(
    stdout: Callable[[], str],
) -> None:
    """W3C lets later versions append fields; only the parsed ids reach the log."""
    value = f'01-{TRACE_ID}-{PARENT_SPAN}-01-","{TRACE_FIELD}":"projects/evil/traces/1'
    assert post(app(lambda _t: None), delivery(traceparent=value)) == 200
    out = stdout()
    assert "evil" not in out
    assert task_line(lines_of(out))[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"


def test_a_malformed_tracestate_is_neither_kept_nor_logged(
    stdout: Callable[[], str],
) -> None:
    """OpenTelemetry warns with the bad member's text: that warning must not reach stdout."""
    headers = delivery(traceparent=TRACEPARENT, tracestate="evil member=1")
    assert post(app(lambda _t: None), headers) == 200
    out = stdout()
    assert "evil member" not in out
    assert task_line(lines_of(out))[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"


def test_without_a_project_no_trace_field_is_written(
    stdout: Callable[[], str],
) -> None:
    assert post(app(lambda _t: None, Tracing(None)), delivery(traceparent=TRACEPARENT)) == 200
    line = task_line(lines_of(stdout()))
    assert not {TRACE_FIELD, SPAN_ID_FIELD, SAMPLED_FIELD} & line.keys()


def test_lines_outside_a_delivery_carry_no_trace(
    stdout: Callable[[], str],
) -> None:
    assert post(app(lambda _t: None), delivery(traceparent=TRACEPARENT)) == 200
    logging.getLogger("handler.server").info({"message": "after"})
    [after] = [x for x in lines_of(stdout()) if x.get("message") == "after"]
    assert TRACE_FIELD not in after


def test_the_dead_letter_line_keeps_the_trace_and_the_original_trace_context(
    stdout: Callable[[], str],
) -> None:
    def reject(_task: TaskRequest) -> None:
        raise PermanentTaskError("no")

    headers = delivery(traceparent=f"  {TRACEPARENT}", tracestate="a=1")
    assert post(app(reject), headers) == 200
    [dead] = [x for x in lines_of(stdout()) if x.get("deadLetter")]
    assert dead[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert dead["traceContext"] == {"traceparent": TRACEPARENT, "tracestate": "a=1"}


def parsed(headers: Mapping[str, str]) -> TaskRequest:
    return parse_task({k.lower(): v for k, v in headers.items()}, "/", b"{}")


def test_a_dead_letter_keeps_the_trace_context_however_its_headers_are_cut() -> None:
    crowd = {f"X-Pad-{i}": "v" * 200 for i in range(10)}
    task = parsed(delivery(traceparent=TRACEPARENT, tracestate="a=1", **crowd))
    letter = DeadLetter.of(task, "no")
    assert "headers" in letter.truncated
    assert (letter.attributes["traceparent"], letter.attributes["tracestate"]) == (
        TRACEPARENT,
        "a=1",
    )
    assert "traceparent" not in json.loads(letter.attributes["headers"])
    assert all(len(v.encode()) <= ATTRIBUTE_VALUE_MAX_BYTES for v in letter.attributes.values())


@pytest.mark.parametrize("value", MALFORMED)
def test_a_dead_letter_never_keeps_a_malformed_traceparent(value: str) -> None:
    letter = DeadLetter.of(parsed(delivery(traceparent=value)), "no")
    assert "traceparent" not in letter.attributes
    assert all(value not in v for v in letter.attributes.values())


def test_spans_are_exported_as_children_of_the_task_s_span_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")  # ms: the batch goes out at once
    exporter = InMemorySpanExporter()

    def make() -> SpanExporter:
        return exporter

    assert (
        post(app(lambda _t: None, Tracing(PROJECT, make)), delivery(traceparent=TRACEPARENT)) == 200
    )
    deadline = time.monotonic() + 10
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.02)
    [span] = exporter.get_finished_spans()
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_SPAN
    assert span.context is not None and f"{span.context.trace_id:032x}" == TRACE_ID
    assert (span.name, span.kind) == ("cloudtasks.task", trace.SpanKind.CONSUMER)
    # The instrumentation scope says which code made the span (exported with it).
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "handler"
    assert dict(span.attributes or {}) == {
        "cloudtasks.queue": "orders",
        "cloudtasks.task": "t1",
        "status": "done",
    }


def test_the_export_setting_is_checked_before_anything_starts() -> None:
    described = settings.runtime({"GOOGLE_CLOUD_PROJECT": PROJECT}).describe()["tracing"]
    assert described == (
        f"log lines in traces of project {PROJECT}; spans not exported (TASK_TRACE_EXPORT is"
        " not set)"
    )
    exporting = settings.runtime(
        {"GOOGLE_CLOUD_PROJECT": PROJECT, "TASK_TRACE_EXPORT": "cloud-trace"}
    )
    assert exporting.tracing.exporting
    with pytest.raises(
        settings.SettingsError, match="TASK_TRACE_EXPORT: 'zipkin' must be one of off, cloud-trace"
    ):
        settings.runtime({"TASK_TRACE_EXPORT": "zipkin"})
    with pytest.raises(
        settings.SettingsError, match="TASK_TRACE_EXPORT: cloud-trace needs GOOGLE_CLOUD_PROJECT"
    ):
        settings.runtime({"TASK_TRACE_EXPORT": "cloud-trace"})
    with pytest.raises(
        settings.SettingsError, match="GOOGLE_CLOUD_PROJECT: 'Evil\"' must be a project id"
    ):
        settings.runtime({"GOOGLE_CLOUD_PROJECT": 'Evil"'})


def span_context(trace_id: int, span_id: int, sampled: bool) -> trace.SpanContext:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    return trace.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)


def test_the_log_fields_are_cloud_logging_s_with_the_ids_in_fixed_width_hex() -> None:
    # Leading zeros kept: Cloud Logging matches the 32 and 16 hex digits of the ids.
    context = span_context(0xABC, 0xF0, sampled=True)
    assert Tracing(PROJECT).fields(context) == {
        TRACE_FIELD: f"projects/{PROJECT}/traces/{'0' * 29}abc",
        SPAN_ID_FIELD: f"{'0' * 14}f0",
        SAMPLED_FIELD: True,
    }
    assert Tracing(PROJECT).fields(span_context(1, 2, sampled=False))[SAMPLED_FIELD] is False
    assert Tracing(None).fields(context) == {}


def test_the_exporter_is_made_once_on_first_use_and_its_failure_only_loses_spans(
    stdout: Callable[[], str],
) -> None:
    made: list[int] = []

    def unavailable() -> SpanExporter:
        made.append(1)
        raise RuntimeError("no credentials")

    tracing = Tracing(PROJECT, unavailable)
    assert made == []  # not before the serving process uses it
    test = app(lambda _t: None, tracing)
    assert post(test, delivery("t1", traceparent=TRACEPARENT)) == 200
    assert post(test, delivery("t2", traceparent=TRACEPARENT)) == 200
    assert made == [1]
    lines = lines_of(stdout())
    [error] = [x for x in lines if str(x.get("message", "")).startswith("trace export")]
    assert (error["message"], error["severity"]) == (
        "trace export unavailable: RuntimeError('no credentials')",
        "ERROR",
    )
    # The log lines keep their trace; a new trace would be sampled, as spans are asked for.
    assert task_line(lines, "t2")[TRACE_FIELD] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert post(test, delivery("t3")) == 200
    assert task_line(lines_of(stdout()), "t3")[SAMPLED_FIELD] is True


def test_a_record_logged_outside_a_delivery_is_written_without_trace_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    assert TraceLogFields().filter(record) is True
    assert TRACE_FIELD not in record.__dict__


def test_an_unrecorded_span_is_left_alone() -> None:
    annotate({"status": "done"})  # no delivery's span: nothing to annotate, nothing raised
    assert not trace.get_current_span().is_recording()
