"""Each delivery continues the trace its task carries (W3C `traceparent`, set by taskclient),
so that Cloud Logging shows the enqueue and the processing as one trace.

- The trace context is parsed by OpenTelemetry's TraceContextTextMapPropagator, which
  validates it: a malformed `traceparent` is ignored (the delivery starts a new trace), and
  nothing of it reaches a log line. Log fields are formatted from the parsed integer ids.
- The handler makes its own span per delivery (OpenTelemetry SDK), a child of the task's;
  every line logged while the delivery is handled (the task's line, dead letters, the
  processor's own lines) carries Cloud Logging's special fields
  (docs.cloud.google.com/logging/docs/structured-logging#structured_logging_special_fields):
  `logging.googleapis.com/trace` = projects/P/traces/<32 hex>, `logging.googleapis.com/spanId`
  = the handler's span (16 hex), `logging.googleapis.com/trace_sampled`. Without a project id
  (GOOGLE_CLOUD_PROJECT) there is no trace resource name to write, so no fields.
- Spans are exported only when asked (TASK_TRACE_EXPORT=cloud-trace, handler/settings.py):
  then the sampler follows the task's sampled flag (and samples new traces); otherwise it
  never samples a new trace, so `trace_sampled` never claims a trace that is not stored.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_ID_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"

PROPAGATOR = TraceContextTextMapPropagator()

logger = logging.getLogger("handler.tracing")

# The log fields of the delivery this thread is handling (set by Tracing.task_span).
_FIELDS: ContextVar[Mapping[str, object] | None] = ContextVar("trace_log_fields", default=None)


def trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The valid trace context in `headers` (lower-case names), re-written from what the
    propagator parsed; {} if there is none. What a dead letter keeps for its replay."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, PROPAGATOR.extract(headers))
    return carrier


class TraceLogFields(logging.Filter):
    """Adds the current delivery's trace fields to every record (on the stdout handler, like
    handler.logs.RedactCredentials); records logged outside a delivery get none."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _FIELDS.get()
        if fields:
            record.__dict__.update(fields)
        return True


class Tracing:
    """Spans for deliveries. `make_exporter` (None: spans are not exported) is called once, on
    first use in the serving process: a gRPC client must not be created before gunicorn forks."""

    def __init__(
        self, project: str | None, make_exporter: Callable[[], SpanExporter] | None = None
    ) -> None:
        self.project = project
        self._make_exporter = make_exporter
        self._tracer: trace.Tracer | None = None
        self._lock = threading.Lock()

    @property
    def exporting(self) -> bool:
        return self._make_exporter is not None

    def provider(self) -> TracerProvider:
        sampler = ParentBased(ALWAYS_ON if self.exporting else ALWAYS_OFF)
        provider = TracerProvider(sampler=sampler)
        if self._make_exporter is not None:
            try:
                provider.add_span_processor(BatchSpanProcessor(self._make_exporter()))
            except Exception as exc:
                # Logs keep their trace fields; only the spans are lost, and said so.
                logger.error({"message": f"trace export unavailable: {exc!r}"})
        return provider

    def tracer(self) -> trace.Tracer:
        with self._lock:
            if self._tracer is None:
                self._tracer = self.provider().get_tracer("handler")
            return self._tracer

    def fields(self, context: trace.SpanContext) -> Mapping[str, object]:
        if self.project is None:
            return {}
        return {
            TRACE_FIELD: f"projects/{self.project}/traces/{context.trace_id:032x}",
            SPAN_ID_FIELD: f"{context.span_id:016x}",
            SAMPLED_FIELD: context.trace_flags.sampled,
        }

    @contextmanager
    def task_span(self, headers: Mapping[str, str]) -> Iterator[None]:
        """While one delivery (`headers` with lower-case names) is handled: its span is
        current, and every log line carries its trace fields."""
        parent = PROPAGATOR.extract(headers)
        with self.tracer().start_as_current_span(
            "cloudtasks.task", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            token = _FIELDS.set(self.fields(span.get_span_context()))
            try:
                yield
            finally:
                _FIELDS.reset(token)


def annotate(attributes: Mapping[str, str | int]) -> None:
    """Adds the delivery's outcome to its span (when it is recorded)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(dict(attributes))
