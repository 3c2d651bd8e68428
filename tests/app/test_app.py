"""handler/app.py through Flask's test client (no server): what each answer writes to its log
line, what the store and the dead-letter sink are asked and with what time allowed, and the
request target a replay sends again."""

import logging
import re
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient

import handler.app
from handler.app import Processor, create_app, request_target
from handler.context import TaskContext, current
from handler.store import Claim, InMemoryStore
from handler.task import PermanentTaskError, TaskRequest

Call = tuple[str, dict[str, object]]


class RecordingStore(InMemoryStore):
    """In memory, recording every call with its arguments; `first` (if given) is what it
    says of every task's first attempt, as a Firestore record would."""

    def __init__(self, first: datetime | None = None) -> None:
        super().__init__()
        self.first = first
        self.calls: list[Call] = []

    def claim(
        self,
        key: str,
        *,
        replay: bool = False,
        letter: str = "",
        first_attempt_at: datetime | None = None,
        timeout: float | None = None,
        holder: str = "",
    ) -> Claim:
        asked = {"key": key, "replay": replay, "first_attempt_at": first_attempt_at}
        self.calls.append(("claim", {**asked, "timeout": timeout, "holder": holder}))
        return super().claim(
            key, replay=replay, letter=letter, first_attempt_at=first_attempt_at, holder=holder
        )

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        self.calls.append(("first_attempt", {"key": key, "timeout": timeout}))
        return self.first

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        self.calls.append(
            ("complete", {"key": key, "dead_lettered": dead_lettered, "timeout": timeout})
        )
        super().complete(key, dead_lettered=dead_lettered)

    def release(self, key: str, *, timeout: float | None = None) -> None:
        self.calls.append(("release", {"key": key, "timeout": timeout}))
        super().release(key)

    def named(self, call: str) -> list[dict[str, object]]:
        return [arguments for name, arguments in self.calls if name == call]


class RecordingSink:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.written: list[tuple[str, str, float | None]] = []

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        self.written.append((task.name, reason, timeout))
        if self.fails:
            raise ConnectionError("dead-letter topic unreachable")


def delivery(name: str = "t", retry: int = 0, **extra: str) -> dict[str, str]:
    return {
        "X-CloudTasks-QueueName": "orders",
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": str(retry),
        "X-CloudTasks-TaskExecutionCount": str(retry + 1),
        "X-CloudTasks-TaskETA": "1700000000.5",
        **extra,
    }


def done(_task: TaskRequest) -> None:
    return None


def failing(_task: TaskRequest) -> None:
    raise RuntimeError("upstream down")


def rejecting(_task: TaskRequest) -> None:
    raise PermanentTaskError("amount must be positive")


def handler_app(
    processor: Processor,
    store: InMemoryStore | None = None,
    sink: RecordingSink | None = None,
    **options: object,
) -> FlaskClient:
    app = create_app(
        processor,
        store=store,
        dead_letter=sink or RecordingSink(),
        **options,  # pyright: ignore[reportArgumentType]
    )
    return app.test_client()


def post(test: FlaskClient, headers: Mapping[str, str], path: str = "/") -> tuple[int, object]:
    response = test.post(path, data=b"{}", headers=dict(headers), content_type="application/json")
    return response.status_code, (response.json or {}).get("status")


@pytest.fixture
def task_lines(caplog: pytest.LogCaptureFixture) -> Iterator[list[dict[str, object]]]:
    """The task lines logged (handler.tasks, with a status), as they are logged."""
    caplog.set_level(logging.INFO, logger="handler.tasks")
    lines: list[dict[str, object]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, dict) and "status" in record.msg:
                lines.append({**record.msg, "severity": record.levelname})

    keep = Keep()
    logging.getLogger("handler.tasks").addHandler(keep)
    try:
        yield lines
    finally:
        logging.getLogger("handler.tasks").removeHandler(keep)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """handler.app may not sleep unless a test says how (the last attempt's polls): a test
    never waits out a budget of minutes, whatever the handler does."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"the handler waited {seconds} s")

    clock = SimpleNamespace(monotonic=time.monotonic, sleep=refuse)
    monkeypatch.setattr(handler.app, "time", clock)


ELAPSED_S = 0.01234


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """handler.app's monotonic clock reads 100.0 once (the request's arrival), then
    ELAPSED_S later for ever: every duration the request logs is ELAPSED_S."""
    readings = iter([100.0])

    def monotonic() -> float:
        return next(readings, 100.0 + ELAPSED_S)

    monkeypatch.setattr(handler.app, "time", SimpleNamespace(monotonic=monotonic))


# --- the task's log line ----------------------------------------------------------------------


@pytest.mark.usefixtures("frozen_clock")
def test_a_done_task_s_line_names_the_delivery_its_timings_and_no_result(
    task_lines: list[dict[str, object]],
) -> None:
    assert post(handler_app(done), delivery("t", retry=1), "/a/b") == (200, "done")
    assert task_lines == [
        {
            "message": "task done",
            "taskName": "t",
            "queue": "orders",
            "retryCount": 1,
            "executionCount": 2,
            "eta": 1700000000.5,
            "path": "/a/b",
            "status": "done",
            "durationMs": 12.3,  # milliseconds, to a tenth
            "claimMs": 12.3,
            "result": None,
            "severity": "INFO",
        }
    ]


def test_each_answer_s_line_has_its_severity_and_its_fields(
    task_lines: list[dict[str, object]],
) -> None:
    store = InMemoryStore()
    test = handler_app(failing, store, RecordingSink(), max_attempts=3)
    assert post(test, delivery("t", retry=0)) == (500, "failed")
    assert post(test, delivery("t", retry=2)) == (200, "dead_lettered")
    assert post(test, delivery("t", retry=3)) == (200, "duplicate")
    assert store.claim("orders/held") is Claim.ACQUIRED
    assert post(test, delivery("held", retry=0)) == (409, "in_progress")
    failed, dead, duplicate, held = task_lines
    assert (failed["severity"], failed["error"]) == ("WARNING", "RuntimeError('upstream down')")
    assert (dead["severity"], dead["error"]) == ("ERROR", "RuntimeError('upstream down')")
    assert dead["reason"] == "failed on the last allowed attempt: RuntimeError('upstream down')"
    assert (duplicate["severity"], duplicate["status"]) == ("INFO", "duplicate")
    assert (held["severity"], held["status"]) == ("WARNING", "in_progress")
    assert "error" not in duplicate and "reason" not in held


def test_a_dead_letter_that_fails_logs_the_reason_and_the_sink_s_error(
    task_lines: list[dict[str, object]],
) -> None:
    sink = RecordingSink(fails=True)
    assert post(handler_app(rejecting, sink=sink), delivery()) == (500, "dead_letter_failed")
    [line] = task_lines
    assert (line["severity"], line["reason"]) == ("ERROR", "amount must be positive")
    assert line["error"] == "ConnectionError('dead-letter topic unreachable')"


# --- what the store and the sink are asked, and with what time allowed ------------------------

# A 600 s dispatch deadline: a 570 s answer budget (less its 30 s margin).
DEADLINE = timedelta(seconds=600)


def within(value: object, low: float, high: float) -> bool:
    return isinstance(value, float) and low < value <= high


def test_a_claim_names_this_delivery_and_gets_the_budget_left() -> None:
    store = RecordingStore()
    test = handler_app(done, store, dispatch_deadline=DEADLINE)
    assert post(test, delivery("t", retry=2)) == (200, "done")
    [claim] = store.named("claim")
    # This process: its host and process id (the process that imported the handler).
    assert re.fullmatch(
        rf"t attempt 3 on {re.escape(socket.gethostname())}/\d+", str(claim["holder"])
    )
    assert (claim["key"], claim["replay"], claim["first_attempt_at"]) == ("orders/t", False, None)
    assert within(claim["timeout"], 560, 570)


def test_the_first_attempt_gives_its_arrival_to_the_claim() -> None:
    store = RecordingStore()
    before = datetime.now(UTC)
    assert post(handler_app(done, store), delivery("t", retry=0)) == (200, "done")
    [claim] = store.named("claim")
    arrival = claim["first_attempt_at"]
    assert isinstance(arrival, datetime) and before <= arrival <= datetime.now(UTC)


def test_writing_a_done_task_s_record_may_take_half_the_time_left() -> None:
    # The other half is for dead-lettering it if the write does not land.
    store = RecordingStore()
    assert post(handler_app(done, store, dispatch_deadline=DEADLINE), delivery()) == (200, "done")
    [complete] = store.named("complete")
    assert (complete["key"], complete["dead_lettered"]) == ("orders/t", False)
    assert within(complete["timeout"], 275, 285)


def test_a_dead_letter_and_its_record_may_take_all_the_time_left() -> None:
    store, sink = RecordingStore(), RecordingSink()
    test = handler_app(rejecting, store, sink, dispatch_deadline=DEADLINE)
    assert post(test, delivery()) == (200, "rejected")
    [(name, reason, timeout)] = sink.written
    assert (name, reason) == ("t", "amount must be positive") and within(timeout, 560, 570)
    [complete] = store.named("complete")
    assert complete["dead_lettered"] is True and within(complete["timeout"], 560, 570)


def test_a_release_may_take_all_the_time_left() -> None:
    store = RecordingStore()
    test = handler_app(failing, store, max_attempts=3, dispatch_deadline=DEADLINE)
    assert post(test, delivery(retry=0)) == (500, "failed")
    [release] = store.named("release")
    assert release["key"] == "orders/t" and within(release["timeout"], 560, 570)
    assert store.named("complete") == []


def test_with_no_deadline_known_no_call_is_bounded() -> None:
    store, sink = RecordingStore(), RecordingSink()
    assert post(handler_app(rejecting, store, sink), delivery()) == (200, "rejected")
    assert [arguments["timeout"] for _, arguments in store.calls] == [None, None]
    assert [timeout for _, _, timeout in sink.written] == [None]


# --- the last attempt: Cloud Tasks' attempts and retry duration --------------------------------


def test_the_first_attempt_is_its_own_first_attempt_whatever_the_store_says() -> None:
    # One attempt allowed, ten minutes of retries: the first attempt is not the last, even if
    # the store (a stale record) says the task began long ago; the store is not asked.
    store = RecordingStore(first=datetime.now(UTC) - timedelta(hours=1))
    test = handler_app(failing, store, max_attempts=1, max_retry_duration=timedelta(minutes=10))
    assert post(test, delivery(retry=0)) == (500, "failed")
    assert store.named("first_attempt") == []


def test_a_retry_asks_the_store_when_the_task_began() -> None:
    store, sink = RecordingStore(first=datetime.now(UTC) - timedelta(minutes=11)), RecordingSink()
    test = handler_app(
        failing,
        store,
        sink,
        max_attempts=2,
        max_retry_duration=timedelta(minutes=10),
        dispatch_deadline=DEADLINE,
    )
    assert post(test, delivery(retry=1)) == (200, "dead_lettered")
    [asked] = store.named("first_attempt")
    assert asked["key"] == "orders/t" and within(asked["timeout"], 560, 570)


@pytest.mark.parametrize(
    ("deadline_s", "age_s", "last"),
    [
        # Cloud Tasks may have started counting up to the deadline's margin (30 s for 600 s)
        # before the first attempt reached the handler: 580 s here may be 610 s there.
        (600, 580, True),
        (600, 560, False),
        # With no deadline known, a second.
        (None, 599.5, True),
        (None, 590, False),
    ],
)
def test_the_retry_duration_allows_for_cloud_tasks_counting_before_the_arrival(
    deadline_s: int | None, age_s: float, last: bool
) -> None:
    store = RecordingStore(first=datetime.now(UTC) - timedelta(seconds=age_s))
    test = handler_app(
        failing,
        store,
        max_attempts=2,
        max_retry_duration=timedelta(seconds=600),
        dispatch_deadline=None if deadline_s is None else timedelta(seconds=deadline_s),
    )
    assert post(test, delivery(retry=1)) == ((200, "dead_lettered") if last else (500, "failed"))


# --- the request target, as a replay sends it again -------------------------------------------


@pytest.mark.parametrize(
    ("environ", "target"),
    [
        # Kept as it arrived: an empty query and a path starting with two slashes included.
        ({"RAW_URI": "/p?"}, "/p?"),
        ({"RAW_URI": "//a/b?c"}, "//a/b?c"),
        # An empty raw target is none: the next source is read.
        ({"RAW_URI": "", "REQUEST_URI": "/r?q"}, "/r?q"),
        ({"RAW_URI": "", "PATH_INFO": "/p"}, "/p"),
        # The absolute form, cut to its path and query.
        ({"RAW_URI": "http://h:8"}, "/"),
        ({"RAW_URI": "http://h:8?q=1"}, "/?q=1"),
        ({"RAW_URI": "http://h:8/p"}, "/p"),
        # Rebuilt from the decoded path (WSGI's latin-1 string of the raw bytes).
        ({}, "/"),
        ({"PATH_INFO": "/caf\xc3\xa9"}, "/caf%C3%A9"),
        ({"PATH_INFO": "/\xe9"}, "/%EF%BF%BD"),  # not UTF-8: the replacement character
    ],
)
def test_the_request_target_of_each_server_s_environ(environ: dict[str, str], target: str) -> None:
    assert request_target(environ) == target


def test_a_raw_target_that_is_not_a_string_is_not_read() -> None:
    assert request_target({"RAW_URI": b"/raw", "PATH_INFO": "/decoded"}) == "/decoded"


# --- what the processor is told of its claim ---------------------------------------------------


def test_the_processor_gets_the_task_s_key_and_its_claim_s_fencing_token() -> None:
    seen: list[TaskContext] = []

    def process(task: TaskRequest) -> None:
        seen.append(current())
        if task.retry_count == 0:
            raise RuntimeError("try again")

    test = handler_app(process, max_attempts=3)
    assert post(test, delivery("t", retry=0)) == (500, "failed")
    assert post(test, delivery("t", retry=1)) == (200, "done")
    assert seen == [TaskContext("orders/t", 1), TaskContext("orders/t", 2)]


class StoreWithoutTokens(InMemoryStore):
    """A store written before fencing tokens: it has no fencing_token call."""

    def __getattribute__(self, name: str) -> object:
        if name == "fencing_token":
            raise AttributeError(name)
        return super().__getattribute__(name)


class StoreWithOddTokens(InMemoryStore):
    def fencing_token(self, key: str) -> int | None:
        return "7"  # pyright: ignore[reportReturnType]


@pytest.mark.parametrize("store", [StoreWithoutTokens, StoreWithOddTokens])
def test_a_store_that_keeps_no_tokens_gives_the_processor_none(
    store: type[InMemoryStore],
) -> None:
    seen: list[TaskContext] = []
    test = handler_app(lambda task: seen.append(current()) or None, store())
    assert post(test, delivery("t")) == (200, "done")
    assert seen == [TaskContext("orders/t", None)]


def test_a_forged_replay_is_refused_in_a_line_naming_the_task_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="handler.tasks")
    sink = RecordingSink()
    forged = {**delivery("evil"), "X-Replay-Of": "payments/order-42"}
    assert post(handler_app(done, sink=sink), forged) == (200, "rejected")
    reason = (
        "X-Replay-Of 'payments/order-42' names queue 'payments', not this task's queue"
        " 'orders': a replay is honoured only on its own queue"
    )
    refused = [r.msg for r in caplog.records if "replay refused" in str(r.msg)]
    assert refused == [{"message": "replay refused", "taskName": "evil", "reason": reason}]
    assert [(name, why) for name, why, _ in sink.written] == [("evil", reason)]


# --- a record that can't be written -----------------------------------------------------------


class FailingWrites(RecordingStore):
    """Claims answer; complete() and release() raise, as a store that times out does."""

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        super().complete(key, dead_lettered=dead_lettered, timeout=timeout)
        raise TimeoutError("deadline exceeded")

    def release(self, key: str, *, timeout: float | None = None) -> None:
        super().release(key, timeout=timeout)
        raise TimeoutError("deadline exceeded")


STORE_ERROR = "TimeoutError('deadline exceeded')"


def test_a_processed_task_whose_record_is_not_written_is_dead_lettered(
    task_lines: list[dict[str, object]],
) -> None:
    # Its claim would lapse and a redelivery run it again: the dead letter keeps it, to be
    # replayed only if the record never says processed.
    store, sink = FailingWrites(), RecordingSink()
    assert post(handler_app(done, store, sink), delivery()) == (200, "dead_lettered")
    reason = (
        f"processed, but its record could not be written in time ({STORE_ERROR}): the handler"
        " keeps the claim and the write going; replay it only if the task never ran (a replay"
        " is a duplicate once the record says processed)"
    )
    assert [(name, why) for name, why, _ in sink.written] == [("t", reason)]
    [line] = task_lines
    assert (line["status"], line["storeError"], line["reason"]) == (
        "dead_lettered",
        STORE_ERROR,
        reason,
    )
    assert line["result"] is None


def test_a_processed_task_whose_record_and_dead_letter_both_fail_is_handed_back(
    task_lines: list[dict[str, object]],
) -> None:
    store, sink = FailingWrites(), RecordingSink(fails=True)
    assert post(handler_app(done, store, sink), delivery()) == (500, "dead_letter_failed")
    [line] = task_lines
    assert line["storeError"] == STORE_ERROR
    assert str(line["reason"]).startswith("processed, but its record could not be written")


@pytest.mark.parametrize(
    ("processor", "answer"),
    [(rejecting, (200, "rejected")), (failing, (500, "failed"))],
)
def test_an_unwritten_record_of_a_task_not_processed_changes_nothing_but_the_line(
    processor: Processor, answer: tuple[int, str], task_lines: list[dict[str, object]]
) -> None:
    # A dead letter is kept already; a failure is retried whether or not its claim lapses.
    store, sink = FailingWrites(), RecordingSink()
    test = handler_app(processor, store, sink, max_attempts=3)
    assert post(test, delivery()) == answer
    assert len(sink.written) == (1 if answer[1] == "rejected" else 0)
    [line] = task_lines
    assert (line["status"], line["storeError"]) == (answer[1], STORE_ERROR)


# --- a replay with no dead letter to stand for --------------------------------------------------


def test_a_replay_of_a_task_never_dead_lettered_runs_as_its_own_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="handler.tasks")
    store = RecordingStore()
    seen: list[str] = []
    test = handler_app(lambda task: seen.append(current().idempotency_key) or None, store)
    assert post(test, {**delivery("replay-1"), "X-Replay-Of": "orders/t"}) == (200, "done")
    warned = [r.msg for r in caplog.records if "no such dead letter" in str(r.msg)]
    assert warned == [
        {
            "message": (
                "replay of a task with no such dead letter on record (none, or another target"
                " or body): run as its own task"
            ),
            "taskName": "replay-1",
            "queue": "orders",
            "replayOf": "orders/t",
        }
    ]
    # Asked as the replay of orders/t, then claimed under its own key.
    claims = [(c["key"], c["replay"]) for c in store.named("claim")]
    assert claims == [("orders/t", True), ("orders/replay-1", False)]
    assert seen == ["orders/replay-1"]


# --- the last attempt waits for the task's holder ----------------------------------------------


class Waits:
    """handler.app's sleep: records each wait and returns at once; after the `at`-th wait
    the holder of task `t` settles (`ends`: "release" or "complete")."""

    def __init__(self, store: InMemoryStore, at: int, ends: str) -> None:
        self.store, self.at, self.ends = store, at, ends
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        assert len(self.waits) <= 10, "still waiting"
        if len(self.waits) == self.at:
            getattr(self.store, self.ends)("orders/t")


def held_last_attempt(
    monkeypatch: pytest.MonkeyPatch, at: int, ends: str, deadline: timedelta | None
) -> tuple[tuple[int, object], Waits, RecordingSink]:
    store, sink = InMemoryStore(), RecordingSink()
    assert store.claim("orders/t") is Claim.ACQUIRED  # another delivery holds it
    waits = Waits(store, at, ends)
    clock = SimpleNamespace(monotonic=time.monotonic, sleep=waits.sleep)
    monkeypatch.setattr(handler.app, "time", clock)
    test = handler_app(done, store, sink, max_attempts=3, dispatch_deadline=deadline)
    return post(test, delivery("t", retry=2)), waits, sink


def test_the_last_attempt_asks_every_two_seconds_until_the_holder_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, waits, sink = held_last_attempt(monkeypatch, 3, "release", DEADLINE)
    assert answer == (200, "done") and sink.written == []
    assert waits.waits == [2.0, 2.0, 2.0]


def test_the_last_attempt_never_waits_past_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 2 s deadline: a 1 s budget, less than one poll.
    answer, waits, _ = held_last_attempt(monkeypatch, 1, "complete", timedelta(seconds=2))
    assert answer == (200, "duplicate")
    [wait] = waits.waits
    assert 0 < wait <= 1.0


def test_with_no_budget_known_the_last_attempt_does_not_wait_for_a_holder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, waits, sink = held_last_attempt(monkeypatch, 1, "release", None)
    assert answer == (200, "dead_lettered") and waits.waits == []
    assert [(name, reason) for name, reason, _ in sink.written] == [
        (
            "t",
            "last attempt: another delivery still held the task when this attempt's answer"
            " budget ran out",
        )
    ]


# --- past the deadline: an answer Cloud Tasks no longer hears ---------------------------------


@pytest.fixture
def spent_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """handler.app's clock runs 1000 s behind the task's: the request arrived, by it, long
    enough ago that its answer budget is spent before the store is first asked."""
    behind = SimpleNamespace(monotonic=lambda: time.monotonic() - 1000, sleep=time.sleep)
    monkeypatch.setattr(handler.app, "time", behind)


LATE_REASON = (
    "failed after the dispatch deadline (0:10:00), when Cloud Tasks no longer hears the"
    " answer: RuntimeError('upstream down')"
)


@pytest.mark.usefixtures("spent_budget")
def test_a_failure_nobody_hears_is_dead_lettered_and_each_call_gets_the_floor(
    task_lines: list[dict[str, object]],
) -> None:
    store, sink = RecordingStore(), RecordingSink()
    test = handler_app(failing, store, sink, max_attempts=5, dispatch_deadline=DEADLINE)
    assert post(test, delivery(retry=0)) == (200, "dead_lettered")
    assert sink.written == [("t", LATE_REASON, 0.5)]
    assert [(name, arguments["timeout"]) for name, arguments in store.calls] == [
        ("claim", 0.5),
        ("complete", 0.5),
    ]
    [line] = task_lines
    assert (line["reason"], line["error"]) == (LATE_REASON, "RuntimeError('upstream down')")


@pytest.mark.usefixtures("spent_budget")
def test_a_dead_letter_nobody_hears_fail_leaves_the_task_in_the_log(
    caplog: pytest.LogCaptureFixture, task_lines: list[dict[str, object]]
) -> None:
    caplog.set_level(logging.INFO)
    sink = RecordingSink(fails=True)
    test = handler_app(failing, sink=sink, max_attempts=5, dispatch_deadline=DEADLINE)
    assert post(test, delivery(retry=0)) == (500, "dead_letter_failed")
    kept = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]
    assert [(letter["taskName"], letter["reason"]) for letter in kept] == [("t", LATE_REASON)]
    [line] = task_lines
    assert line["error"] == "ConnectionError('dead-letter topic unreachable')"
