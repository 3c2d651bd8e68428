"""The handler's contract with Cloud Tasks, through Flask's test client (no server)."""

import json
import logging
import threading
from collections.abc import Mapping

import pytest
from flask.testing import FlaskClient

from handler import example
from handler.app import Processor, create_app
from handler.store import Claim, InMemoryStore
from handler.task import PermanentTaskError, TaskRequest


class RecordingSink:
    def __init__(self) -> None:
        self.written: list[tuple[str, str]] = []

    def write(self, task: TaskRequest, reason: str) -> None:
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
    assert (last.status_code, last.json) == (500, {"status": "dead_lettered"})
    assert [name for name, _ in sink.written] == ["t"]
    assert "last allowed attempt" in sink.written[0][1]


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
