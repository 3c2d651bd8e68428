"""`python -m taskclient tick`: the task a tick of the schedule would create, once per time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handler.tick_wire import tick_task_id
from local.processes import REPO, Child
from tests.app.helpers import HANDLER_PROJECT, pipeline_output, task_lines, wait_for

pytestmark = pytest.mark.timeout(120)
JOB = "projects/test-project/locations/us-central1/jobs/orders_nightly"


def tick(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskclient", "tick", *args],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture
def scheduled_outputs(tmp_path: Path, queue: str, handler: Child) -> Path:
    entry = pipeline_output(queue, f"http://{handler.address}")
    entry["schedules"] = {"nightly": {"job": JOB, "path": "/reports", "body": '{"kind":"report"}'}}
    path = tmp_path / "pipelines.json"
    path.write_text(json.dumps({"orders": entry}), encoding="utf-8")
    return path


def test_a_tick_at_one_time_is_one_task(
    emulator: Child, scheduled_outputs: Path, queue: str, handler: Child
) -> None:
    common = ["--outputs", str(scheduled_outputs), "--emulator", emulator.address]
    at = ["--pipeline", "orders", "--schedule", "nightly", "--at", "2026-12-04T03:00:00+01:00"]
    first = tick(*common, *at)
    assert first.returncode == 0, first.stderr
    # Named from the job and the time in UTC, as the handler names a tick's task.
    assert first.stdout.strip() == f"{queue}/tasks/{tick_task_id(JOB, '2026-12-04T02:00:00Z')}"
    second = tick(*common, *at)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    assert "already existed" in second.stderr
    # Like every task the client makes, it carries a trace the handler logs under.
    name = first.stdout.strip().rsplit("/", 1)[-1]
    [done] = wait_for(lambda: task_lines(handler, name) or None, f"{name} to be handled")
    assert str(done["logging.googleapis.com/trace"]).startswith(
        f"projects/{HANDLER_PROJECT}/traces/"
    )


def test_an_unknown_schedule_or_a_naive_time_is_a_usage_error(
    emulator: Child, scheduled_outputs: Path
) -> None:
    common = ["--outputs", str(scheduled_outputs), "--emulator", emulator.address]
    unknown = tick(*common, "--pipeline", "orders", "--schedule", "weekly")
    assert unknown.returncode == 2
    assert "--schedule: no schedule 'weekly'; this pipeline has: nightly" in unknown.stderr
    naive = tick(*common, "--pipeline", "orders", "--schedule", "nightly", "--at", "2026-12-04")
    assert naive.returncode == 2 and "--at: needs a timezone" in naive.stderr
