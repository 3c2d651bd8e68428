"""Where a task goes when it will never succeed: Cloud Tasks has no dead-letter queue and
drops a task after its last attempt, so the handler records it before answering.

A sink's `write` returns once the record is safely kept and raises otherwise; the handler
answers 2xx only after it returned (handler/app.py). Two sinks:
  PubSubDeadLetterSink (handler/pubsub_sink.py)  a message on the pipeline's dead-letter
      topic, kept by its subscription for replay (`python -m taskclient replay`)
  LogDeadLetterSink  structured ERROR lines, the whole record in parts; the default without
      a topic, and the last resort when publishing fails on a task's last attempt
"""

import base64
import json
import logging
from dataclasses import dataclass
from typing import Protocol

from handler.logs import is_credential
from handler.task import REPLAY_OF_HEADER, TaskRequest
from handler.tracing import trace_headers

# Pub/Sub's limit on one attribute value: 1024 bytes (cloud.google.com/pubsub/quotas,
# "Resource limits": attribute value size 1,024 bytes; the API's own error text quoted in
# googleapis/google-cloud-python#7906).
# Keys here are short fixed names, far below the key limit; 10 attributes, far below 100.
ATTRIBUTE_VALUE_MAX_BYTES = 1024
# Cloud Logging refuses entries over 256 KB: the log record carries the body in parts of
# this many bytes (base64 makes 4/3 of it), so that a body of any size is logged whole.
BODY_PART_BYTES = 64 * 1024

# Not kept for replay: headers with their own attribute, and those the transport (Cloud
# Tasks, Cloud Run's front end) adds to every request. They would crowd out the user's own
# headers in the 1024 bytes, and a replayed task gets its own.
_TRANSPORT = {
    "accept-encoding", "connection", "content-length", "content-type", "forwarded", "host",
    "traceparent", "tracestate", "user-agent", "via", "x-cloud-trace-context",
}  # fmt: skip
_TRANSPORT_PREFIXES = ("x-cloudtasks-", "x-forwarded-")

# A dead letter whose attributes had to be cut carries the whole request in its data
# instead, as JSON (ENVELOPE_FIELDS, and the body as base64), marked by this attribute:
# `taskclient replay` sends exactly what arrived. Pub/Sub takes up to 10 MB of data, and a
# task's body is at most Cloud Tasks' task size (larger bodies travel as claim checks).
ENVELOPE_ATTRIBUTE = "envelope"
ENVELOPE_VERSION = "1"
# What a replay needs of the request, each kept whole in the envelope.
REPLAYED = ("taskName", "queue", "originalTask", "path", "contentType", "headers")
TRACE_NAMES = ("traceparent", "tracestate")

logger = logging.getLogger("handler.dead_letter")


def replay_headers(task: TaskRequest) -> dict[str, str]:
    """The request's own headers, by name: no credential, nothing the transport adds, not
    X-Replay-Of (the dead letter's `originalTask` holds it)."""
    return {
        name: value
        for name, value in sorted(task.headers.items())
        if not is_credential(name)
        and name not in _TRANSPORT
        and not name.startswith(_TRANSPORT_PREFIXES)
        and name != REPLAY_OF_HEADER
    }


def _cut(text: str, limit: int = ATTRIBUTE_VALUE_MAX_BYTES) -> str:
    return text.encode()[:limit].decode(errors="ignore")


@dataclass(frozen=True)
class DeadLetter:
    """The message attributes for one dead letter (its data is the request body, whole).

    `truncated` names the attributes cut to fit Pub/Sub's limits (`headers` keeps the
    headers that fit, as valid JSON); the sink then also writes the full record to the log.
    """

    attributes: dict[str, str]
    truncated: tuple[str, ...]
    whole: dict[str, object]
    """Every value uncut (headers as an object), for the envelope."""

    @property
    def needs_envelope(self) -> bool:
        """Something a replay sends was cut: the data must carry the whole request."""
        return any(name in self.truncated for name in (*REPLAYED, *TRACE_NAMES))

    def data(self, body: bytes) -> bytes:
        """The message data: the body itself, or the envelope when attributes were cut."""
        if not self.needs_envelope:
            return body
        fields = {**self.whole, "bodyBase64": base64.b64encode(body).decode("ascii")}
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def of(cls, task: TaskRequest, reason: str) -> "DeadLetter":
        values = {
            "taskName": task.name,
            "queue": task.queue,
            # queue/name of the task this one is (or, for a replay, replays): what its replay
            # keys its idempotency on. An attribute of its own, not cut with the headers.
            "originalTask": task.key,
            "retryCount": str(task.retry_count),
            "reason": reason,
            # The request target as it arrived (raw path and ?query): a replay's relative URI.
            "path": task.target,
            "contentType": task.content_type,
        }
        attributes = {name: _cut(value) for name, value in values.items()}
        truncated = [name for name, value in values.items() if attributes[name] != value]
        whole: dict[str, object] = {**values, "headers": replay_headers(task)}
        headers: dict[str, str] = {}
        for name, value in replay_headers(task).items():
            if len(json.dumps({**headers, name: value}).encode()) > ATTRIBUTE_VALUE_MAX_BYTES:
                truncated.append("headers")
                break
            headers[name] = value
        attributes["headers"] = json.dumps(headers)
        # The task's trace context, validated (handler/tracing.py), as attributes of their own
        # so that the header cut never drops it: its replay keeps the trace id. traceparent
        # is 55 characters; a tracestate that doesn't fit whole is left out (half of one is
        # not valid).
        for name, value in trace_headers(task.headers).items():
            whole[name] = value
            if len(value.encode()) > ATTRIBUTE_VALUE_MAX_BYTES:
                truncated.append(name)
            else:
                attributes[name] = value
        if truncated:
            attributes["truncated"] = ",".join(truncated)
        letter = cls(attributes, tuple(truncated), whole)
        if letter.needs_envelope:
            attributes[ENVELOPE_ATTRIBUTE] = ENVELOPE_VERSION
        return letter


class DeadLetterSink(Protocol):
    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        """Returns once the dead letter is kept; raises if it may not be, or if that takes
        longer than `timeout` seconds (None: the sink's own bound)."""
        ...


class LogDeadLetterSink:
    """Structured ERROR lines with everything needed to replay the task by hand (a
    log-based metric or sink on `deadLetter=true` can route them onwards): one line per
    BODY_PART_BYTES of body, each with the task's fields, `part` (from 1) and `parts`."""

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        body = task.body
        parts = max(1, -(-len(body) // BODY_PART_BYTES))
        for part in range(parts):
            chunk = body[part * BODY_PART_BYTES : (part + 1) * BODY_PART_BYTES]
            logger.error(
                {
                    "message": f"task dead-lettered: {reason}",
                    "deadLetter": True,
                    "taskName": task.name,
                    "queue": task.queue,
                    "originalTask": task.key,
                    "retryCount": task.retry_count,
                    "path": task.target,
                    "contentType": task.content_type,
                    "headers": replay_headers(task),
                    "traceContext": trace_headers(task.headers),
                    "reason": reason,
                    "bodyBytes": len(body),
                    "part": part + 1,
                    "parts": parts,
                    "bodyBase64": base64.b64encode(chunk).decode("ascii"),
                }
            )
