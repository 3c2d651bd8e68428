"""Proxy mode through Flask's test client, in front of a stub app on 127.0.0.1 (a thread of
this process): what the app receives, and what each of its answers becomes."""

import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask.testing import FlaskClient

from handler import settings
from handler.app import create_app
from handler.context import TaskContext, serving
from handler.proxy import AppFailed, AppProxy, Forward, app_url, verdict
from handler.store import Claim, InMemoryStore
from handler.task import PermanentTaskError, TaskRequest
from tests.app.helpers import wait_for

# A forward that is never answered would hold a test for the 590 s a request waits with no
# deadline known: none of these takes more than a few seconds.
pytestmark = pytest.mark.timeout(60)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int]


@dataclass
class StubApp:
    """Answers every request with `status`; while `hold` is an unset event, only once it is
    set, or, with `drop`, closes the connection without an answer; with `close_idle`, closes
    it after answering, without saying so (as an app's idle timeout does)."""

    port: int = 0
    status: int = 200
    answer: bytes = b'{"ok": true}'
    hold: threading.Event | None = None
    drop: bool = False
    close_idle: bool = False
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stub() -> Iterator[StubApp]:
    app = StubApp()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            client = (self.client_address[0], self.client_address[1])
            app.seen.append(Seen(self.command, self.path, headers, body, client))
            if app.hold is not None:
                app.hold.wait(120)
            if app.drop:
                self.close_connection = True
                return
            try:
                self.send_response(app.status)
                self.send_header("content-length", str(len(app.answer)))
                self.end_headers()
                self.wfile.write(app.answer)
            except (BrokenPipeError, ConnectionResetError):
                # The proxy gave up on it (a test's hold cap): no traceback from this thread
                # while the test session goes on.
                self.close_connection = True
                return
            self.close_connection = app.close_idle

        do_POST = do_PUT = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    app.port = server.server_address[1]
    # A short poll: shutdown() waits for it at every teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app
    finally:
        if app.hold is not None:
            app.hold.set()
        server.shutdown()
        server.server_close()


class RecordingSink:
    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        self.written.append((task.name, reason))


def delivery(retry: int = 0, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "X-CloudTasks-QueueName": "orders",
        "X-CloudTasks-TaskName": "task-1",
        "X-CloudTasks-TaskRetryCount": str(retry),
        "X-CloudTasks-TaskExecutionCount": str(retry),
        **(extra or {}),
    }


def handler_for(
    url: str,
    sink: RecordingSink,
    deadline: timedelta | None = None,
    attempts: int = 3,
    store: InMemoryStore | None = None,
    workers: int = 4,
) -> FlaskClient:
    app = create_app(
        AppProxy(url, workers=workers),
        store=store,
        dead_letter=sink,
        max_attempts=attempts,
        dispatch_deadline=deadline,
    )
    return app.test_client()


def test_the_app_gets_the_request_as_received_with_the_tasks_key_generation_and_trace(
    stub: StubApp,
) -> None:
    headers = delivery(
        extra={
            "X-Tenant": "acme",
            "Content-Type": "application/json",
            "traceparent": TRACEPARENT,
            # A caller's values for the handler's own headers are replaced, never passed on.
            "X-Task-Idempotency-Id": "forged/key",
            "X-Task-Fencing-Generation": "999999",
            # Hop-by-hop: Connection and what it names describe the hop, not the request.
            "Connection": "keep-alive, X-Hop-Only",
            "X-Hop-Only": "1",
            "Keep-Alive": "timeout=5",
        }
    )
    body = b'{"order": 7}'
    response = handler_for(stub.url, RecordingSink()).put(
        "/orders/a%2Fb?x=1&y=%C3%A9", data=body, headers=headers
    )
    assert (response.status_code, response.json) == (200, {"status": "done"})
    [seen] = stub.seen
    assert (seen.method, seen.target, seen.body) == ("PUT", "/orders/a%2Fb?x=1&y=%C3%A9", body)
    assert seen.headers["x-tenant"] == "acme"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-cloudtasks-taskname"] == "task-1"
    assert seen.headers["x-cloudtasks-queuename"] == "orders"
    assert seen.headers["x-task-idempotency-id"] == "orders/task-1"
    assert seen.headers["x-task-fencing-generation"] == "1"  # the store's first claim
    assert seen.headers["content-length"] == str(len(body))
    assert seen.headers["host"] == f"127.0.0.1:{stub.port}"
    assert not {"x-hop-only", "keep-alive"} & set(seen.headers)
    version, trace_id, span_id, _flags = seen.headers["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)  # the task's trace continues...
    assert span_id != "00f067aa0ba902b7"  # ...from the handler's own span


def test_a_redelivery_gets_the_same_key_and_a_greater_generation(stub: StubApp) -> None:
    stub.status = 503
    test = handler_for(stub.url, RecordingSink())
    assert test.post("/work", data=b"x", headers=delivery(retry=0)).status_code == 500
    stub.status = 200
    assert test.post("/work", data=b"x", headers=delivery(retry=1)).status_code == 200
    first, second = stub.seen
    assert first.headers["x-task-idempotency-id"] == second.headers["x-task-idempotency-id"]
    assert int(second.headers["x-task-fencing-generation"]) > int(
        first.headers["x-task-fencing-generation"]
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_done(status: int) -> None:
    assert verdict(status) == "done"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 415, 422, 499])
def test_4xx_but_the_repeatable_ones_is_permanent(status: int) -> None:
    assert verdict(status) == "permanent"


@pytest.mark.parametrize(
    "status", [408, 409, 423, 425, 429, 500, 502, 503, 504, 599, 300, 301, 302, 304, 307, 100]
)
def test_5xx_3xx_and_the_repeatable_4xx_are_retried(status: int) -> None:
    assert verdict(status) == "retry"


def test_a_permanent_answer_is_rejected_and_dead_lettered_with_the_apps_reason(
    stub: StubApp,
) -> None:
    stub.status, stub.answer = 422, b'{"error": "unknown sku"}'
    sink = RecordingSink()
    response = handler_for(stub.url, sink).post("/work", data=b"{}", headers=delivery())
    assert (response.status_code, response.json) == (200, {"status": "rejected"})
    [(name, reason)] = sink.written
    assert name == "task-1"
    assert "422" in reason and "unknown sku" in reason


@pytest.mark.parametrize("status", [503, 429, 408])
def test_a_retryable_answer_fails_the_attempt_and_nothing_is_dead_lettered(
    stub: StubApp, status: int
) -> None:
    stub.status = status
    sink = RecordingSink()
    response = handler_for(stub.url, sink).post("/work", data=b"{}", headers=delivery())
    assert (response.status_code, response.json) == (500, {"status": "failed"})
    assert sink.written == []


def test_a_retryable_answer_on_the_last_attempt_is_dead_lettered(stub: StubApp) -> None:
    stub.status = 503
    sink = RecordingSink()
    response = handler_for(stub.url, sink, attempts=3).post(
        "/work", data=b"{}", headers=delivery(retry=2)
    )
    assert (response.status_code, response.json) == (200, {"status": "dead_lettered"})
    [(_, reason)] = sink.written
    assert "503" in reason


def test_a_refused_connection_fails_the_attempt() -> None:
    # A port bound but never listened on, held for the test: every connection is refused.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        sink = RecordingSink()
        response = handler_for(url, sink).post("/work", data=b"{}", headers=delivery())
    assert (response.status_code, response.json) == (500, {"status": "failed"})
    assert sink.written == []


# A 3 s dispatch deadline: a 2 s answer budget, of which the request waits 1.5 s for the app.
# The app holds its answer until the test lets it go: the request has stopped waiting by then
# whatever the machine's load, so nothing below depends on timing.
SHORT = timedelta(seconds=3)


def settled_lines(caplog: pytest.LogCaptureFixture, count: int = 1) -> list[dict[str, object]]:
    """The task lines of held tasks settled by the forward's worker, once `count` are logged."""

    def probe() -> list[dict[str, object]] | None:
        lines = [
            r.msg
            for r in caplog.records
            if r.name == "handler.tasks" and isinstance(r.msg, dict) and r.msg.get("heldOver")
        ]
        return lines if len(lines) >= count else None

    return wait_for(probe, "the app's answer to be settled by the forward's worker")


def test_a_hung_app_is_answered_for_in_time_and_keeps_its_claim(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub.hold = threading.Event()
    sink, store = RecordingSink(), InMemoryStore()
    test = handler_for(stub.url, sink, deadline=SHORT, store=store)
    response = test.post("/work", data=b"{}", headers=delivery())
    # Answered while Cloud Tasks listens, and the claim is not released: the task's retries
    # find it held and never reach the app while it works.
    assert (response.status_code, response.json) == (409, {"status": "in_progress"})
    again = test.post("/work", data=b"{}", headers=delivery(retry=1))
    assert (again.status_code, again.json) == (409, {"status": "in_progress"})
    assert len(stub.seen) == 1
    stub.hold.set()  # the app answers 200, long after the request
    [line] = settled_lines(caplog)
    assert (line["status"], line["taskName"]) == ("done", "task-1")
    # Settled as if it had answered in time: done, once; later deliveries are duplicates.
    late = test.post("/work", data=b"{}", headers=delivery(retry=2))
    assert (late.status_code, late.json) == (200, {"status": "duplicate"})
    assert len(stub.seen) == 1 and sink.written == []


def test_a_held_task_the_app_fails_is_released_for_the_next_attempt(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub.hold, stub.status = threading.Event(), 503
    sink, store = RecordingSink(), InMemoryStore()
    test = handler_for(stub.url, sink, deadline=SHORT, store=store)
    assert test.post("/work", data=b"{}", headers=delivery()).status_code == 409
    stub.hold.set()
    [line] = settled_lines(caplog)
    assert line["status"] == "failed" and "503" in str(line["error"])
    # Released (attempt 1 of 3: Cloud Tasks retries): the next attempt claims it anew.
    stub.hold, stub.status = None, 200
    retried = test.post("/work", data=b"{}", headers=delivery(retry=1))
    assert (retried.status_code, retried.json) == (200, {"status": "done"})
    first, second = stub.seen
    assert (
        first.headers["x-task-fencing-generation"],
        second.headers["x-task-fencing-generation"],
    ) == ("1", "2")
    assert sink.written == []


def test_a_held_task_whose_connection_breaks_is_released(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub.hold, stub.drop = threading.Event(), True
    store = InMemoryStore()
    test = handler_for(stub.url, RecordingSink(), deadline=SHORT, store=store)
    assert test.post("/work", data=b"{}", headers=delivery()).status_code == 409
    stub.hold.set()
    [line] = settled_lines(caplog)
    assert line["status"] == "failed" and "connection broke" in str(line["error"])
    assert store.claim("orders/task-1") is Claim.ACQUIRED  # released


def test_a_held_last_attempt_the_app_fails_is_dead_lettered(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    # The last attempt's 409 ends the task with Cloud Tasks: nobody else would finish it.
    caplog.set_level(logging.INFO)
    stub.hold, stub.status = threading.Event(), 503
    sink, store = RecordingSink(), InMemoryStore()
    test = handler_for(stub.url, sink, deadline=SHORT, store=store, attempts=3)
    assert test.post("/work", data=b"{}", headers=delivery(retry=2)).status_code == 409
    assert sink.written == []  # not while the app may still finish it
    stub.hold.set()
    [line] = settled_lines(caplog)
    assert line["status"] == "dead_lettered"
    [(name, reason)] = sink.written
    assert name == "task-1" and "last allowed attempt" in reason and "503" in reason
    assert store.claim("orders/task-1") is Claim.DONE  # settled: no later delivery runs it


def test_a_held_task_the_app_rejects_is_dead_lettered(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub.hold, stub.status, stub.answer = threading.Event(), 422, b"unknown sku"
    sink = RecordingSink()
    test = handler_for(stub.url, sink, deadline=SHORT)
    assert test.post("/work", data=b"{}", headers=delivery()).status_code == 409
    stub.hold.set()
    [line] = settled_lines(caplog)
    assert line["status"] == "rejected"
    [(_, reason)] = sink.written
    assert "422" in reason and "unknown sku" in reason


def test_with_every_worker_held_a_new_task_fails_without_reaching_the_app(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub.hold = threading.Event()
    store = InMemoryStore()
    test = handler_for(stub.url, RecordingSink(), deadline=SHORT, store=store, workers=1)
    assert test.post("/a", data=b"1", headers=delivery()).status_code == 409
    other = delivery(extra={"X-CloudTasks-TaskName": "task-2"})
    response = test.post("/b", data=b"2", headers=other)
    assert (response.status_code, response.json) == (500, {"status": "failed"})
    assert [seen.target for seen in stub.seen] == ["/a"]
    assert store.claim("orders/task-2") is Claim.ACQUIRED  # released, never sent
    [line] = [
        r.msg
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg.get("taskName") == "task-2" and "error" in r.msg
    ]
    assert re.fullmatch(
        r"AppFailed\('no forward worker free within \d+\.\d s \(all 1 are waiting on the"
        r" app\): the app was not called'\)",
        str(line["error"]),
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:8081",
        "http://example.com:8081",
        "http://10.0.0.1:8081",
        "http://localhost:8081/app",
        "http://localhost:8081?x=1",
        "http://user:pw@localhost:8081",
        "http://localhost:0",
        "http://localhost:70000",
        "localhost:8081",
    ],
)
def test_an_app_url_off_the_loopback_or_with_a_path_is_refused_naming_the_variable(
    url: str,
) -> None:
    with pytest.raises(settings.SettingsError, match=r"^TASK_APP_URL: .*no path"):
        settings.processor({"TASK_APP_URL": url})


@pytest.mark.parametrize("url", ["http://localhost:8081", "http://127.0.0.1:9000"])
def test_a_loopback_app_url_makes_the_app_the_processor(url: str) -> None:
    proxy = settings.processor({"TASK_APP_URL": url, "TASK_CONCURRENCY": "12"})
    assert isinstance(proxy, AppProxy) and proxy.url == url


def test_an_app_url_and_a_processor_together_are_refused_naming_both() -> None:
    with pytest.raises(settings.SettingsError, match="TASK_APP_URL and TASK_PROCESSOR"):
        settings.processor(
            {"TASK_APP_URL": "http://localhost:8081", "TASK_PROCESSOR": "handler.example:process"}
        )


def test_the_handler_json_answer_is_the_handlers_not_the_apps(stub: StubApp) -> None:
    stub.answer = b'{"app": "says hi"}'
    response = handler_for(stub.url, RecordingSink()).post("/w", data=b"{}", headers=delivery())
    assert json.loads(response.data) == {"status": "done"}


def request_to(target: str, answer_by: float | None = None) -> TaskRequest:
    return TaskRequest(
        name="task-1",
        queue="orders",
        retry_count=0,
        execution_count=0,
        eta=None,
        path="/work",
        headers={},
        body=b"",
        target=target,
        answer_by=answer_by,
    )


def test_with_too_little_of_the_budget_left_the_app_is_not_called(stub: StubApp) -> None:
    # Less than the reserve kept to answer.
    task = request_to("/work", answer_by=time.monotonic() + 0.3)
    with serving(TaskContext("orders/task-1", 1)), pytest.raises(AppFailed, match="too little"):
        AppProxy(stub.url, workers=1)(task)
    assert stub.seen == []


def test_a_long_answer_is_cut_and_the_next_task_still_gets_through(stub: StubApp) -> None:
    stub.status, stub.answer = 400, b"x" * 100_000
    sink = RecordingSink()
    test = handler_for(stub.url, sink)
    assert test.post("/a", data=b"1", headers=delivery()).json == {"status": "rejected"}
    [(_, reason)] = sink.written
    assert reason.endswith("x" * 1024) and len(reason) < 1200
    stub.status, stub.answer = 200, b"ok"
    headers = delivery(extra={"X-CloudTasks-TaskName": "task-2"})
    assert test.post("/b", data=b"2", headers=headers).json == {"status": "done"}
    assert [seen.target for seen in stub.seen] == ["/a", "/b"]


# Lower-case escapes, an escaped slash, `+`, and sub-delims RFC 3986 allows unescaped: an app
# that signs or hashes its URL must see these bytes, not an equivalent URI.
VERBATIM = "/a%2fb/~u;v=1,w!$'()*@:?x=%e2%82%ac&y=a+b&z=/?:@"


def test_the_target_reaches_the_app_byte_for_byte(stub: StubApp) -> None:
    response = handler_for(stub.url, RecordingSink()).post(VERBATIM, headers=delivery())
    assert response.json == {"status": "done"}
    [seen] = stub.seen
    assert seen.target == VERBATIM


@pytest.mark.parametrize("target", ["/a b", "/a\tb", "/x\r\nX-Injected: 1", "/caf\u00e9"])
def test_a_target_no_request_line_may_hold_is_refused_before_anything_is_sent(
    stub: StubApp, target: str
) -> None:
    proxy = AppProxy(stub.url, workers=1)
    with (
        serving(TaskContext("orders/task-1", 1)),
        pytest.raises(PermanentTaskError, match="can't be sent to the app as received"),
    ):
        proxy(request_to(target))
    assert stub.seen == []
    # The worker's connection is still good for the next task.
    with serving(TaskContext("orders/task-2", 1)):
        assert proxy(request_to("/ok")) == {"appStatus": 200}
    assert [seen.target for seen in stub.seen] == ["/ok"]


def test_the_request_waits_for_the_app_all_but_a_reserve_of_its_budget(
    stub: StubApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reserve settles the claim and answers Cloud Tasks in time: a tenth of the time
    # left, at least 0.5 s and at most 10 s. With no budget known, Cloud Tasks' default
    # dispatch deadline, 600 s.
    waits: list[float] = []
    wait = Forward.wait

    def recorded(forward: Forward, timeout: float) -> bool:
        waits.append(timeout)
        return wait(forward, timeout)

    monkeypatch.setattr(Forward, "wait", recorded)
    proxy = AppProxy(stub.url, workers=1)
    with serving(TaskContext("orders/task-1", 1)):
        for left in (None, 200.0, 50.0, 3.0):
            answer_by = None if left is None else time.monotonic() + left
            assert proxy(request_to("/ok", answer_by)) == {"appStatus": 200}
    assert waits[0] == 590.0
    expected = [190.0, 45.0, 2.5]  # 200 - 10, 50 - 5, 3 - 0.5
    assert all(e - 1 < w <= e for w, e in zip(waits[1:], expected, strict=True)), waits


def test_the_app_gets_no_header_the_delivery_did_not_carry(stub: StubApp) -> None:
    headers = delivery(extra={"User-Agent": "Google-Cloud-Tasks"})
    response = handler_for(stub.url, RecordingSink()).post("/w", data=b"{}", headers=headers)
    assert response.json == {"status": "done"}
    [seen] = stub.seen
    assert seen.headers["user-agent"] == "Google-Cloud-Tasks"
    added = set(seen.headers) - {h.lower() for h in headers}
    # http.client's own: Host and the body's length; the handler's: the key, the generation
    # and the trace context. No Accept-Encoding the task never asked for.
    assert added == {
        "host",
        "content-length",
        "x-task-idempotency-id",
        "x-task-fencing-generation",
        "traceparent",
    }


def test_an_answer_that_is_not_utf_8_reaches_the_reason_with_replacement_characters(
    stub: StubApp,
) -> None:
    stub.status, stub.answer = 422, b"bad \xff sku"
    sink = RecordingSink()
    assert handler_for(stub.url, sink).post("/w", data=b"{}", headers=delivery()).json == {
        "status": "rejected"
    }
    assert sink.written == [("task-1", "the app answered 422 (permanent): bad \ufffd sku")]


def test_a_retryable_answer_s_reason_names_its_status_and_text(stub: StubApp) -> None:
    stub.status, stub.answer = 503, b"busy"
    sink = RecordingSink()
    response = handler_for(stub.url, sink, attempts=1).post("/w", data=b"{}", headers=delivery())
    assert response.json == {"status": "dead_lettered"}
    assert sink.written == [
        ("task-1", "failed on the last allowed attempt: AppFailed('the app answered 503: busy')")
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://localhost", ("localhost", 80)),
        ("http://127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("http://LOCALHOST:8081", ("localhost", 8081)),
    ],
)
def test_the_app_s_address_defaults_to_port_80(url: str, address: tuple[str, int]) -> None:
    assert app_url(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8081#top",
        "http://user@localhost:8081",
        "http://:pw@localhost:8081",
        "http://localhost:port",
    ],
)
def test_an_app_url_with_a_fragment_a_password_or_no_port_number_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"must be http://localhost\[:port\] or http://127"):
        app_url(url)


def test_a_forward_s_answer_is_returned_or_raised_as_a_processor_s() -> None:
    done = Forward(lambda: {"appStatus": 204})
    assert not done.wait(0)  # not run yet
    done.run()
    assert done.wait(0) and done.outcome() == {"appStatus": 204}

    def broken() -> Mapping[str, object]:
        raise AppFailed("connection reset")

    failed = Forward(broken)
    failed.run()
    with pytest.raises(AppFailed, match="connection reset"):
        failed.outcome()


def test_a_forward_held_over_moves_the_claim_to_its_worker_before_the_app_answers() -> None:
    answer = threading.Event()
    events: list[tuple[str, int]] = []

    def exchange() -> Mapping[str, object]:
        answer.wait(30)
        events.append(("answered", threading.get_ident()))
        return {"appStatus": 200}

    forward = Forward(exchange)
    worker = threading.Thread(target=forward.run)
    worker.start()
    try:
        held = forward.hold_over(
            lambda thread: events.append(("handed over", thread)),
            lambda: events.append(("settled", threading.get_ident())),
        )
    finally:
        answer.set()
        worker.join(30)
    assert held is True
    assert worker.ident is not None
    assert events == [
        ("handed over", worker.ident),
        ("answered", worker.ident),
        ("settled", worker.ident),
    ]


def test_a_forward_answered_before_it_is_held_over_is_left_to_the_request() -> None:
    forward = Forward(lambda: {"appStatus": 200})
    forward.run()
    handed: list[int] = []
    assert forward.hold_over(handed.append, lambda: handed.append(-1)) is False
    assert handed == [] and forward.outcome() == {"appStatus": 200}


def test_a_held_task_whose_settling_fails_is_said_so_on_the_worker(
    stub: StubApp, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever goes wrong once the request has answered (here the task's own line), the worker
    # says so, and lives on for the next forward.
    caplog.set_level(logging.INFO)
    stub.hold = threading.Event()

    class Refuse(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if isinstance(record.msg, dict) and record.msg.get("heldOver"):
                raise RuntimeError("log pipe broken")
            return True

    tasks, refuse = logging.getLogger("handler.tasks"), Refuse()
    tasks.addFilter(refuse)
    try:
        test = handler_for(stub.url, RecordingSink(), deadline=SHORT, workers=1)
        assert test.post("/work", data=b"{}", headers=delivery()).status_code == 409
        stub.hold.set()

        def said() -> list[object] | None:
            lines: list[object] = [
                r.msg for r in caplog.records if "held task not settled" in str(r.msg)
            ]
            return lines or None

        lines = wait_for(said, "the worker to say the held task was not settled")
    finally:
        tasks.removeFilter(refuse)
    assert lines == [
        {
            "message": "held task not settled",
            "taskName": "task-1",
            "error": "RuntimeError('log pipe broken')",
        }
    ]
    stub.hold = None
    other = delivery(extra={"X-CloudTasks-TaskName": "task-2"})
    assert test.post("/next", data=b"{}", headers=other).json == {"status": "done"}


def test_a_worker_keeps_its_connection_until_the_app_closes_it(stub: StubApp) -> None:
    proxy = AppProxy(stub.url, workers=1)
    with serving(TaskContext("orders/task-1", 1)):
        assert proxy(request_to("/1")) == {"appStatus": 200}
        assert proxy(request_to("/2")) == {"appStatus": 200}
        stub.close_idle = True
        assert proxy(request_to("/3")) == {"appStatus": 200}
        # The app's close reaches the worker's idle socket: wait until it is readable (EOF),
        # as it is when the next task comes after an app's idle timeout.
        sock = proxy._pool.submit(lambda: proxy._local.connection.sock).result(30)
        wait_for(lambda: select.select([sock], [], [], 0)[0] or None, "the app's close")
        stub.close_idle = False
        assert proxy(request_to("/4")) == {"appStatus": 200}
    clients = [seen.client for seen in stub.seen]
    assert clients[0] == clients[1] == clients[2] != clients[3]


def test_an_app_silent_past_the_hold_cap_is_taken_as_lost(
    stub: StubApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cloud Run's 60-minute cap on a request, shortened: each wait for the app ends there.
    monkeypatch.setattr("handler.proxy.HOLD_CAP_S", 0.2)
    stub.hold = threading.Event()  # answers only at the test's end
    proxy = AppProxy(stub.url, workers=1)
    with (
        serving(TaskContext("orders/task-1", 1)),
        pytest.raises(AppFailed, match=r"could not be reached or its connection broke: Timeout"),
    ):
        proxy(request_to("/slow"))
    assert [seen.target for seen in stub.seen] == ["/slow"]
