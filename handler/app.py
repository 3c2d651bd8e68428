"""The Flask app: turns one Cloud Tasks delivery into one call of the processing function.

Answers (Cloud Tasks retries anything that isn't 2xx, 4xx included):
  200 done               processed now
  200 duplicate          processed before (at-least-once delivery): not processed again
  200 rejected           malformed payload (a body decode_payload can't read), PermanentTaskError,
                         or an X-Replay-Of naming another queue's task: dead-lettered, never
                         retried
  200 dead_lettered      failed on the last allowed attempt, or after the dispatch deadline
                         (Cloud Tasks no longer hears the answer), or the last attempt found
                         the task still held (or the store down) all its budget, or it was
                         processed but its record could not be written in time (the claim is
                         kept and the write retried meanwhile): dead-lettered
  409 in_progress        another delivery of the same task holds its claim: retry later (the
                         last attempt first waits, while it is heard, for the holder to settle);
                         or, in proxy mode, the app is still working on the task when the
                         answer budget runs out: its claim stays held until the app answers
  500 failed             the processor raised: Cloud Tasks retries with backoff
  500 dead_letter_failed a dead letter could not be recorded: retried, and on the last
                         attempt the full record goes to the log
  500 store_unavailable  the idempotency store could not be asked: retried
  400 not_a_task         no X-CloudTasks headers (not sent by Cloud Tasks)

An X-Replay-Of naming a task of this queue whose record does not say dead-lettered is a
task of its own (its own key, a WARNING line): naming a task never cancels it.

Nothing is lost: every answer either finishes the task (2xx: processed, or its dead letter
confirmed kept), or hands it back to Cloud Tasks with its claim released (5xx, 409) while
Cloud Tasks still listens and will deliver it again. Every claim this handler acquires is
settled before it answers, whatever the processor or a sink raises, so no claim outlives its
request, except one whose outcome could not be written in time (the store keeps it, renewed,
until the outcome lands), and, in proxy mode, one whose app is still working when the request
answers (the forward's worker keeps it, renewed, and settles it once the app answers). Every
store and sink call is bounded by what is left of the answer budget.
"""

import contextvars
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from flask import Flask, Response, jsonify, request

from handler.context import TaskContext, serving
from handler.dead_letter import DeadLetterSink, LogDeadLetterSink
from handler.deadlines import answer_budget, margin
from handler.logs import request_secrets
from handler.payloads import PayloadReader
from handler.proxy import AppStillRunning, Forward
from handler.store import Claim, IdempotencyStore, InMemoryStore
from handler.task import MalformedTask, PermanentTaskError, TaskRequest, decode_payload, parse_task
from handler.ticks import register_ticks
from handler.tracing import Tracing, annotate

Processor = Callable[[TaskRequest], Mapping[str, object] | None]
"""The user's work: return normally once done (optionally a result to log), raise
PermanentTaskError if retrying can't help, raise anything else to be retried. During the
call, handler.context.current() gives the task's idempotency key and the claim's fencing
token, for the processor's own stores (docs/guarantees.md)."""

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

STORE_FLOOR_S = 0.5
"""What a store or sink call still gets once the answer budget is spent (work that ran past
it): nobody hears that answer, and the record matters more than its timing."""

COMPLETE_SHARE = 0.5
"""The share of the time left that writing a task's outcome may take: the rest is for
dead-lettering it if the write doesn't land."""

UNKNOWN_SKEW = timedelta(seconds=1)
"""With no dispatch deadline known, the allowance for Cloud Tasks having started counting a
task's retry duration before its first attempt reached the handler."""


def request_target(environ: Mapping[str, object]) -> str:
    """The request target as it arrived: raw path and `?query`, percent-encoding untouched
    (gunicorn's RAW_URI, Werkzeug's REQUEST_URI), not Flask's decoded path: a replay sends
    it again as the task's relative URI (taskclient/replay.py)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if raw.startswith("/"):
            return raw
        parts = urlsplit(raw)  # absolute form, http://host/path?query (RFC 9112 3.2.2)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # A server that keeps no raw target: rebuilt, as close as the decoded path allows.
    path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode(errors="replace")
    query = str(environ.get("QUERY_STRING", ""))
    return quote(path or "/", safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")


def result_fields(result: object) -> dict[str, object]:
    """The processor's result for its log line: a mapping, or nothing; anything else (a
    processor returning True, say) is named rather than failing work that was done."""
    if result is None:
        return {"result": None}
    if isinstance(result, Mapping):
        return {"result": dict(result)}  # pyright: ignore[reportUnknownArgumentType]
    return {
        "result": None,
        "resultIgnored": f"the processor returned {type(result).__name__}, not a mapping",
    }


def _log(task: TaskRequest, status: str, started: float, **extra: object) -> None:
    annotate({"cloudtasks.queue": task.queue, "cloudtasks.task": task.name, "status": status})
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


INSTANCE = f"{socket.gethostname()}/{os.getpid()}"
"""This process, as a lost claim's log line names the deliveries."""


def _delivery(task: TaskRequest) -> str:
    """One delivery, as a claim record names its holder."""
    return f"{task.name} attempt {task.retry_count + 1} on {INSTANCE}"


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
    max_retry_duration: timedelta | None = None,
    dispatch_deadline: timedelta | None = None,
    tracing: Tracing | None = None,
    payloads: PayloadReader | None = None,
    schedules: Mapping[str, str] | None = None,
) -> Flask:
    """`max_attempts`: the queue's retry_config.max_attempts, None for -1 (unlimited).
    `max_retry_duration`: its max_retry_duration, None for 0s (unlimited). With both None a
    retryable failure is never treated as the last attempt. `dispatch_deadline`: the
    queue's; None (unknown) means every answer is taken as heard. `payloads`: where claim
    checks are read from (handler/payloads.py); None rejects them. `schedules`: job id -> task
    path of the schedules whose ticks this service takes (handler/ticks.py); None: none."""
    tasks = store or InMemoryStore()
    sink = dead_letter or LogDeadLetterSink()
    # Spans and the log lines' trace fields (handler/tracing.py); by default spans only: no
    # project to name the trace in log fields, no export.
    traces = tracing or Tracing(project=None)
    last_resort = LogDeadLetterSink()
    claim_checks = payloads or PayloadReader(None)
    budget = None if dispatch_deadline is None else answer_budget(dispatch_deadline)
    skew = UNKNOWN_SKEW if dispatch_deadline is None else margin(dispatch_deadline)
    app = Flask("handler")

    def time_for(task: TaskRequest, share: float = 1.0) -> float | None:
        """What a store or sink call may take: its share of the answer budget left."""
        left = task.time_left()
        return None if left is None else max(left * share, STORE_FLOOR_S)

    # Cloud Tasks' retry rule (google.cloud.tasks.v2 RetryConfig, cloud.google.com/tasks/docs/
    # reference/rest/v2/projects.locations.queues#RetryConfig): "Cloud Tasks stops retrying
    # only when max_attempts and max_retry_duration are both satisfied ... When the task has
    # been attempted max_attempts times and when the max_retry_duration time has passed, no
    # further attempts are made, and the task is deleted"; -1 attempts is unlimited, a 0s
    # duration is unlimited, and the duration is "measured from when the task was first
    # attempted" (v2beta3 text).
    def attempts_reached(task: TaskRequest) -> bool:
        if max_attempts is None:
            # -1 with a retry duration: the reference doesn't say whether unlimited attempts
            # ever count as "satisfied"; taken as satisfied (Cloud Tasks then deletes the task
            # once the duration has passed), which errs toward a dead letter, never a loss.
            return max_retry_duration is not None
        return task.retry_count + 1 >= max_attempts

    def first_attempt(task: TaskRequest, arrived: datetime) -> datetime | None:
        if task.retry_count == 0:
            return arrived
        try:
            return tasks.first_attempt(task.key, timeout=time_for(task))
        except Exception:
            return None

    def last_attempt_of(task: TaskRequest, arrived: datetime) -> Callable[[], bool]:
        """Whether Cloud Tasks ends the task if this attempt fails, asked when it matters
        (the store is read once, and only once the attempts are reached). Where it can't be
        known (the in-memory store, a record lost or unreadable) it errs toward the last
        attempt: a dead letter may be replayed, a task Cloud Tasks deleted is lost."""
        first: list[datetime | None] = []

        def last() -> bool:
            if not attempts_reached(task):
                return False
            if max_retry_duration is None:
                return True
            if not first:
                first.append(first_attempt(task, arrived))
            started = first[0]
            if started is None:
                return True
            return datetime.now(UTC) + skew - started >= max_retry_duration

        return last

    def unheard(task: TaskRequest) -> bool:
        """Past the deadline Cloud Tasks has counted this attempt failed: whether another
        comes depends on attempts this delivery can't see, so a 5xx could drop the task."""
        left = task.time_left()
        return left is not None and left <= 0

    def record(
        task: TaskRequest, reason: str, status: str, last: Callable[[], bool], **extra: object
    ) -> Outcome:
        """Dead-letters the task: `status` with 200 once the sink confirms, else 500."""
        try:
            sink.write(task, reason, timeout=time_for(task))
        except Exception as exc:
            if last() or unheard(task):
                # Cloud Tasks may not deliver it again: the log keeps it, whole.
                last_resort.write(task, reason)
            return "dead_letter_failed", 500, {**extra, "reason": reason, "error": repr(exc)}
        return status, 200, {**extra, "reason": reason}

    def fencing_token(task: TaskRequest) -> int | None:
        # A store written before fencing tokens has no such call: no token, not a failure.
        ask = getattr(tasks, "fencing_token", None)
        token = ask(task.key) if callable(ask) else None
        return token if isinstance(token, int) else None

    def refuse_forged_replay(task: TaskRequest) -> None:
        if task.forged_replay:
            reason = (
                f"X-Replay-Of {task.replay_of!r} names queue {task.replayed_queue!r}, not this"
                f" task's queue {task.queue!r}: a replay is honoured only on its own queue"
            )
            logger.error({"message": "replay refused", "taskName": task.name, "reason": reason})
            raise MalformedTask(reason)

    def attempt(task: TaskRequest, last: Callable[[], bool]) -> Outcome:
        def work() -> Mapping[str, object] | None:
            refuse_forged_replay(task)
            # A claim check's original body for the processor; `task`, which any dead letter
            # keeps, stays the reference.
            delivered = claim_checks.resolve(task)
            delivered = replace(delivered, payload=decode_payload(delivered))
            context = TaskContext(task.key, fencing_token(task))
            with serving(context):
                return processor(delivered)

        return judged(task, last, work)

    def judged(task: TaskRequest, last: Callable[[], bool], work: Callable[[], object]) -> Outcome:
        """What the work's return or exception makes of the task."""
        try:
            return "done", 200, result_fields(work())
        except AppStillRunning:
            raise  # proxy mode: not an outcome yet (hold_over)
        except (MalformedTask, PermanentTaskError) as exc:
            # Policy: what can never succeed is recorded and acknowledged, not retried.
            return record(task, str(exc), "rejected", last)
        except BaseException as exc:
            # BaseException too: in a request thread nothing stops the process (signals go
            # to the main thread), so whatever the processor raised fails this attempt only.
            if last():
                reason = f"failed on the last allowed attempt: {exc!r}"
                return record(task, reason, "dead_lettered", last, error=repr(exc))
            if unheard(task):
                reason = (
                    f"failed after the dispatch deadline ({dispatch_deadline}), when Cloud"
                    f" Tasks no longer hears the answer: {exc!r}"
                )
                return record(task, reason, "dead_lettered", last, error=repr(exc))
            return "failed", 500, {"error": repr(exc)}

    def hold_over(
        task: TaskRequest,
        forward: Forward,
        last: Callable[[], bool],
        started: float,
        claimed: Mapping[str, object],
    ) -> bool:
        """Proxy mode, the app still working when the request must answer: as a Python
        processor's request thread would, the forward's worker keeps the claim (held and
        renewed) until the app answers, then settles the task as this request would have.
        Meanwhile the request answers 409 in_progress, as a duplicate of a held task does:
        Cloud Tasks retries, and its retries find the claim held (the last one waits for it
        while heard, handler/app.py's last_chance). Whether another attempt comes is judged
        now, for the attempt Cloud Tasks hears fail: if none will, a failure of the app is
        dead-lettered (nobody else would finish the task), else released for the retry.
        False: the app answered meanwhile, and the request settles it."""
        final = last()
        # Its answer already given: the rest is settled with no budget to answer within.
        answered = replace(task, answer_by=None)
        context = contextvars.copy_context()  # the request's trace and log redaction

        def settled() -> None:
            outcome = judged(answered, lambda: final, forward.outcome)
            status, _, extra = settle(answered, outcome, lambda: final)
            _log(task, status, started, **claimed, heldOver=True, **extra)

        def finish() -> None:  # on the forward's worker, which holds the claim now
            try:
                context.run(settled)
            except Exception as exc:
                # A release or complete that fails leaves the claim to lapse with its lease.
                logger.error(
                    {"message": "held task not settled", "taskName": task.name, "error": repr(exc)}
                )

        return forward.hold_over(lambda thread: tasks.hand_over(task.key, thread), finish)

    def ask(task: TaskRequest, arrived: datetime) -> tuple[Claim | None, str]:
        """The store's answer, or None and the error. `arrived`: when this attempt reached
        the handler, the first attempt's time if it is the first."""
        try:
            claim = tasks.claim(
                task.key,
                replay=task.stands_for,
                letter=task.letter,
                first_attempt_at=arrived if task.retry_count == 0 else None,
                timeout=time_for(task),
                holder=_delivery(task),
            )
            return claim, ""
        except Exception as exc:
            return None, repr(exc)

    def last_chance(
        task: TaskRequest, arrived: datetime, claim: Claim | None, error: str
    ) -> tuple[Claim | None, str]:
        """On the last attempt, a 409 or 500 ends the task with Cloud Tasks: if its holder
        then crashed, nobody would finish it. So ask again every HOLDER_POLL_S while the
        answer is heard: the holder finishes (DONE), or its lease lapses and this attempt
        takes the task over (ACQUIRED); a store error is asked again too."""
        while claim in (Claim.IN_PROGRESS, None) and (left := task.time_left() or 0) > 0:
            time.sleep(min(HOLDER_POLL_S, left))
            claim, error = ask(task, arrived)
        return claim, error

    def unmatched(task: TaskRequest) -> TaskRequest:
        """A replay whose original has no dead letter on record, or one with another target
        or body: a task of its own."""
        logger.warning(
            {
                "message": (
                    "replay of a task with no such dead letter on record (none, or another"
                    " target or body): run as its own task"
                ),
                "taskName": task.name,
                "queue": task.queue,
                "replayOf": task.replay_of,
            }
        )
        return replace(task, replay_unmatched=True)

    def settle(task: TaskRequest, outcome: Outcome, last: Callable[[], bool]) -> Outcome:
        """complete() a finished task (dead-lettered or not), release() one handed back for
        retry. A release that fails changes nothing: the task may run again, and the claim
        lapses with its lease. An outcome that can't be written in time stays with the store,
        which keeps the claim and the write going; a dead-lettered task is kept already, but
        a processed one must not run again, which a redelivery would once the claim lapsed
        (the instance stopped before the write landed): it is dead-lettered, to be replayed
        only if its record never says processed (the replay is a duplicate if it does)."""
        status, code, extra = outcome
        try:
            if code == 200:
                dead_lettered = status in DEAD_LETTERED
                share = COMPLETE_SHARE if status == "done" else 1.0
                tasks.complete(task.key, dead_lettered=dead_lettered, timeout=time_for(task, share))
            else:
                tasks.release(task.key, timeout=time_for(task))
        except Exception as exc:
            extra = {**extra, "storeError": repr(exc)}
            if status != "done":
                return status, code, extra
            reason = (
                f"processed, but its record could not be written in time ({exc!r}): the"
                " handler keeps the claim and the write going; replay it only if the task"
                " never ran (a replay is a duplicate once the record says processed)"
            )
            return record(task, reason, "dead_lettered", last, **extra)
        return outcome

    @app.get("/health")
    def health() -> tuple[Response, int]:
        # Not /healthz: Cloud Run reserves paths ending in "z".
        return _answer("ok", 200)

    @app.route("/", defaults={"path": ""}, methods=["POST", "PUT"])
    @app.route("/<path:path>", methods=["POST", "PUT"])
    def handle(path: str) -> tuple[Response, int]:
        started = time.monotonic()
        # Before any store call: what Cloud Tasks counts a first attempt from, give or take
        # its way in (which `skew` allows for), never a slow store's write time.
        arrived = datetime.now(UTC)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with request_secrets(headers), traces.task_span(headers):
            try:
                target = request_target(request.environ)
                task = parse_task(headers, "/" + path, request.get_data(), target, request.method)
            except MalformedTask as exc:
                logger.warning({"message": str(exc), "status": "not_a_task", "path": "/" + path})
                return _answer("not_a_task", 400)
            if budget is not None:
                task = replace(task, answer_by=started + budget.total_seconds())

            last = last_attempt_of(task, arrived)
            claim, error = ask(task, arrived)
            if claim is Claim.NOT_DEAD_LETTERED:
                task = unmatched(task)
                last = last_attempt_of(task, arrived)
                claim, error = ask(task, arrived)
            if claim in (Claim.IN_PROGRESS, None) and last():
                claim, error = last_chance(task, arrived, claim, error)
                if claim in (Claim.IN_PROGRESS, None):
                    # Still unsettled: the dead letter keeps the task. A replay shares its
                    # key, so it is a duplicate if the holder does finish it after all.
                    reason = (
                        "last attempt: another delivery still held the task when this"
                        " attempt's answer budget ran out"
                        if claim is Claim.IN_PROGRESS
                        else f"last attempt: the idempotency store failed ({error})"
                    )
                    status, code, extra = record(task, reason, "dead_lettered", last)
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

            outcome: Outcome = ("failed", 500, {})
            held = False
            try:
                try:
                    outcome = attempt(task, last)
                except AppStillRunning as running:
                    held = hold_over(task, running.forward, last, started, claimed)
                    if held:
                        outcome = ("in_progress", 409, {"appStillRunning": True})
                    else:
                        outcome = judged(task, last, running.forward.outcome)
            finally:
                if not held:
                    outcome = settle(task, outcome, last)
            status, code, extra = outcome
            _log(task, status, started, **claimed, **extra)
            return _answer(status, code)

    # Schedules' ticks become tasks of this queue (handler/ticks.py).
    register_ticks(app, handle, dispatch_deadline=dispatch_deadline, schedules=schedules)
    return app
