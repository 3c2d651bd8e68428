"""The W3C trace context a task carries (`traceparent`, `tracestate` headers): Cloud Tasks
carries none by itself, so without it the request that enqueued a task and the handler that
ran it are unrelated traces (cloud.google.com/trace/docs/trace-context recommends
`traceparent` for HTTP).

Parsing and writing are OpenTelemetry's TraceContextTextMapPropagator: a header is only ever
re-written from the span context it parsed into, never copied as given.
"""

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = frozenset(PROPAGATOR.fields)
"""traceparent and tracestate, lower-case."""

_IDS = RandomIdGenerator()


def _inject(context: Context | None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context)
    return carrier


def current() -> dict[str, str]:
    """The current span's context as headers; {} when no valid span is current."""
    return _inject(None)


def parsed(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers`' trace context re-written from what the propagator parsed (names in any
    case); {} if there is no valid `traceparent`. An invalid `tracestate` beside a valid
    `traceparent` is dropped, as the propagator drops it."""
    carrier = {
        name.lower(): value for name, value in headers.items() if name.lower() in TRACE_HEADERS
    }
    if "traceparent" not in carrier:
        return {}
    return _inject(PROPAGATOR.extract(carrier))


def new_trace() -> dict[str, str]:
    """A new trace: random trace and span ids (the SDK's generator), flagged sampled so that
    a handler exporting spans records this trace (the handler's sampler decides; nothing is
    recorded on the client's side)."""
    context = trace.SpanContext(
        trace_id=_IDS.generate_trace_id(),
        span_id=_IDS.generate_span_id(),
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return _inject(trace.set_span_in_context(trace.NonRecordingSpan(context)))
