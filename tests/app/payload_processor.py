"""TASK_PROCESSOR for the claim-check tests: logs the length and digest of what arrived (not
5 MB of body), and rejects a task sent with X-Reject-First until it comes back as a replay."""

import hashlib

from handler.task import PermanentTaskError, TaskRequest


def process(task: TaskRequest) -> dict[str, object]:
    if task.headers.get("x-reject-first") and not task.headers.get("x-replay-of"):
        raise PermanentTaskError("asked to be rejected until it is replayed")
    return {
        "bytes": len(task.body),
        "sha256": hashlib.sha256(task.body).hexdigest(),
        "contentType": task.headers.get("content-type"),
        "replayOf": task.headers.get("x-replay-of"),
    }
