"""Dead letters as Pub/Sub messages on the pipeline's dead-letter topic (TASK_DEAD_LETTER_TOPIC),
kept by its subscription for replay.

Message data: the request body, exactly and whole. Attributes (handler/dead_letter.py,
DeadLetter): taskName, queue, retryCount, reason, path (the request target as it arrived:
raw path and ?query), contentType, headers (the request's
non-credential headers as a JSON object), and `truncated` naming any attribute cut to
Pub/Sub's 1024-byte value limit, in which case the full record also goes to the log. When
what was cut is something a replay sends (path, headers, names, trace context), the data
is instead the whole request as a JSON envelope, and the attribute `envelope` says so.
`write` returns only once Pub/Sub has confirmed the publish (it returned a message id).
"""

import threading

from google.api_core.retry import Retry
from google.cloud import pubsub_v1

from handler.dead_letter import DeadLetter, LogDeadLetterSink
from handler.task import TaskRequest


class PubSubDeadLetterSink:
    """`timeout_s` bounds one publish, retries included: an unreachable Pub/Sub must answer
    the delivery (5xx, retried) well within its dispatch deadline."""

    def __init__(self, topic: str, *, timeout_s: float) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._lock = threading.Lock()
        self._log = LogDeadLetterSink()

    def _client(self) -> pubsub_v1.PublisherClient:
        with self._lock:
            # Created on first use, in the gunicorn worker: gRPC channels don't survive fork.
            if self._publisher is None:
                self._publisher = pubsub_v1.PublisherClient()
            return self._publisher

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        """`timeout`: what is left of the delivery's answer budget, if less than the sink's."""
        timeout_s = self._timeout_s if timeout is None else min(timeout, self._timeout_s)
        letter = DeadLetter.of(task, reason)
        future = self._client().publish(
            self._topic,
            letter.data(task.body),
            retry=Retry(timeout=timeout_s),
            timeout=timeout_s,
            **letter.attributes,
        )
        future.result(timeout=timeout_s)  # raises unless Pub/Sub kept the message
        if letter.truncated:
            self._log.write(task, reason)
