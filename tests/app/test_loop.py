"""The whole loop on loopback: client -> emulator -> handler, through the CLI and the library.

The emulator stands in for Cloud Tasks only where it is faithful: it dispatches HTTP tasks with
the X-CloudTasks headers, honours schedule_time and retries non-2xx. Nothing here relies on
what it fakes (no OIDC check, no rate limits, no retry config, memory-only state).
"""

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from google.cloud import tasks_v2

from components.durations import Duration
from local.processes import REPO, Child
from taskclient import TaskClient, TaskSpec, load_file, task_id
from tests.app.helpers import MAX_ATTEMPTS, task_lines, wait_for

pytestmark = pytest.mark.timeout(120)


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskclient", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )


def final_line(handler: Child, task_name: str, status: str = "done") -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        lines = [line for line in task_lines(handler, task_name) if line["status"] == status]
        return lines[-1] if lines else None

    return wait_for(probe, f"{task_name} to be {status}")


def test_cli_enqueue_delivers_payload_path_and_headers(
    emulator: Child, handler: Child, outputs_file: Path, queue: str
) -> None:
    result = cli(
        "enqueue", "--outputs", str(outputs_file), "--pipeline", "orders",
        "--emulator", emulator.address, "--data", '{"id": 1, "items": ["a"]}',
        "--path", "/orders/new", "--header", "X-Tenant: acme",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [name] = result.stdout.split()
    assert name.startswith(queue + "/tasks/")
    line = final_line(handler, name)
    assert line["queue"] == queue.rsplit("/", 1)[-1]
    assert (line["retryCount"], line["path"]) == (0, "/orders/new")
    assert line["result"] == {
        "echo": {"id": 1, "items": ["a"]},
        "path": "/orders/new",
        "headers": {"x-tenant": "acme"},
    }
    # No ETA: the emulator leaves it empty for immediate tasks (Cloud Tasks sends the creation
    # time); the scheduled-task test checks it.


def test_library_enqueue_and_a_failing_task_is_retried_until_it_succeeds(
    emulator: Child, handler: Child, outputs_file: Path
) -> None:
    with TaskClient(load_file(outputs_file), emulator=emulator.address) as client:
        result = client.enqueue("orders", TaskSpec(payload={"failTimes": 2}))
    assert result.created and result.attempts == 1
    line = final_line(handler, result.task_name)
    statuses = [
        (entry["retryCount"], entry["status"]) for entry in task_lines(handler, result.task_name)
    ]
    assert statuses == [(0, "failed"), (1, "failed"), (2, "done")]
    assert line["retryCount"] == 2


def test_a_task_failing_every_attempt_is_dead_lettered_on_the_last(
    emulator: Child, handler: Child, outputs_file: Path
) -> None:
    with TaskClient(load_file(outputs_file), emulator=emulator.address) as client:
        result = client.enqueue("orders", TaskSpec(payload={"failAlways": True, "id": 9}))
    final_line(handler, result.task_name, "dead_lettered")
    short = result.task_name.rsplit("/", 1)[-1]
    [dead] = [
        line for line in handler.log_lines() if line.get("deadLetter") and line["taskName"] == short
    ]
    assert dead["severity"] == "ERROR"
    assert dead["retryCount"] == MAX_ATTEMPTS - 1
    statuses = [entry["status"] for entry in task_lines(handler, result.task_name)]
    assert statuses == ["failed"] * (MAX_ATTEMPTS - 1) + ["dead_lettered"]


def test_scheduled_task_is_not_delivered_early(
    emulator: Child,
    handler: Child,
    outputs_file: Path,
    admin: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:
    created_at = time.time()
    with TaskClient(load_file(outputs_file), emulator=emulator.address) as client:
        result = client.enqueue("orders", TaskSpec(payload={"id": 2}, delay=Duration.parse("2s")))
    # Still queued right after creation...
    pending = [task.name for task in admin.list_tasks(parent=queue)]
    assert result.task_name in pending
    line = final_line(handler, result.task_name)
    # ...and handled no earlier than its schedule time, which Cloud Tasks sends as the ETA.
    scheduled = line["eta"]
    assert isinstance(scheduled, float)
    handled_at = datetime.fromisoformat(str(line["time"])).timestamp()
    assert handled_at >= scheduled >= created_at + 2


def test_duplicate_dedup_key_creates_one_task(
    emulator: Child,
    handler: Child,
    outputs_file: Path,
    admin: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:
    admin.pause_queue(name=queue)  # hold deliveries so the queue's content can be counted
    args = (
        "enqueue", "--outputs", str(outputs_file), "--pipeline", "orders",
        "--emulator", emulator.address, "--data", '{"id": 3}', "--dedup-key", "order-3",
    )  # fmt: skip
    first, second = cli(*args), cli(*args)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout == f"{queue}/tasks/{task_id('order-3')}\n"
    assert "already existed" in second.stderr and "already existed" not in first.stderr
    assert [task.name for task in admin.list_tasks(parent=queue)] == [first.stdout.strip()]
    admin.resume_queue(name=queue)
    final_line(handler, first.stdout.strip())
    assert [line["status"] for line in task_lines(handler, first.stdout.strip())] == ["done"]


def test_bulk_cli_reads_json_lines_from_stdin(
    emulator: Child, handler: Child, outputs_file: Path, queue: str
) -> None:
    lines = "\n".join(json.dumps({"id": n}) for n in range(20)) + "\n"
    result = cli(
        "bulk", "--outputs", str(outputs_file), "--pipeline", "orders",
        "--emulator", emulator.address, "--dedup-field", "id", stdin=lines,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert names == [
        name for name in names if name.endswith(tuple(task_id(str(n)) for n in range(20)))
    ]
    assert len(set(names)) == 20
    assert "created 20, already existed 0, failed 0" in result.stderr
    results = [final_line(handler, name)["result"] for name in names]
    assert results == [{"echo": {"id": n}, "path": "/", "headers": {}} for n in range(20)]
