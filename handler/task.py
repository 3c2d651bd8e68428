"""One delivery from Cloud Tasks, as the processing function sees it, and how it may fail."""

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

REPLAY_OF_HEADER = "x-replay-of"
"""Set by `taskclient replay` (taskclient/task_builder.py; the image has no taskclient): the
task a replay replays. Lower-case, as TaskRequest.headers are."""


class PermanentTaskError(Exception):
    """Raise from a processor when retrying cannot help (e.g. the payload fails validation):
    the task is dead-lettered and acknowledged instead of being retried until it expires."""


class MalformedTask(Exception):
    """The request cannot be a task: retrying it would fail the same way every time."""


@dataclass(frozen=True)
class TaskRequest:
    """The X-CloudTasks-* headers, decoded, plus the request itself.

    `queue` is the short queue id (the emulator sends the full path; it is cut to the id).
    `path` is the decoded path (Flask's); `target` the request target exactly as it arrived,
    raw path and `?query`, percent-encoding untouched: what a replay must send again.
    `headers` has lower-case names. `retry_count` and `execution_count` are 0 when the
    header is missing or not a count. `payload` is the decoded JSON body when the request says
    application/json, else None (the raw bytes are always in `body`). `answer_by` is the
    `time.monotonic()` after which Cloud Tasks no longer hears this attempt's answer (None if
    the dispatch deadline is unknown): see `time_left()`.
    """

    name: str
    queue: str
    retry_count: int
    execution_count: int
    eta: float | None
    path: str
    headers: Mapping[str, str]
    body: bytes
    target: str = ""
    payload: object = None
    answer_by: float | None = None
    replay_unmatched: bool = False
    """X-Replay-Of named a task of this queue whose record says nothing was dead-lettered
    (never dead-lettered, still being retried, or its record expired): the replay may not
    stand for it, and is a task of its own (its own key)."""
    method: str = "POST"
    """The request's method as received (Cloud Tasks sends the task's http_method)."""

    def __post_init__(self) -> None:
        if not self.target:  # built without one (tests, older callers): the path is the target
            object.__setattr__(self, "target", self.path)

    def time_left(self) -> float | None:
        """Seconds until Cloud Tasks stops listening for this attempt (negative once past).
        Work that can't finish in time should raise (to be retried) while this is positive,
        as Cloud Run advises: past it, a failure is dead-lettered instead of retried."""
        return None if self.answer_by is None else self.answer_by - time.monotonic()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def replay_of(self) -> str | None:
        """For a replayed dead letter (only taskclient replay sets X-Replay-Of), the task it
        replays, `queue/name` (a bare name, from an older replay, is on this queue); None
        for any other task."""
        return self.headers.get(REPLAY_OF_HEADER, "").strip() or None

    @property
    def replayed_queue(self) -> str | None:
        """The queue X-Replay-Of names (a bare name is on this queue); None if none."""
        original = self.replay_of
        if original is None:
            return None
        return original.partition("/")[0] if "/" in original else self.queue

    @property
    def forged_replay(self) -> bool:
        """X-Replay-Of names another queue's task. Every pipeline of a stack shares one
        database and task names are predictable, so honouring it would let any queue's task
        take (and so cancel) another queue's: it is refused (app.py dead-letters it)."""
        queue = self.replayed_queue
        return queue is not None and queue != self.queue

    @property
    def stands_for(self) -> bool:
        """A replay that may stand for the task it names (same queue, and not found to name
        a task with no dead letter on record): the store still checks the record."""
        return self.replay_of is not None and not self.forged_replay and not self.replay_unmatched

    @cached_property
    def letter(self) -> str:
        """The digest of what a replay must send again, its raw target and body (the idempotency
        store keeps it with the task: handler/store.py)."""
        digest = hashlib.sha256(self.target.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(self.body)
        return digest.hexdigest()

    @property
    def key(self) -> str:
        """Its idempotency key: unique per task, since task names are unique within a queue.
        A replay on the same queue shares its original task's key, so that however many
        dead letters and replays one task has, it is processed once, and not at all if it
        finished after all. A replay naming another queue, or a task with no dead letter on
        record, keeps its own key. Neither queue ids nor task names hold a "/"."""
        original = self.replay_of
        if original is None or not self.stands_for:
            return f"{self.queue}/{self.name}"
        return original if "/" in original else f"{self.queue}/{original}"


# Cloud Tasks always sends counts and a time here; anything else (nan, inf, 1e400, -1, 1.5)
# is taken as unknown rather than failing a delivery over its metadata. Parsed strictly:
# float("nan") and float("1e400") parse, and int() of them raises.
_COUNT = re.compile(r"[0-9]{1,9}")
# ASCII only: float() also takes other scripts' digits ("٣" is 3.0).
_TIME = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


def _count(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name, "").strip()
    return int(raw) if _COUNT.fullmatch(raw) else None


def _time(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name, "").strip()
    return float(raw) if _TIME.fullmatch(raw) else None


def parse_task(
    headers: Mapping[str, str],
    path: str,
    body: bytes,
    target: str = "",
    method: str = "POST",
) -> TaskRequest:
    """`headers` with lower-case names; `target` the raw request target (empty: `path`).
    Raises MalformedTask if this is not from Cloud Tasks."""
    name = headers.get("x-cloudtasks-taskname")
    queue = headers.get("x-cloudtasks-queuename")
    if not name or not queue:
        raise MalformedTask("missing X-CloudTasks-TaskName/QueueName: not a Cloud Tasks delivery")
    return TaskRequest(
        name=name,
        queue=queue.rpartition("/")[2],
        retry_count=_count(headers, "x-cloudtasks-taskretrycount") or 0,
        execution_count=_count(headers, "x-cloudtasks-taskexecutioncount") or 0,
        eta=_time(headers, "x-cloudtasks-tasketa"),
        path=path,
        headers=headers,
        body=body,
        target=target,
        method=method,
    )


def decode_payload(task: TaskRequest) -> object:
    """The JSON body if the request declares one; raises MalformedTask if it isn't JSON."""
    content_type = task.content_type.split(";")[0].strip().lower()
    if content_type != "application/json":
        return None
    try:
        return json.loads(task.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedTask(f"body is not valid JSON: {exc}") from None
    except ValueError as exc:
        # Valid JSON Python won't read, e.g. an integer of more than 4300 digits (the int()
        # limit, sys.get_int_max_str_digits): the same body fails the same way every attempt.
        raise MalformedTask(f"body is JSON this handler cannot read: {exc}") from None
    except RecursionError:
        # The same body fails the same way on every attempt: permanent, not retryable.
        raise MalformedTask("body is JSON nested too deeply to decode") from None
