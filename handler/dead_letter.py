"""Where a task goes when it will never succeed: Cloud Tasks has no dead-letter queue and
drops a task after its last attempt, so the handler records it before answering."""

import base64
import logging
from typing import Protocol

from handler.task import TaskRequest

# Cloud Logging rejects entries over 256 KB; keep the body well under that.
MAX_BODY_BYTES = 64 * 1024

logger = logging.getLogger("handler.dead_letter")


class DeadLetterSink(Protocol):
    def write(self, task: TaskRequest, reason: str) -> None: ...


class LogDeadLetterSink:
    """A structured ERROR line with everything needed to replay the task by hand
    (a log-based metric or sink on `deadLetter=true` can route it onwards)."""

    def write(self, task: TaskRequest, reason: str) -> None:
        body = task.body[:MAX_BODY_BYTES]
        logger.error(
            {
                "message": f"task dead-lettered: {reason}",
                "deadLetter": True,
                "taskName": task.name,
                "queue": task.queue,
                "retryCount": task.retry_count,
                "path": task.path,
                "reason": reason,
                "bodyBase64": base64.b64encode(body).decode("ascii"),
                "bodyTruncated": len(task.body) > MAX_BODY_BYTES,
            }
        )
