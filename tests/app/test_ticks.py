"""Schedule ticks on the Cloud Tasks emulator: a tick becomes one task of the pipeline's
queue, processed through the normal path, and a tick delivered twice runs once.

The emulator accepts a second task of the same name (Cloud Tasks answers ALREADY_EXISTS),
so here the second delivery's task does reach the handler: its claim on the task's name is
what keeps it from running twice, the same guard that holds in the cloud once Cloud Tasks'
name de-duplication window has passed.
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.tick_wire import JOB_HEADER, QUEUE_HEADER, SCHEDULE_TIME_HEADER, tick_task_id
from local.processes import Child, start_handler
from tests.app.helpers import HANDLER_PROJECT, MAX_ATTEMPTS, task_lines, wait_for

pytestmark = pytest.mark.timeout(120)
JOB = "projects/test-project/locations/us-central1/jobs/orders_nightly-report"


@pytest.fixture(scope="module")
def tick_handler(emulator: Child, logs_dir: Path) -> Iterator[Child]:
    """A handler that creates ticks' tasks on the emulator (the runtime account's role)."""
    child = start_handler(
        logs_dir / "tick-handler.log",
        env={
            "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "TASKS_EMULATOR_HOST": emulator.address,
            "GOOGLE_CLOUD_PROJECT": HANDLER_PROJECT,
            "TASK_SCHEDULES": json.dumps({"orders_nightly-report": "/reports"}),
        },
    )
    try:
        yield child
    finally:
        child.stop()
        assert child.process.poll() is not None


def deliver(handler: Child, queue: str, when: str, headers: dict[str, str] | None = None) -> dict:
    """One push of a tick as Cloud Scheduler sends it."""
    request = urllib.request.Request(
        f"http://{handler.address}/_tick/reports",
        data=json.dumps({"kind": "report"}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            JOB_HEADER: JOB,
            SCHEDULE_TIME_HEADER: when,
            QUEUE_HEADER: queue,
            **(headers or {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return {"code": response.status, **json.loads(response.read())}


def deliveries(handler: Child, task: str) -> list[dict[str, object]]:
    """The task's own log lines (its ticks' lines carry its name too)."""
    return [
        line for line in task_lines(handler, task) if not str(line["status"]).startswith("tick_")
    ]


def settled(handler: Child, task: str, count: int) -> list[dict[str, object]]:
    """The task's log lines once COUNT deliveries of it have been answered."""
    return wait_for(
        lambda: lines if len(lines := deliveries(handler, task)) >= count else None,
        f"{count} deliveries of {task}",
    )


def test_a_tick_delivered_twice_is_processed_once(tick_handler: Child, queue: str) -> None:
    when = "2026-12-03T03:00:00Z"
    name = f"{queue}/tasks/{tick_task_id(JOB, when)}"
    first = deliver(tick_handler, queue, when)
    second = deliver(tick_handler, queue, when)
    assert (first["code"], first["status"], first["task"]) == (200, "ticked", name)
    # Cloud Tasks answers ALREADY_EXISTS ("duplicate"); the emulator creates it again.
    assert (second["code"], second["task"]) == (200, name)
    assert second["status"] in ("ticked", "duplicate")
    copies = 2 if second["status"] == "ticked" else 1
    settled(tick_handler, name, copies)
    time.sleep(1.0)  # any further delivery would show now
    lines = deliveries(tick_handler, name)
    ticks = [line["status"] for line in task_lines(tick_handler, name) if line not in lines]
    assert ticks == ["tick_ticked", f"tick_{second['status']}"]
    assert sorted(str(line["status"]) for line in lines) == sorted(
        ["done", *["duplicate"] * (copies - 1)]
    )
    [done] = [line for line in lines if line["status"] == "done"]
    assert done["path"] == "/reports"
    assert done["queue"] == queue.rsplit("/", 1)[-1]
    assert done["result"] == {"echo": {"kind": "report"}, "path": "/reports", "headers": {}}


def test_a_ticks_task_joins_the_trace_of_the_tick_request(tick_handler: Child, queue: str) -> None:
    """Cloud Run's front end gives the scheduler's push a traceparent: the tick's task carries
    it on, so the task's delivery is logged under the same trace. A malformed one is dropped."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = deliver(
        tick_handler, queue, "2026-12-05T03:00:00Z",
        {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )  # fmt: skip
    [done] = settled(tick_handler, traced["task"], 1)
    assert done["logging.googleapis.com/trace"] == f"projects/{HANDLER_PROJECT}/traces/{trace_id}"
    malformed = deliver(
        tick_handler, queue, "2026-12-06T03:00:00Z", {"traceparent": f"00-{trace_id}-bad-01"}
    )
    [other] = settled(tick_handler, malformed["task"], 1)
    assert trace_id not in str(other["logging.googleapis.com/trace"])


def test_two_ticks_of_one_job_are_two_tasks(tick_handler: Child, queue: str) -> None:
    names = []
    for when in ("2026-12-03T03:00:00Z", "2026-12-04T03:00:00Z"):
        answer = deliver(tick_handler, queue, when)
        assert (answer["code"], answer["status"]) == (200, "ticked")
        names.append(answer["task"])
    assert len(set(names)) == 2
    for name in names:
        assert [line["status"] for line in settled(tick_handler, name, 1)] == ["done"]


def test_a_request_without_the_schedulers_headers_is_not_a_tick(
    tick_handler: Child, queue: str
) -> None:
    request = urllib.request.Request(
        f"http://{tick_handler.address}/_tick/reports", data=b"{}", method="POST",
        headers={QUEUE_HEADER: queue},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400


def test_a_tick_whose_task_cant_be_created_is_retried(tick_handler: Child) -> None:
    """No such queue on the emulator: 500, so Cloud Scheduler tries the tick again."""
    missing = "projects/test-project/locations/us-central1/queues/no-such-queue"
    with pytest.raises(urllib.error.HTTPError) as caught:
        deliver(tick_handler, missing, "2026-12-03T03:00:00Z")
    assert caught.value.code == 500
