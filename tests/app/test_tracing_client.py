"""The trace context the client puts on each task: the current span's, a given one, or a new
trace; and a replay keeps its original task's."""

import json
from collections.abc import Iterator

import pytest
from google.pubsub_v1 import PubsubMessage, ReceivedMessage
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from taskclient import Pipeline, TaskSpec, UsageError, build_task
from taskclient.replay import decode
from tests.app.helpers import pipeline_output

QUEUE = "projects/p/locations/us-central1/queues/orders"
URL = "https://orders-xyz-uc.a.run.app"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline.model_validate(pipeline_output(QUEUE, URL))


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    """A real SDK tracer (not installed globally: the span is made current by the test)."""
    provider = TracerProvider()
    yield provider.get_tracer("tests")
    provider.shutdown()


def parent_of(headers: dict[str, str]) -> trace.SpanContext:
    """What a receiving handler's propagator makes of the task's headers."""
    context = TraceContextTextMapPropagator().extract({k.lower(): v for k, v in headers.items()})
    return trace.get_current_span(context).get_span_context()


def test_a_task_enqueued_inside_a_span_carries_that_span(
    pipeline: Pipeline, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("enqueue") as span:
        headers = dict(build_task(pipeline, TaskSpec(payload={"id": 1})).http_request.headers)
    context = span.get_span_context()
    received = parent_of(headers)
    assert received.is_valid
    assert (received.trace_id, received.span_id) == (context.trace_id, context.span_id)
    assert received.trace_flags.sampled


def test_the_span_s_tracestate_travels_too(pipeline: Pipeline, tracer: trace.Tracer) -> None:
    parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(
                int(TRACE_ID, 16),
                0x00F067AA0BA902B7,
                is_remote=True,
                trace_flags=trace.TraceFlags(1),
                trace_state=trace.TraceState([("vendor", "abc")]),
            )
        )
    )
    with tracer.start_as_current_span("enqueue", context=parent):
        headers = dict(build_task(pipeline, TaskSpec()).http_request.headers)
    assert headers["tracestate"] == "vendor=abc"
    assert headers["traceparent"].split("-")[1] == TRACE_ID


def test_without_a_span_each_task_starts_its_own_trace(pipeline: Pipeline) -> None:
    assert not trace.get_current_span().get_span_context().is_valid
    first, second = (
        parent_of(dict(build_task(pipeline, TaskSpec()).http_request.headers)) for _ in range(2)
    )
    assert first.is_valid and second.is_valid
    assert first.trace_id != second.trace_id
    assert first.trace_flags.sampled


def test_a_given_traceparent_is_kept_over_the_current_span(
    pipeline: Pipeline, tracer: trace.Tracer
) -> None:
    spec = TaskSpec(headers={"TraceParent": f" {TRACEPARENT}", "tracestate": "a=1,b=2"})
    with tracer.start_as_current_span("elsewhere"):
        headers = dict(build_task(pipeline, spec).http_request.headers)
    # Re-written from the parsed context: lower-case names, no stray whitespace.
    assert (headers["traceparent"], headers["tracestate"]) == (TRACEPARENT, "a=1,b=2")
    assert "TraceParent" not in headers


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        f"{TRACEPARENT}-extra",  # version 00 has exactly four fields
    ],
)
def test_a_malformed_given_traceparent_is_refused_by_name(pipeline: Pipeline, value: str) -> None:
    with pytest.raises(UsageError, match=r"traceparent .* is not a valid W3C traceparent"):
        build_task(pipeline, TaskSpec(headers={"traceparent": value}))


def test_a_tracestate_alone_or_malformed_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(UsageError, match="tracestate needs a traceparent"):
        build_task(pipeline, TaskSpec(headers={"tracestate": "a=1"}))
    with pytest.raises(UsageError, match="tracestate 'not a member' is not a valid"):
        build_task(
            pipeline, TaskSpec(headers={"traceparent": TRACEPARENT, "tracestate": "not a member"})
        )


def letter(**attributes: str) -> ReceivedMessage:
    base = {
        "taskName": "t1",
        "queue": "orders",
        "path": "/orders",
        "contentType": "application/json",
        "headers": json.dumps({"X-Tenant": "acme"}),
    }
    message = PubsubMessage(data=b"{}", message_id="m1", attributes={**base, **attributes})
    return ReceivedMessage(ack_id="a1", message=message)


def test_a_replay_keeps_the_original_task_s_trace(pipeline: Pipeline, tracer: trace.Tracer) -> None:
    spec = decode(letter(traceparent=TRACEPARENT, tracestate="a=1")).spec()
    with tracer.start_as_current_span("replay run"):
        headers = dict(build_task(pipeline, spec).http_request.headers)
    assert (headers["traceparent"], headers["tracestate"]) == (TRACEPARENT, "a=1")
    assert headers["X-Tenant"] == "acme"


@pytest.mark.parametrize(
    "value", ["garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nX-Evil: 1"]
)
def test_a_letter_with_a_malformed_traceparent_is_replayed_under_a_new_trace(
    pipeline: Pipeline, value: str
) -> None:
    headers = dict(
        build_task(pipeline, decode(letter(traceparent=value)).spec()).http_request.headers
    )
    received = parent_of(headers)
    assert received.is_valid and f"{received.trace_id:032x}" != TRACE_ID
    assert value not in headers.values()
