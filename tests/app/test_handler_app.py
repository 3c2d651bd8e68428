"""The handler's contract with Cloud Tasks, through Flask's test client (no server)."""

import base64
import json
import logging
import logging.config
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from handler import example
from handler.app import Processor, create_app, request_target
from handler.dead_letter import ATTRIBUTE_VALUE_MAX_BYTES, DeadLetter, LogDeadLetterSink
from handler.logs import logging_config
from handler.store import Claim, InMemoryStore
from handler.task import PermanentTaskError, TaskRequest, parse_task


class RecordingSink:
    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        self.written.append((task.name, reason))


def delivery(name: str = "task-1", retry: int = 0, **extra: str) -> dict[str, str]:
    return {
        "X-CloudTasks-QueueName": "orders",
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": str(retry),
        "X-CloudTasks-TaskExecutionCount": str(retry),
        "X-CloudTasks-TaskETA": "1700000000.5",
        **extra,
    }


def client(
    processor: Processor = example.process, sink: RecordingSink | None = None, attempts: int = 3
) -> FlaskClient:
    app = create_app(processor, dead_letter=sink or RecordingSink(), max_attempts=attempts)
    return app.test_client()


def post(test: FlaskClient, payload: object, headers: Mapping[str, str], path: str = "/"):
    return test.post(
        path, data=json.dumps(payload), headers=dict(headers), content_type="application/json"
    )


def test_health() -> None:
    response = client().get("/health")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_processes_and_logs_one_structured_line(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[TaskRequest] = []

    def record(task: TaskRequest) -> dict[str, object]:
        seen.append(task)
        return {"ok": True}

    caplog.set_level(logging.INFO, logger="handler.tasks")
    response = post(client(record), {"id": 7}, delivery(retry=1, **{"X-Tenant": "acme"}), "/a/b")
    assert (response.status_code, response.json) == (200, {"status": "done"})
    [task] = seen
    assert (task.name, task.queue, task.retry_count, task.eta) == (
        "task-1",
        "orders",
        1,
        1700000000.5,
    )
    assert (task.path, task.payload, task.headers["x-tenant"]) == ("/a/b", {"id": 7}, "acme")
    [record_] = [r for r in caplog.records if r.name == "handler.tasks"]
    fields = record_.msg
    assert isinstance(fields, dict)
    assert fields["taskName"] == "task-1" and fields["queue"] == "orders"
    assert (fields["retryCount"], fields["status"], fields["result"]) == (1, "done", {"ok": True})


def test_redelivery_of_a_done_task_is_not_processed_again() -> None:
    calls: list[str] = []
    test = client(lambda task: calls.append(task.name) or None)
    assert post(test, {}, delivery("t")).json == {"status": "done"}
    second = post(test, {}, delivery("t", retry=1))
    assert (second.status_code, second.json) == (200, {"status": "duplicate"})
    assert calls == ["t"]


def test_same_task_name_in_another_queue_is_another_task() -> None:
    calls: list[str] = []
    test = client(lambda task: calls.append(task.queue) or None)
    post(test, {}, delivery("t"))
    post(
        test,
        {},
        {**delivery("t"), "X-CloudTasks-QueueName": "projects/p/locations/l/queues/emails"},
    )
    assert calls == ["orders", "emails"]


def test_concurrent_delivery_of_a_running_task_is_told_to_retry() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(_task: TaskRequest) -> None:
        started.set()
        release.wait(10)

    test = client(slow)
    first: list[int] = []
    worker = threading.Thread(
        target=lambda: first.append(post(test, {}, delivery("t")).status_code)
    )
    worker.start()
    assert started.wait(10)
    concurrent = post(test, {}, delivery("t"))
    release.set()
    worker.join(10)
    assert (concurrent.status_code, concurrent.json) == (409, {"status": "in_progress"})
    assert first == [200]


def test_retryable_failure_answers_500_and_can_succeed_later() -> None:
    test = client()
    failing = post(test, {"failTimes": 2}, delivery("t", retry=0))
    assert (failing.status_code, failing.json) == (500, {"status": "failed"})
    assert post(test, {"failTimes": 2}, delivery("t", retry=1)).status_code == 500
    assert post(test, {"failTimes": 2}, delivery("t", retry=2)).json == {"status": "done"}


def test_last_attempt_failure_is_dead_lettered() -> None:
    sink = RecordingSink()
    test = client(sink=sink, attempts=3)
    assert post(test, {"failAlways": True}, delivery("t", retry=1)).json == {"status": "failed"}
    assert sink.written == []
    last = post(test, {"failAlways": True}, delivery("t", retry=2))
    # Acknowledged once the sink kept it: a later attempt (maxRetryDuration not yet spent)
    # would otherwise run a task that a replay runs again.
    assert (last.status_code, last.json) == (200, {"status": "dead_lettered"})
    assert [name for name, _ in sink.written] == ["t"]
    assert "last allowed attempt" in sink.written[0][1]
    assert post(test, {"failAlways": True}, delivery("t", retry=3)).json == {"status": "duplicate"}


def test_unknown_max_attempts_never_dead_letters_a_retryable_failure() -> None:
    sink = RecordingSink()
    app = create_app(example.process, dead_letter=sink, max_attempts=None)
    response = post(app.test_client(), {"failAlways": True}, delivery("t", retry=500))
    assert response.json == {"status": "failed"}
    assert sink.written == []


def test_malformed_json_is_dead_lettered_and_acknowledged_once() -> None:
    sink = RecordingSink()
    test = client(sink=sink)
    headers = delivery("t")
    response = test.post("/", data=b"{not json", headers=headers, content_type="application/json")
    assert (response.status_code, response.json) == (200, {"status": "rejected"})
    again = test.post("/", data=b"{not json", headers=headers, content_type="application/json")
    assert again.json == {"status": "duplicate"}
    assert len(sink.written) == 1 and "not valid JSON" in sink.written[0][1]


def test_permanent_error_is_dead_lettered_not_retried() -> None:
    sink = RecordingSink()

    def invalid(_task: TaskRequest) -> None:
        raise PermanentTaskError("amount must be positive")

    response = post(client(invalid, sink), {"amount": -1}, delivery("t"))
    assert (response.status_code, response.json) == (200, {"status": "rejected"})
    assert sink.written == [("t", "amount must be positive")]


def test_request_without_cloud_tasks_headers_is_refused() -> None:
    calls: list[str] = []
    response = post(client(lambda task: calls.append(task.name) or None), {}, {})
    assert (response.status_code, response.json) == (400, {"status": "not_a_task"})
    assert calls == []


def test_non_json_body_reaches_processor_as_bytes() -> None:
    seen: list[TaskRequest] = []
    test = client(lambda task: seen.append(task) or None)
    test.post("/", data=b"\x00\x01", headers=delivery(), content_type="application/octet-stream")
    assert (seen[0].body, seen[0].payload) == (b"\x00\x01", None)


def test_example_echo_leaves_out_task_identity_and_trace_headers() -> None:
    task = TaskRequest(
        name="t",
        queue="q",
        retry_count=0,
        execution_count=0,
        eta=None,
        path="/",
        headers={"x-cloudtasks-taskname": "t", "x-tenant": "acme", "authorization": "Bearer s"},
        body=b"{}",
        payload={"id": 1},
    )
    assert example.process(task) == {
        "echo": {"id": 1},
        "path": "/",
        "headers": {"x-tenant": "acme"},
    }


def test_in_memory_store_claims() -> None:
    store = InMemoryStore(capacity=2)
    assert store.claim("a") is Claim.ACQUIRED
    assert store.claim("a") is Claim.IN_PROGRESS
    store.release("a")
    assert store.claim("a") is Claim.ACQUIRED
    store.complete("a")
    assert store.claim("a") is Claim.DONE
    for key in ("b", "c"):
        store.claim(key)
        store.complete(key)
    # Capacity 2: the oldest completed task is forgotten first.
    assert store.claim("a") is Claim.ACQUIRED
    assert store.claim("c") is Claim.DONE


# --- defects found by red-teaming: each answered wrongly before its fix ----------------------


class FailingSink:
    """A dead-letter sink whose write is never confirmed (Pub/Sub down, say)."""

    def __init__(self) -> None:
        self.attempts = 0

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        self.attempts += 1
        raise ConnectionError("dead-letter topic unreachable")


def test_a_failing_dead_letter_sink_hands_the_task_back_instead_of_leaking_its_claim() -> None:
    sink = FailingSink()
    app = create_app(example.process, dead_letter=sink, max_attempts=3)
    test = app.test_client()
    first = post(test, {"reject": True}, delivery("t", retry=0))
    assert (first.status_code, first.json) == (500, {"status": "dead_letter_failed"})
    # Before the fix the claim stayed taken: every redelivery answered 409 for good.
    second = post(test, {"reject": True}, delivery("t", retry=1))
    assert (second.status_code, second.json) == (500, {"status": "dead_letter_failed"})
    assert sink.attempts == 2


class Interrupted(BaseException):
    """Not an Exception: what `except Exception` lets through."""


def test_a_base_exception_in_the_processor_releases_the_claim() -> None:
    calls: list[int] = []

    def interrupted(task: TaskRequest) -> None:
        calls.append(task.retry_count)
        if task.retry_count == 0:
            raise Interrupted

    test = client(interrupted)
    first = post(test, {}, delivery("t", retry=0))
    assert (first.status_code, first.json) == (500, {"status": "failed"})
    second = post(test, {}, delivery("t", retry=1))
    assert (second.status_code, second.json) == (200, {"status": "done"})
    assert calls == [0, 1]


@pytest.mark.parametrize("junk", ["nan", "inf", "-inf", "1e400", "-1", "1.5e3", "٣", "0x10"])
def test_counts_and_eta_that_are_not_numbers_are_taken_as_unknown(junk: str) -> None:
    seen: list[TaskRequest] = []
    test = client(lambda task: seen.append(task) or None)
    headers = {**delivery("t"), "X-CloudTasks-TaskRetryCount": junk}
    headers["X-CloudTasks-TaskExecutionCount"] = junk
    headers["X-CloudTasks-TaskETA"] = junk
    response = post(test, {}, headers)
    assert (response.status_code, response.json) == (200, {"status": "done"})
    assert (seen[0].retry_count, seen[0].execution_count, seen[0].eta) == (0, 0, None)


def test_deeply_nested_json_is_rejected_not_retried() -> None:
    sink = RecordingSink()
    test = client(sink=sink)
    body = b"[" * 100_000 + b"]" * 100_000
    response = test.post("/", data=body, headers=delivery("t"), content_type="application/json")
    assert (response.status_code, response.json) == (200, {"status": "rejected"})
    assert len(sink.written) == 1 and "nested too deeply" in sink.written[0][1]


CREDENTIALS = {
    "Authorization": "Bearer secret-authorization",
    "Proxy-Authorization": "Basic secret-proxy",
    "Cookie": "session=secret-cookie",
    "X-Api-Key": "secret-api-key",
    "X-Auth-Token": "secret-auth-token",
    "X-Client-Secret": "secret-client-secret",
    "X-Db-Password": "secret-password",
    "X-Goog-Iap-Jwt-Assertion": "secret-jwt",
}


def test_the_example_never_echoes_credential_headers() -> None:
    seen: list[dict[str, object]] = []

    def echo(task: TaskRequest) -> dict[str, object]:
        seen.append(example.process(task))
        return seen[-1]

    response = post(client(echo), {"id": 1}, {**delivery(), **CREDENTIALS, "X-Tenant": "acme"})
    assert response.json == {"status": "done"}
    assert seen[0]["headers"] == {"x-tenant": "acme"}


def test_no_log_line_carries_a_credential_whatever_the_processor_returns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the real logging configuration (JSON on stdout), with a processor that returns
    every header it got: the credentials' values never reach the log."""
    logging.config.dictConfig(logging_config())
    try:

        def leaky(task: TaskRequest) -> dict[str, object]:
            if isinstance(task.payload, dict) and task.payload.get("reject"):
                raise PermanentTaskError(f"rejected with {dict(task.headers)}")
            return {"headers": dict(task.headers), "nested": [{"x-api-key": "secret-nested"}]}

        test = create_app(leaky, dead_letter=LogDeadLetterSink(), max_attempts=3).test_client()
        assert post(test, {}, {**delivery("t1"), **CREDENTIALS}).json == {"status": "done"}
        rejected = post(test, {"reject": True}, {**delivery("t2"), **CREDENTIALS})
        assert rejected.json == {"status": "rejected"}
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    out = capsys.readouterr().out
    assert '"taskName": "t1"' in out and '"deadLetter": true' in out
    leaked = [value for value in [*CREDENTIALS.values(), "secret-nested"] if value in out]
    assert leaked == []


class BrokenStore:
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
        raise ConnectionError("firestore unreachable")

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        raise ConnectionError("firestore unreachable")

    def fencing_token(self, key: str) -> int | None:
        raise AssertionError("never claimed")

    def hand_over(self, key: str, thread: int) -> None:
        raise AssertionError("never claimed")

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        raise AssertionError("never claimed")

    def release(self, key: str, *, timeout: float | None = None) -> None:
        raise AssertionError("never claimed")


def test_an_unreachable_store_hands_the_task_back_unprocessed() -> None:
    calls: list[str] = []
    app = create_app(lambda task: calls.append(task.name) or None, store=BrokenStore())
    response = post(app.test_client(), {}, delivery("t"))
    assert (response.status_code, response.json) == (500, {"status": "store_unavailable"})
    assert calls == []


def test_publish_failing_on_the_last_attempt_leaves_the_whole_record_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(example.process, dead_letter=FailingSink(), max_attempts=3)
    body = json.dumps({"reject": True, "blob": "x" * 150_000}).encode()
    headers = delivery("t", retry=1, **{"X-Tenant": "acme"})
    test = app.test_client()
    response = test.post("/p", data=body, headers=headers, content_type="application/json")
    assert response.json == {"status": "dead_letter_failed"}
    assert not [r for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]
    headers["X-CloudTasks-TaskRetryCount"] = "2"
    response = test.post("/p", data=body, headers=headers, content_type="application/json")
    assert (response.status_code, response.json) == (500, {"status": "dead_letter_failed"})
    parts = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]
    assert [p["part"] for p in parts] == [1, 2, 3] and {p["parts"] for p in parts} == {3}
    assert b"".join(base64.b64decode(str(p["bodyBase64"])) for p in parts) == body
    first = parts[0]
    assert (first["taskName"], first["retryCount"], first["path"]) == ("t", 2, "/p")
    assert (first["contentType"], first["headers"]) == ("application/json", {"x-tenant": "acme"})


def test_dead_letter_attributes_fit_pub_sub_limits() -> None:
    headers = {f"x-h{n:02}": "v" * 40 for n in range(40)}
    task = parse_task(
        {"x-cloudtasks-taskname": "t", "x-cloudtasks-queuename": "q", "content-type": "text/plain",
         "authorization": "Bearer s", "x-api-key": "k", "host": "h", **headers},
        "/" + "p" * 2000, b"body",
    )  # fmt: skip
    letter = DeadLetter.of(task, "reason é" * 300)
    assert all(len(v.encode()) <= ATTRIBUTE_VALUE_MAX_BYTES for v in letter.attributes.values())
    kept = json.loads(letter.attributes["headers"])
    assert 0 < len(kept) < 40 and kept == {name: headers[name] for name in sorted(kept)}
    assert letter.truncated == ("reason", "path", "headers")
    assert letter.attributes["truncated"] == "reason,path,headers"
    assert (letter.attributes["taskName"], letter.attributes["contentType"]) == ("t", "text/plain")
    whole = DeadLetter.of(
        replace(task, path="/p", target="/p", headers={"x-tenant": "acme"}), "why"
    )
    assert whole.truncated == () and "truncated" not in whole.attributes
    assert whole.attributes == {
        "taskName": "t", "queue": "q", "originalTask": "q/t", "retryCount": "0", "reason": "why",
        "path": "/p", "contentType": "", "headers": '{"x-tenant": "acme"}',
    }  # fmt: skip
    # A replay's dead letter names the task it replays in an attribute of its own, whatever
    # its headers: with 40 long ones, the header would have been cut.
    replayed = replace(task, headers={**task.headers, "x-replay-of": "q/first"})
    letter = DeadLetter.of(replayed, "why")
    assert letter.attributes["originalTask"] == "q/first" and "headers" in letter.truncated
    assert "x-replay-of" not in json.loads(letter.attributes["headers"])


# --- deadlines: an answer Cloud Tasks no longer hears, and the last attempt -------------------
# A 2 s dispatch deadline leaves a 1 s answer budget (less the 1 s minimum margin).
DEADLINE = timedelta(seconds=2)


def test_the_processor_is_told_how_long_its_answer_is_heard() -> None:
    seen: list[float | None] = []
    app = create_app(
        lambda task: seen.append(task.time_left()) or None,
        dead_letter=RecordingSink(),
        dispatch_deadline=timedelta(seconds=600),
    )
    assert post(app.test_client(), {}, delivery("t")).json == {"status": "done"}
    [left] = seen
    assert left is not None and 569 < left <= 570  # 600 s less its 30 s margin
    # Without a known deadline there is no budget to report.
    assert post(client(lambda task: seen.append(task.time_left()) or None), {}, delivery()).json
    assert seen[-1] is None


def overrunning(seconds: float) -> Processor:
    def process(task: TaskRequest) -> None:
        time.sleep(seconds)
        raise RuntimeError("upstream timed out")

    return process


def test_a_failure_after_the_deadline_is_dead_lettered_not_handed_back() -> None:
    # Cloud Tasks has counted the attempt failed; with no attempt left (409s to other
    # deliveries use them up) a 500 would drop the task, so the dead letter keeps it.
    sink = RecordingSink()
    store = InMemoryStore()
    app = create_app(
        overrunning(1.2), store=store, dead_letter=sink, max_attempts=5, dispatch_deadline=DEADLINE
    )
    response = post(app.test_client(), {}, delivery("t", retry=0))
    assert (response.status_code, response.json) == (200, {"status": "dead_lettered"})
    [(name, reason)] = sink.written
    assert name == "t" and reason.startswith("failed after the dispatch deadline (0:00:02)")
    assert "upstream timed out" in reason
    assert store.claim("orders/t") is Claim.DONE  # a later delivery is a duplicate


def test_a_failure_within_the_deadline_is_still_handed_back() -> None:
    sink = RecordingSink()
    app = create_app(overrunning(0.1), dead_letter=sink, max_attempts=5, dispatch_deadline=DEADLINE)
    response = post(app.test_client(), {}, delivery("t", retry=0))
    assert (response.status_code, response.json) == (500, {"status": "failed"})
    assert sink.written == []


def test_a_dead_letter_failing_after_the_deadline_goes_to_the_log_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(
        overrunning(1.2), dead_letter=FailingSink(), max_attempts=5, dispatch_deadline=DEADLINE
    )
    response = post(app.test_client(), {"id": 1}, delivery("t", retry=0))
    assert (response.status_code, response.json) == (500, {"status": "dead_letter_failed"})
    parts = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]
    assert [(p["taskName"], p["part"]) for p in parts] == [("t", 1)]
    assert base64.b64decode(str(parts[0]["bodyBase64"])) == b'{"id": 1}'


class Holder:
    """Holds task `t` in a thread, as another delivery would, until told how to end."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.claimed, self.end = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        assert self.store.claim("orders/t") is Claim.ACQUIRED
        self.claimed.set()
        self.end.wait(10)

    def __enter__(self) -> "Holder":
        self.thread.start()
        assert self.claimed.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.end.set()
        self.thread.join(10)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handler.app.HOLDER_POLL_S", 0.05)


def last_attempt_app(
    store: InMemoryStore, calls: list[str], sink: RecordingSink | FailingSink | None = None
) -> FlaskClient:
    app = create_app(
        lambda task: calls.append(task.name) or None,
        store=store,
        dead_letter=sink or RecordingSink(),
        max_attempts=3,
        dispatch_deadline=DEADLINE,
    )
    return app.test_client()


def later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


@pytest.mark.usefixtures("quick_polls")
@pytest.mark.parametrize(
    ("holder_ends", "answer", "calls_made"),
    [
        # The holder's attempt fails and releases its claim (or its lease lapses): taken over.
        ("release", "done", ["t"]),
        ("complete", "duplicate", []),
    ],
)
def test_the_last_attempt_waits_for_the_holder_to_let_go_or_finish(
    holder_ends: str, answer: str, calls_made: list[str]
) -> None:
    store, calls = InMemoryStore(), []
    test = last_attempt_app(store, calls)
    with Holder(store):
        timer = later(0.3, lambda: getattr(store, holder_ends)("orders/t"))
        response = post(test, {}, delivery("t", retry=2))
        timer.join()
    assert (response.status_code, response.json) == (200, {"status": answer})
    assert calls == calls_made


@pytest.mark.usefixtures("quick_polls")
def test_a_last_attempt_still_held_at_its_budget_dead_letters_the_task() -> None:
    # Cloud Tasks drops the task after this answer: if the holder never finishes it, the dead
    # letter has it (and its replay is a duplicate if the holder does finish, below).
    store, calls, sink = InMemoryStore(), [], RecordingSink()
    test = last_attempt_app(store, calls, sink)
    with Holder(store):
        # Not the last attempt: told to come back at once, nothing recorded.
        earlier = time.monotonic()
        assert post(test, {}, delivery("t", retry=1)).status_code == 409
        assert time.monotonic() - earlier < 0.5 and sink.written == []
        started = time.monotonic()
        response = post(test, {}, delivery("t", retry=2))
        waited = time.monotonic() - started
    assert (response.status_code, response.json) == (200, {"status": "dead_lettered"})
    assert 0.9 <= waited < 1.5  # its 1 s answer budget, and no longer
    [(name, reason)] = sink.written
    assert name == "t" and "another delivery still held the task" in reason
    assert calls == []


def dead_letters_in_log(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]


@pytest.mark.usefixtures("quick_polls")
def test_a_last_attempt_still_held_whose_dead_letter_fails_leaves_the_task_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    store = InMemoryStore()
    test = last_attempt_app(store, [], FailingSink())
    with Holder(store):
        response = post(test, {"id": 3}, delivery("t", retry=2))
    assert (response.status_code, response.json) == (500, {"status": "dead_letter_failed"})
    [record] = dead_letters_in_log(caplog)
    assert (record["taskName"], record["retryCount"]) == ("t", 2)
    assert "still held the task" in str(record["reason"])
    assert base64.b64decode(str(record["bodyBase64"])) == b'{"id": 3}'


class FlakyStore(InMemoryStore):
    """Fails the claims whose turn (1-based) is listed, answers the others."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing, self.claims = failing, 0

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
        self.claims += 1
        if self.claims in self.failing:
            raise ConnectionError("firestore unavailable")
        return super().claim(key, replay=replay, letter=letter)


@pytest.mark.usefixtures("quick_polls")
def test_a_failed_poll_does_not_end_the_last_attempts_wait() -> None:
    store, calls = FlakyStore(failing=set()), []
    test = last_attempt_app(store, calls)
    with Holder(store):  # the holder's claim is turn 1; the delivery's ask and first poll fail
        store.failing = {2, 3}
        timer = later(0.3, lambda: store.release("orders/t"))
        response = post(test, {}, delivery("t", retry=2))
        timer.join()
    assert (response.status_code, response.json) == (200, {"status": "done"})
    assert calls == ["t"] and store.claims >= 4


@pytest.mark.usefixtures("quick_polls")
def test_a_store_down_for_the_last_attempts_whole_budget_dead_letters_the_task() -> None:
    store, calls, sink = FlakyStore(failing=set(range(1, 1000))), [], RecordingSink()
    test = last_attempt_app(store, calls, sink)
    started = time.monotonic()
    response = post(test, {"id": 4}, delivery("t", retry=2))
    assert (response.status_code, response.json) == (200, {"status": "dead_lettered"})
    assert 0.9 <= time.monotonic() - started < 1.5 and store.claims > 5 and calls == []
    [(_, reason)] = sink.written
    assert "the idempotency store failed (ConnectionError" in reason
    # Not the last attempt: answered at once, and Cloud Tasks retries it.
    store.claims = 0
    assert post(test, {"id": 4}, delivery("t", retry=1)).status_code == 500
    assert store.claims == 1 and len(sink.written) == 1


# --- replays: one task however many dead letters and replays it has ---------------------------


def replay_of(name: str, replay: str, retry: int = 0) -> dict[str, str]:
    return {**delivery(replay, retry), "X-Replay-Of": name}


def test_a_dead_lettered_task_is_replayed_once_and_its_redelivery_stays_a_duplicate() -> None:
    store, calls, sink = InMemoryStore(), [], RecordingSink()
    rejecting = {"on": True}

    def process(task: TaskRequest) -> None:
        calls.append(task.name)
        if rejecting["on"]:
            raise PermanentTaskError("downstream refused it")

    app = create_app(process, store=store, dead_letter=sink, max_attempts=3)
    test = app.test_client()
    assert post(test, {}, delivery("t")).json == {"status": "rejected"}
    assert post(test, {}, delivery("t", retry=1)).json == {"status": "duplicate"}
    rejecting["on"] = False  # the cause is fixed; two dead letters of it were kept, say
    assert post(test, {}, replay_of("t", "replay-1")).json == {"status": "done"}
    assert post(test, {}, replay_of("t", "replay-2")).json == {"status": "duplicate"}
    assert calls == ["t", "replay-1"]


def test_a_replay_naming_another_queue_is_refused_and_that_queues_task_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 19.2: a task on orders claiming to replay payments' task would take its key.
    store, calls, sink = InMemoryStore(), [], RecordingSink()
    app = create_app(lambda task: calls.append(task.name) or None, store=store, dead_letter=sink)
    test = app.test_client()
    forged = {**replay_of("payments/order-42", "evil"), "X-CloudTasks-QueueName": "orders"}
    caplog.set_level(logging.ERROR, logger="handler.tasks")
    assert post(test, {}, forged).json == {"status": "rejected"}
    assert post(test, {}, {**forged, "X-CloudTasks-TaskRetryCount": "1"}).json == {
        "status": "duplicate"
    }
    real = {**delivery("order-42"), "X-CloudTasks-QueueName": "payments"}
    assert post(test, {}, real).json == {"status": "done"}
    assert calls == ["order-42"]
    [(name, reason)] = sink.written
    assert name == "evil" and "names queue 'payments', not this task's queue 'orders'" in reason
    assert any(
        isinstance(r.msg, dict) and r.msg.get("message") == "replay refused" for r in caplog.records
    )


def test_a_replay_after_its_queue_was_renamed_is_refused_and_its_own_replay_then_runs() -> None:
    # The pipeline's queue was replaced (auto-named) between the dead letter and its replay:
    # the replay is refused and dead-lettered on the new queue; replaying that one runs it
    # (keyed on the new queue: the old queue's record can no longer make it a duplicate).
    store, calls = InMemoryStore(), []
    test = last_attempt_app(store, calls)
    assert store.claim("orders-1a2b3c/t") is Claim.ACQUIRED
    store.complete("orders-1a2b3c/t", dead_lettered=True)
    replayed = {**replay_of("orders-1a2b3c/t", "replay-1"), "X-CloudTasks-QueueName": "orders-9z"}
    assert post(test, {}, replayed).json == {"status": "rejected"}
    again = {**replay_of("orders-9z/replay-1", "replay-2"), "X-CloudTasks-QueueName": "orders-9z"}
    assert post(test, {}, again).json == {"status": "done"}
    assert calls == ["replay-2"]


def test_a_bare_replay_name_is_on_the_delivering_queue() -> None:
    store = InMemoryStore()
    test = last_attempt_app(store, [])
    assert store.claim("orders/t") is Claim.ACQUIRED
    store.complete("orders/t", dead_lettered=True)
    assert post(test, {}, replay_of("t", "replay-1")).json == {"status": "done"}
    assert store.claim("orders/t", replay=True) is Claim.DONE


def test_a_replay_of_a_task_that_finished_after_all_is_a_duplicate() -> None:
    # The last attempt dead-lettered it while another delivery held it; that one finished.
    store, calls = InMemoryStore(), []
    test = last_attempt_app(store, calls)
    assert store.claim("orders/t") is Claim.ACQUIRED
    store.complete("orders/t")
    assert post(test, {}, replay_of("t", "replay-1")).json == {"status": "duplicate"}
    assert calls == []


def test_a_dead_letter_never_overwrites_a_processed_record() -> None:
    store = InMemoryStore()
    assert store.claim("orders/t") is Claim.ACQUIRED
    store.complete("orders/t")
    store.complete("orders/t", dead_lettered=True)  # a lapsed holder failing late
    assert store.claim("orders/t", replay=True) is Claim.DONE
    assert store.claim("orders/u") is Claim.ACQUIRED
    store.complete("orders/u", dead_lettered=True)
    assert store.claim("orders/u") is Claim.DONE
    assert store.claim("orders/u", replay=True) is Claim.ACQUIRED


def test_a_replay_that_fails_hands_back_and_its_retry_runs_it() -> None:
    store, sink = InMemoryStore(), RecordingSink()
    app = create_app(example.process, store=store, dead_letter=sink, max_attempts=3)
    test = app.test_client()
    assert post(test, {"reject": True}, delivery("t")).json == {"status": "rejected"}
    failing = post(test, {"failTimes": 1}, replay_of("t", "replay-1", retry=0))
    assert (failing.status_code, failing.json) == (500, {"status": "failed"})
    assert post(test, {"failTimes": 1}, replay_of("t", "replay-1", retry=1)).json == {
        "status": "done"
    }
    assert post(test, {}, delivery("t", retry=2)).json == {"status": "duplicate"}


@pytest.mark.parametrize("result", [True, 1, "ok", [1, 2], object()])
def test_a_result_that_is_not_a_mapping_is_done_once_and_logged(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 19.5: `return True` gave a raw HTML 500 on every attempt and ran the task again.
    calls: list[str] = []

    def process(task: TaskRequest) -> object:
        calls.append(task.name)
        return result

    caplog.set_level(logging.INFO, logger="handler.tasks")
    test = create_app(process, dead_letter=RecordingSink(), max_attempts=3).test_client()  # pyright: ignore[reportArgumentType]
    first = post(test, {}, delivery("t"))
    assert (first.status_code, first.json) == (200, {"status": "done"})
    assert post(test, {}, delivery("t", retry=1)).json == {"status": "duplicate"}
    assert calls == ["t"]
    [line] = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("status") == "done"
    ]
    assert line["result"] is None
    assert line["resultIgnored"] == f"the processor returned {type(result).__name__}, not a mapping"


def test_a_json_number_python_cannot_read_is_rejected_once() -> None:
    # Issue 19.10: a 5,000-digit integer is valid JSON that json.loads refuses (int limit).
    calls: list[str] = []
    sink = RecordingSink()
    test = client(lambda task: calls.append(task.name) or None, sink)
    headers = {**delivery("t"), "Content-Type": "application/json"}
    body = b'{"n": ' + b"7" * 5000 + b"}"
    first = test.post("/", data=body, headers=headers)
    assert (first.status_code, first.json) == (200, {"status": "rejected"})
    again = test.post("/", data=body, headers={**headers, "X-CloudTasks-TaskRetryCount": "1"})
    assert (again.status_code, again.json) == (200, {"status": "duplicate"})
    assert calls == [] and len(sink.written) == 1
    assert "cannot read" in sink.written[0][1]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/orders?tenant=a", "/orders"),
        ("/x%3Fy", "/x?y"),
        ("/a%2Fb/c?q=%20&r", "/a/b/c"),
        ("/", "/"),
    ],
)
def test_the_dead_letter_keeps_the_request_target_exactly_as_it_arrived(
    target: str, path: str
) -> None:
    # Issue 19.9: the replay got Flask's decoded path without its query string.
    seen: list[TaskRequest] = []

    def reject(task: TaskRequest) -> None:
        seen.append(task)
        raise PermanentTaskError("no")

    letters: list[DeadLetter] = []

    class Keeping:
        def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
            letters.append(DeadLetter.of(task, reason))

    test = create_app(reject, dead_letter=Keeping()).test_client()
    response = test.post(target, data=b"{}", headers=delivery("t"), content_type="application/json")
    assert response.json == {"status": "rejected"}
    [letter] = letters
    assert letter.attributes["path"] == target
    assert (seen[0].path, seen[0].target) == (path, target)


def test_the_request_target_comes_from_the_raw_uri_whatever_the_server() -> None:
    assert request_target({"RAW_URI": "/x%3Fy?a=%20"}) == "/x%3Fy?a=%20"
    assert request_target({"REQUEST_URI": "/o?t=a"}) == "/o?t=a"
    assert request_target({"RAW_URI": "http://h:8/p%20q?z"}) == "/p%20q?z"
    assert request_target({"PATH_INFO": "/a b", "QUERY_STRING": "x=1"}) == "/a%20b?x=1"


class FirstAttemptStore(InMemoryStore):
    """In memory, but knows each task's first attempt, as the Firestore record does."""

    def __init__(self, first: datetime | None) -> None:
        super().__init__()
        self.first = first

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        return self.first


@pytest.mark.parametrize(
    ("attempts", "duration", "retry", "age_s", "last"),
    [
        # maxAttempts 5, maxRetryDuration 600s: the fifth attempt is the last only once ten
        # minutes have passed since the first.
        (5, 600, 4, 60, False),
        (5, 600, 4, 700, True),
        (5, 600, 3, 700, False),
        # maxAttempts -1 with a duration: the last is the first attempt after the duration.
        (None, 600, 40, 60, False),
        (None, 600, 40, 700, True),
        # No duration: attempts alone.
        (5, None, 4, 0, True),
        (5, None, 3, 10_000, False),
        # Neither: never.
        (None, None, 1000, 10_000, False),
    ],
)
def test_the_last_attempt_is_cloud_tasks_rule_attempts_and_duration(
    attempts: int | None, duration: int | None, retry: int, age_s: float, last: bool
) -> None:
    # Issue 19.3: RetryConfig ends a task only when both limits are reached.
    from datetime import UTC

    store = FirstAttemptStore(datetime.now(UTC) - timedelta(seconds=age_s))
    sink = RecordingSink()
    app = create_app(
        example.process,
        store=store,
        dead_letter=sink,
        max_attempts=attempts,
        max_retry_duration=None if duration is None else timedelta(seconds=duration),
        dispatch_deadline=timedelta(seconds=30),
    )
    response = post(app.test_client(), {"failAlways": True}, delivery("t", retry=retry))
    expected = (200, "dead_lettered") if last else (500, "failed")
    assert (response.status_code, (response.json or {}).get("status")) == expected
    assert len(sink.written) == (1 if last else 0)


def test_an_unknown_first_attempt_errs_toward_dead_lettering() -> None:
    # The in-memory store (and a lost Firestore record) can't say when the task began.
    sink = RecordingSink()
    app = create_app(
        example.process,
        dead_letter=sink,
        max_attempts=5,
        max_retry_duration=timedelta(seconds=600),
    )
    test = app.test_client()
    assert post(test, {"failAlways": True}, delivery("t", retry=3)).status_code == 500
    assert post(test, {"failAlways": True}, delivery("t", retry=4)).json == {
        "status": "dead_lettered"
    }
