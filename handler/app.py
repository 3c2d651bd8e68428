"""The Flask app: turns one Cloud Tasks delivery into one call of the processing function.

Answers (Cloud Tasks retries anything that isn't 2xx, 4xx included):
  200 done               processed now
  200 duplicate          processed before (at-least-once delivery): not processed again
  200 rejected           malformed payload or PermanentTaskError: dead-lettered, never retried
  200 dead_lettered      failed on the last allowed attempt, or after the dispatch deadline
                         (Cloud Tasks no longer hears the answer), or the last attempt found
                         the task still held (or the store down) all its budget: dead-lettered
  409 in_progress        another delivery of the same task holds its claim: retry later (the
                         last attempt first waits, while it is heard, for the holder to settle)
  500 failed             the processor raised: Cloud Tasks retries with backoff
  500 dead_letter_failed a dead letter could not be recorded: retried, and on the last
                         attempt the full record goes to the log
  500 store_unavailable  the idempotency store could not be asked: retried
  400 not_a_task         no X-CloudTasks headers (not sent by Cloud Tasks)

Nothing is lost: every answer either finishes the task (2xx: processed, or its dead letter
confirmed kept), or hands it back to Cloud Tasks with its claim released (5xx, 409) while
Cloud Tasks still listens and will deliver it again. Every claim this handler acquires is
settled before it answers, whatever the processor or a sink raises, so no claim outlives its
request.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta

from flask import Flask, Response, jsonify, request

from handler.dead_letter import DeadLetterSink, LogDeadLetterSink
from handler.deadlines import answer_budget
from handler.logs import request_secrets
from handler.payloads import PayloadReader
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
    "dead_letter_failed": logging.ERROR,
    "store_unavailable": logging.ERROR,
}

Outcome = tuple[str, int, dict[str, object]]
"""status, HTTP code, extra fields for the task's log line."""

DEAD_LETTERED = frozenset({"rejected", "dead_lettered"})
"""Answers after which the task's dead letter is kept: a replay of it may run it once."""

HOLDER_POLL_S = 2.0
"""How often the last attempt asks again whether the delivery holding its task has settled."""


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


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


def create_app(
    processor: Processor,
    *,
    store: IdempotencyStore | None = None,
    dead_letter: DeadLetterSink | None = None,
    max_attempts: int | None = None,
    dispatch_deadline: timedelta | None = None,
    payloads: PayloadReader | None = None,
) -> Flask:
    """`max_attempts`: the queue's retry_config.max_attempts; None (unknown or unlimited)
    means a retryable failure is never treated as the last attempt. `dispatch_deadline`: the
    queue's; None (unknown) means every answer is taken as heard. `payloads`: where claim
    checks are read from (handler/payloads.py); None rejects them."""
    tasks = store or InMemoryStore()
    sink = dead_letter or LogDeadLetterSink()
    last_resort = LogDeadLetterSink()
    claim_checks = payloads or PayloadReader(None)
    budget = None if dispatch_deadline is None else answer_budget(dispatch_deadline)
    app = Flask("handler")

    def last_attempt(task: TaskRequest) -> bool:
        return max_attempts is not None and task.retry_count + 1 >= max_attempts

    def unheard(task: TaskRequest) -> bool:
        """Past the deadline Cloud Tasks has counted this attempt failed: whether another
        comes depends on attempts this delivery can't see, so a 5xx could drop the task."""
        left = task.time_left()
        return left is not None and left <= 0

    def record(task: TaskRequest, reason: str, status: str, **extra: object) -> Outcome:
        """Dead-letters the task: `status` with 200 once the sink confirms, else 500."""
        try:
            sink.write(task, reason)
        except Exception as exc:
            if last_attempt(task) or unheard(task):
                # Cloud Tasks may not deliver it again: the log keeps it, whole.
                last_resort.write(task, reason)
            return "dead_letter_failed", 500, {**extra, "reason": reason, "error": repr(exc)}
        return status, 200, {**extra, "reason": reason}

    def attempt(task: TaskRequest) -> Outcome:
        try:
            # A claim check's original body for the processor; `task`, which any dead letter
            # keeps, stays the reference.
            delivered = claim_checks.resolve(task)
            result = processor(replace(delivered, payload=decode_payload(delivered)))
        except (MalformedTask, PermanentTaskError) as exc:
            # Policy: what can never succeed is recorded and acknowledged, not retried.
            return record(task, str(exc), "rejected")
        except BaseException as exc:
            # BaseException too: in a request thread nothing stops the process (signals go
            # to the main thread), so whatever the processor raised fails this attempt only.
            if last_attempt(task):
                reason = f"failed on the last allowed attempt: {exc!r}"
                return record(task, reason, "dead_lettered", error=repr(exc))
            if unheard(task):
                reason = (
                    f"failed after the dispatch deadline ({dispatch_deadline}), when Cloud"
                    f" Tasks no longer hears the answer: {exc!r}"
                )
                return record(task, reason, "dead_lettered", error=repr(exc))
            return "failed", 500, {"error": repr(exc)}
        return "done", 200, {"result": dict(result) if result else None}

    def ask(task: TaskRequest) -> tuple[Claim | None, str]:
        """The store's answer, or None and the error."""
        try:
            return tasks.claim(task.key, replay=task.replay_of is not None), ""
        except Exception as exc:
            return None, repr(exc)

    def last_chance(task: TaskRequest, claim: Claim | None, error: str) -> tuple[Claim | None, str]:
        """On the last attempt, a 409 or 500 ends the task with Cloud Tasks: if its holder
        then crashed, nobody would finish it. So ask again every HOLDER_POLL_S while the
        answer is heard: the holder finishes (DONE), or its lease lapses and this attempt
        takes the task over (ACQUIRED); a store error is asked again too."""
        while claim in (Claim.IN_PROGRESS, None) and (left := task.time_left() or 0) > 0:
            time.sleep(min(HOLDER_POLL_S, left))
            claim, error = ask(task)
        return claim, error

    def settle(task: TaskRequest, status: str, code: int) -> dict[str, object]:
        """complete() a finished task (dead-lettered or not), release() one handed back for
        retry. A store error doesn't change the answer: the work is done (or handed back)
        either way, and an unreleased claim lapses with its lease."""
        try:
            if code == 200:
                tasks.complete(task.key, dead_lettered=status in DEAD_LETTERED)
            else:
                tasks.release(task.key)
        except Exception as exc:
            return {"storeError": repr(exc)}
        return {}

    @app.get("/health")
    def health() -> tuple[Response, int]:
        # Not /healthz: Cloud Run reserves paths ending in "z".
        return _answer("ok", 200)

    @app.route("/", defaults={"path": ""}, methods=["POST", "PUT"])
    @app.route("/<path:path>", methods=["POST", "PUT"])
    def handle(path: str) -> tuple[Response, int]:
        started = time.monotonic()
        headers = {name.lower(): value for name, value in request.headers.items()}
        with request_secrets(headers):
            try:
                task = parse_task(headers, "/" + path, request.get_data())
            except MalformedTask as exc:
                logger.warning({"message": str(exc), "status": "not_a_task", "path": "/" + path})
                return _answer("not_a_task", 400)
            if budget is not None:
                task = replace(task, answer_by=started + budget.total_seconds())

            claim, error = ask(task)
            if last_attempt(task):
                claim, error = last_chance(task, claim, error)
                if claim in (Claim.IN_PROGRESS, None):
                    # Still unsettled: the dead letter keeps the task. A replay shares its
                    # key, so it is a duplicate if the holder does finish it after all.
                    reason = (
                        "last attempt: another delivery still held the task when this"
                        " attempt's answer budget ran out"
                        if claim is Claim.IN_PROGRESS
                        else f"last attempt: the idempotency store failed ({error})"
                    )
                    status, code, extra = record(task, reason, "dead_lettered")
                    _log(task, status, started, claimMs=_ms(started), **extra)
                    return _answer(status, code)
            if claim is None:
                _log(task, "store_unavailable", started, error=error)
                return _answer("store_unavailable", 500)
            claimed = {"claimMs": _ms(started)}
            if claim is Claim.DONE:
                _log(task, "duplicate", started, **claimed)
                return _answer("duplicate", 200)
            if claim is Claim.IN_PROGRESS:
                _log(task, "in_progress", started, **claimed)
                return _answer("in_progress", 409)

            status, code, extra = "failed", 500, {}
            try:
                status, code, extra = attempt(task)
            finally:
                extra.update(settle(task, status, code))
            _log(task, status, started, **claimed, **extra)
            return _answer(status, code)

    return app
