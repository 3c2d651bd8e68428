"""The Flask app: turns one Cloud Tasks delivery into one call of the processing function.

Answers (Cloud Tasks retries anything that isn't 2xx, 4xx included):
  200 done          processed now
  200 duplicate     processed before (at-least-once delivery): not processed again
  200 rejected      malformed payload or PermanentTaskError: dead-lettered, never retried
  409 in_progress   the same task is being processed by another delivery: retry later
  500 failed        the processor raised: Cloud Tasks retries with backoff
  500 dead_lettered failed on the last allowed attempt: recorded, then left to Cloud Tasks
  400 not_a_task    no X-CloudTasks headers (not sent by Cloud Tasks)
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from flask import Flask, Response, jsonify, request

from handler.dead_letter import DeadLetterSink, LogDeadLetterSink
from handler.store import Claim, IdempotencyStore, InMemoryStore
from handler.task import MalformedTask, PermanentTaskError, TaskRequest, decode_payload, parse_task

Processor = Callable[[TaskRequest], Mapping[str, object] | None]
"""The user's work: return normally once done (optionally a result to log), raise
PermanentTaskError if retrying can't help, raise anything else to be retried."""

logger = logging.getLogger("handler.tasks")

_SEVERITY = {
    "done": logging.INFO,
    "duplicate": logging.INFO,
    "in_progress": logging.WARNING,
    "failed": logging.WARNING,
    "rejected": logging.ERROR,
    "dead_lettered": logging.ERROR,
}


def _log(task: TaskRequest, status: str, started: float, **extra: object) -> None:
    logger.log(
        _SEVERITY[status],
        {
            "message": f"task {status}",
            "taskName": task.name,
            "queue": task.queue,
            "retryCount": task.retry_count,
            "executionCount": task.execution_count,
            "eta": task.eta,
            "path": task.path,
            "status": status,
            "durationMs": round((time.monotonic() - started) * 1000, 1),
            **extra,
        },
    )


def _answer(status: str, code: int) -> tuple[Response, int]:
    return jsonify(status=status), code


def create_app(
    processor: Processor,
    *,
    store: IdempotencyStore | None = None,
    dead_letter: DeadLetterSink | None = None,
    max_attempts: int | None = None,
) -> Flask:
    """`max_attempts`: the queue's retry_config.max_attempts; None (unknown or unlimited)
    means a retryable failure is never treated as the last attempt."""
    tasks = store or InMemoryStore()
    sink = dead_letter or LogDeadLetterSink()
    app = Flask("handler")

    def last_attempt(task: TaskRequest) -> bool:
        return max_attempts is not None and task.retry_count + 1 >= max_attempts

    @app.get("/health")
    def health() -> tuple[Response, int]:
        # Not /healthz: Cloud Run reserves paths ending in "z".
        return _answer("ok", 200)

    @app.route("/", defaults={"path": ""}, methods=["POST", "PUT"])
    @app.route("/<path:path>", methods=["POST", "PUT"])
    def handle(path: str) -> tuple[Response, int]:
        started = time.monotonic()
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            task = parse_task(headers, "/" + path, request.get_data())
        except MalformedTask as exc:
            logger.warning({"message": str(exc), "status": "not_a_task", "path": "/" + path})
            return _answer("not_a_task", 400)

        claim = tasks.claim(task.key)
        if claim is Claim.DONE:
            _log(task, "duplicate", started)
            return _answer("duplicate", 200)
        if claim is Claim.IN_PROGRESS:
            _log(task, "in_progress", started)
            return _answer("in_progress", 409)

        try:
            task = replace(task, payload=decode_payload(task))
            result = processor(task)
        except (MalformedTask, PermanentTaskError) as exc:
            # Policy: what can never succeed is recorded and acknowledged, not retried.
            sink.write(task, str(exc))
            tasks.complete(task.key)
            _log(task, "rejected", started, error=str(exc))
            return _answer("rejected", 200)
        except Exception as exc:
            tasks.release(task.key)
            status = "failed"
            if last_attempt(task):
                sink.write(task, f"failed on the last allowed attempt: {exc!r}")
                status = "dead_lettered"
            _log(task, status, started, error=repr(exc))
            return _answer(status, 500)
        tasks.complete(task.key)
        _log(task, "done", started, result=dict(result) if result else None)
        return _answer("done", 200)

    return app
