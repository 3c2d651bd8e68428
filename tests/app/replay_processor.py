"""TASK_PROCESSOR for the replay integration test: logs what arrived, not the body itself
(several hundred KB), so the test can compare it byte for byte through the digest."""

import hashlib

from handler.task import TaskRequest


def process(task: TaskRequest) -> dict[str, object]:
    return {
        "bytes": len(task.body),
        "sha256": hashlib.sha256(task.body).hexdigest(),
        "contentType": task.headers.get("content-type"),
        "replayOf": task.headers.get("x-replay-of"),
        "tenant": task.headers.get("x-tenant"),
    }
