"""Builds the HTTP task for one enqueue: the guide's task plus the options it leaves out."""

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.cloud import tasks_v2
from google.protobuf import duration_pb2, timestamp_pb2

from taskclient import tracing
from taskclient.errors import UsageError
from taskclient.pipelines import Pipeline
from taskclient.shared import (
    MAX_DISPATCH_DEADLINE,
    MAX_SCHEDULE_AHEAD,
    MAX_TASK_BYTES,
    MIN_DISPATCH_DEADLINE,
    NANOS_PER_SECOND,
    Duration,
)


@dataclass(frozen=True)
class TaskSpec:
    """What the caller wants delivered; the pipeline supplies queue, URL and identity.

    `payload`: bytes are sent as they are (application/octet-stream unless a Content-Type
    header says otherwise), None sends no body, anything else is sent as JSON.
    `delay` and `schedule_time` (timezone-aware) are alternatives; neither means now.
    `dispatch_deadline` defaults to the pipeline's. `dedup_key` is hashed into the task id.
    `replay_of` (`queue/task`, set by `replay` only) is sent as X-Replay-Of: the handler
    keys the task's idempotency on that original task, so the header is refused in `headers`.
    Trace context: a `traceparent` (and `tracestate`) in `headers` is the task's (a replay
    keeps its original's); else the current OpenTelemetry span's; else a new trace per task
    (taskclient/tracing.py).
    """

    payload: object = None
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: Duration | None = None
    schedule_time: datetime | None = None
    dispatch_deadline: Duration | None = None
    dedup_key: str | None = None
    replay_of: str | None = None


REPLAY_OF_HEADER = "X-Replay-Of"


def task_id(dedup_key: str) -> str:
    """A de-dup key as a task id: hashed, because Cloud Tasks only allows [A-Za-z0-9_-] in ids
    and sequential or timestamp-like ids slow its de-duplication index down."""
    return hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()


def body_of(spec: TaskSpec) -> tuple[bytes, str | None]:
    if spec.payload is None:
        return b"", None
    if isinstance(spec.payload, bytes):
        return spec.payload, "application/octet-stream"
    try:
        return json.dumps(spec.payload, separators=(",", ":")).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as exc:
        raise UsageError(f"payload: not JSON-serializable ({exc})") from None


def _trace_headers(given: Mapping[str, str]) -> dict[str, str]:
    """The task's trace context: `given` (its traceparent/tracestate headers) if any, else the
    current span's, else a new trace.

    A new trace per task, not per bulk run: each task is its own unit of work, and one trace
    holding a whole run's tasks (up to millions of handler spans) would be unreadable. To group
    a run, enqueue it inside a span: every task then carries that span's trace."""
    if not given:
        return tracing.current() or tracing.new_trace()
    names = {name.lower(): name for name in given}
    if "traceparent" not in names:
        raise UsageError("--header: tracestate needs a traceparent header beside it")
    headers = tracing.parsed(given)
    if not headers:
        raise UsageError(
            f"--header: traceparent {given[names['traceparent']]!r} is not a valid W3C"
            " traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>, ids not all 0)"
        )
    if "tracestate" in names and "tracestate" not in headers:
        raise UsageError(
            f"--header: tracestate {given[names['tracestate']]!r} is not a valid W3C"
            " tracestate (comma-separated key=value members)"
        )
    return headers


def _headers(spec: TaskSpec, content_type: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    trace_given: dict[str, str] = {}
    for name, value in spec.headers.items():
        if not name or any(ch in name + value for ch in "\r\n") or ":" in name:
            raise UsageError(f"--header: {name!r} is not a valid header; use 'Name: value'")
        if name.lower() == REPLAY_OF_HEADER.lower():
            # A task carrying it shares another task's idempotency record: it could be
            # taken for that task's duplicate and never run.
            raise UsageError(f"--header: {name} is reserved for `taskclient replay`")
        if name.lower() in tracing.TRACE_HEADERS:
            trace_given[name] = value
        else:
            headers[name] = value
    headers.update(_trace_headers(trace_given))
    if spec.replay_of is not None:
        headers[REPLAY_OF_HEADER] = spec.replay_of
    if content_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = content_type
    return headers


def _schedule_time(spec: TaskSpec) -> timestamp_pb2.Timestamp | datetime | None:
    if spec.delay is not None and spec.schedule_time is not None:
        raise UsageError("--delay/--at: give one of them, not both")
    if spec.delay is not None:
        if spec.delay > MAX_SCHEDULE_AHEAD:
            raise UsageError(
                f"--delay: {spec.delay} is more than Cloud Tasks' 30 days ({MAX_SCHEDULE_AHEAD})"
            )
        # Integer nanoseconds end to end: the task runs exactly `delay` from now.
        seconds, nanos = divmod(time.time_ns() + spec.delay.nanos, NANOS_PER_SECOND)
        return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    if spec.schedule_time is not None:
        if spec.schedule_time.tzinfo is None:
            raise UsageError("--at: needs a timezone, e.g. 2030-01-01T12:00:00Z")
        ahead = (spec.schedule_time - datetime.now(UTC)).total_seconds()
        if ahead > MAX_SCHEDULE_AHEAD.seconds:
            raise UsageError("--at: more than Cloud Tasks' 30 days ahead")
    return spec.schedule_time


def build_task(pipeline: Pipeline, spec: TaskSpec) -> tasks_v2.Task:
    """The task for `spec` on `pipeline`: URL = service URL + path, OIDC token for the invoker
    account with the service URL as audience (set explicitly: the default audience is the full
    URL, which makes paths and query strings fail with 401). UsageError if it is over
    Cloud Tasks' size limit (taskclient/offload.py moves big bodies out first)."""
    task, size = build_task_unchecked(pipeline, spec)
    if size > MAX_TASK_BYTES:
        hint = (
            ""
            if pipeline.payload_bucket
            else "; enable `payloads` on the pipeline to send bigger bodies through Cloud Storage"
        )
        raise UsageError(
            f"task: {size} bytes, over Cloud Tasks' task size limit of {MAX_TASK_BYTES} bytes"
            f" (1 MB, Cloud Tasks quotas){hint}"
        )
    return task


def build_task_unchecked(pipeline: Pipeline, spec: TaskSpec) -> tuple[tasks_v2.Task, int]:
    """The task and its serialized size, whatever the size."""
    if not spec.path.startswith("/"):
        raise UsageError(f"--path: {spec.path!r} must start with '/'")
    deadline = spec.dispatch_deadline or pipeline.dispatch_deadline
    if not MIN_DISPATCH_DEADLINE <= deadline <= MAX_DISPATCH_DEADLINE:
        raise UsageError(
            f"--deadline: {deadline} is outside Cloud Tasks' range of"
            f" {MIN_DISPATCH_DEADLINE} to {MAX_DISPATCH_DEADLINE}"
        )
    if spec.dedup_key is not None and not spec.dedup_key:
        raise UsageError("--dedup-key: must not be empty")
    body, content_type = body_of(spec)
    task = tasks_v2.Task(
        # Unnamed tasks get a random id from Cloud Tasks, which is cheaper than a named one.
        name=f"{pipeline.queue}/tasks/{task_id(spec.dedup_key)}" if spec.dedup_key else "",
        http_request=tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=pipeline.service_url.rstrip("/") + spec.path,
            headers=_headers(spec, content_type),
            body=body,
            oidc_token=tasks_v2.OidcToken(
                service_account_email=pipeline.invoker_service_account,
                audience=pipeline.service_url,
            ),
        ),
        dispatch_deadline=duration_pb2.Duration(
            seconds=deadline.seconds, nanos=deadline.nanos_part
        ),
        schedule_time=_schedule_time(spec),
    )
    return task, tasks_v2.Task.pb(task).ByteSize()
