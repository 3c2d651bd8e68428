"""One instant is one tick, and only a schedule's own ticks become tasks (handler/ticks.py,
through Flask's test client with a recording task creator); the local loop retries a tick
the handler did not take, as Cloud Scheduler does (local/schedules.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient
from google.cloud import tasks_v2

from handler.tick_wire import JOB_HEADER, QUEUE_HEADER, SCHEDULE_TIME_HEADER, tick_task_id
from handler.ticks import register_ticks
from local import schedules
from local.stack_config import read_stack
from tests.app.helpers import wait_for
from tests.app.test_local_schedules import STACK

pytestmark = pytest.mark.timeout(60)

QUEUE = "projects/p/locations/us-central1/queues/orders"
JOB = "projects/p/locations/us-central1/jobs/orders_nightly"


class Creator:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.created: list[tuple[str, tasks_v2.Task]] = []

    def create_task(self, *, parent: str, task: tasks_v2.Task) -> tasks_v2.Task:
        self.names.append(task.name)
        self.created.append((parent, task))
        return task


def ticking(creator: Creator) -> FlaskClient:
    app = Flask("ticks")

    def fallback(path: str) -> tuple[Response, int]:
        return jsonify(status="task"), 200

    register_ticks(
        app, fallback, tasks=lambda: creator, schedules={"orders_nightly": "/reports/nightly"}
    )
    return app.test_client()


def tick(test: FlaskClient, when: str, path: str = "/reports/nightly", job: str = JOB) -> str:
    headers = {JOB_HEADER: job, SCHEDULE_TIME_HEADER: when, QUEUE_HEADER: QUEUE}
    response = test.post("/_tick" + path, data=b"{}", headers=headers)
    return f"{response.status_code} {(response.json or {}).get('status')}"


def test_one_instant_written_three_ways_is_one_task() -> None:
    # Issue 27.7: the same instant as Z, .000Z and +01:00 gave three tasks and three runs.
    creator = Creator()
    test = ticking(creator)
    for when in ("2026-12-03T03:00:00Z", "2026-12-03T03:00:00.000Z", "2026-12-03T04:00:00+01:00"):
        assert tick(test, when) == "200 ticked"
    assert len(creator.names) == 3 and len(set(creator.names)) == 1
    # Another instant is another task, to the microsecond.
    assert tick(test, "2026-12-03T03:00:00.5Z") == "200 ticked"
    assert len(set(creator.names)) == 2
    # The job named by its id alone is the same job.
    assert tick(test, "2026-12-03T03:00:00Z", job="orders_nightly") == "200 ticked"


@pytest.mark.parametrize("when", ["not-a-time", "2026-12-03", "2026-12-03T03:00:00", "1e9"])
def test_a_schedule_time_that_is_not_an_instant_is_refused(when: str) -> None:
    creator = Creator()
    assert tick(ticking(creator), when) == "400 not_a_tick"
    assert creator.names == []


@pytest.mark.parametrize(
    ("path", "job"),
    [
        ("/no/such/schedule", JOB),
        ("/reports/nightly", "projects/p/locations/us-central1/jobs/orders_other"),
        ("/reports/nightly", "orders_nightly-but-not-a-job-name"),
        ("/reports/nightly", "projects/p/locations/l/jobs/orders_nightly/x"),
    ],
)
def test_a_tick_that_is_no_schedules_is_refused(path: str, job: str) -> None:
    creator = Creator()
    assert tick(ticking(creator), "2026-12-03T03:00:00Z", path, job) == "400 unknown_schedule"
    assert creator.names == []


def test_without_schedules_no_tick_becomes_a_task() -> None:
    creator = Creator()
    app = Flask("ticks")
    register_ticks(app, lambda path: (jsonify(status="task"), 200), tasks=lambda: creator)
    assert tick(app.test_client(), "2026-12-03T03:00:00Z") == "400 unknown_schedule"
    assert creator.names == []


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_tick_becomes_one_post_of_its_body_to_its_path_in_the_jobs_queue() -> None:
    creator = Creator()
    app = Flask("ticks")
    register_ticks(
        app,
        lambda path: (jsonify(status="task"), 200),
        tasks=lambda: creator,
        dispatch_deadline=timedelta(seconds=90.7),
        schedules={"orders_nightly": "/reports/nightly"},
    )
    headers = {
        JOB_HEADER: JOB,
        SCHEDULE_TIME_HEADER: "2026-12-03T04:00:00+01:00",
        QUEUE_HEADER: QUEUE,
        "Content-Type": "application/json",
        "traceparent": TRACEPARENT,
        "X-Other": "not carried",
    }
    response = app.test_client().post(
        "/_tick/reports/nightly", data=b'{"kind": "report"}', headers=headers
    )
    [(parent, task)] = creator.created
    name = f"{QUEUE}/tasks/{tick_task_id(JOB, '2026-12-03T03:00:00Z')}"
    assert (response.status_code, response.json) == (200, {"status": "ticked", "task": name})
    assert (parent, task.name) == (QUEUE, name)
    request = task.http_request
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert request.url == "http://localhost/reports/nightly"
    assert dict(request.headers) == {
        "Content-Type": "application/json",
        "traceparent": TRACEPARENT,
    }
    assert request.body == b'{"kind": "report"}'
    # Whole seconds of the queue's dispatch deadline.
    assert tasks_v2.Task.pb(task).dispatch_deadline.ToTimedelta() == timedelta(seconds=90)
    # Another job's tick at the same instant is another task.
    other = Creator()
    app = Flask("ticks")
    register_ticks(
        app,
        lambda path: (jsonify(status="task"), 200),
        tasks=lambda: other,
        schedules={"orders_weekly": "/reports/nightly"},
    )
    weekly = JOB.replace("orders_nightly", "orders_weekly")
    assert tick(app.test_client(), "2026-12-03T03:00:00Z", job=weekly) == "200 ticked"
    assert other.names == [f"{QUEUE}/tasks/{tick_task_id(weekly, '2026-12-03T03:00:00Z')}"]
    assert other.names != creator.names


def test_a_tick_without_a_body_type_or_trace_or_deadline_sets_none() -> None:
    creator = Creator()
    assert tick(ticking(creator), "2026-12-03T03:00:00Z") == "200 ticked"
    [(_, task)] = creator.created
    assert dict(task.http_request.headers) == {}
    assert task.http_request.body == b"{}"
    assert not tasks_v2.Task.pb(task).HasField("dispatch_deadline")


# --- the local loop retries ----------------------------------------------------------------


@pytest.fixture
def flaky_handler() -> Iterator[tuple[str, list[str]]]:
    """A handler on a free loopback port that answers 500 to the first two ticks."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers[SCHEDULE_TIME_HEADER])
            code, status = (500, "tick_failed") if len(seen) <= 2 else (200, "ticked")
            body = json.dumps({"status": status}).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def loop_until_taken(
    url: str, root: Path, clock: datetime, tick_now: list[tuple[str, str]] | None = None
) -> list[str]:
    """Runs the local schedule loop against the handler at URL, its clock stopped at CLOCK,
    until the handler has seen three ticks; returns what the loop said."""
    (root / "Pulumi.ticks.yaml").write_text(STACK)
    pipelines = read_stack(root, "ticks")
    stop, said = threading.Event(), []
    loop = threading.Thread(
        target=schedules.run,
        args=({p.name: url for p in pipelines}, pipelines, stop, said.append, lambda: clock),
        kwargs={"tick_now": tick_now},
    )
    loop.start()
    try:
        wait_for(lambda: len(said) >= 3 or None, "the tick to be retried until answered", 10)
    finally:
        stop.set()
        loop.join(10)
    return said


def test_the_local_loop_retries_a_failed_tick(
    flaky_handler: tuple[str, list[str]], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 27.7: under `make local` a tick the handler failed was never sent again.
    url, seen = flaky_handler
    monkeypatch.setattr(schedules, "RETRY_BACKOFF_S", (0.05, 0.2))
    just_before = datetime(2026, 12, 3, 14, 59, 59, 900_000, tzinfo=UTC)
    said = loop_until_taken(url, root, just_before)
    assert seen == ["2026-12-03T15:00:00Z"] * 3
    assert said[-1] == "tick orders.every-minute at 2026-12-03T15:00:00Z: ticked"


def test_a_tick_fired_now_is_retried_until_taken(
    flaky_handler: tuple[str, list[str]], root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make local --tick-now` sent its tick once: a handler still starting lost it.
    url, seen = flaky_handler
    monkeypatch.setattr(schedules, "RETRY_BACKOFF_S", (0.05, 0.2))
    # Half a minute before the every-minute schedule's next run: only the fired tick is due.
    clock = datetime(2026, 12, 3, 14, 59, 30, 250_000, tzinfo=UTC)
    said = loop_until_taken(url, root, clock, tick_now=[("orders", "every-minute")])
    assert seen == ["2026-12-03T14:59:30Z"] * 3
    assert said[-1] == "tick orders.every-minute at 2026-12-03T14:59:30Z: ticked"
    assert [line.endswith("(retried in 0.05 s)") for line in said[:1]] == [True]
