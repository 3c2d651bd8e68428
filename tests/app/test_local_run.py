"""`make local`: reads the stack file, runs the loop, prints a command that works, stops cleanly."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local.processes import REPO
from local.stack_config import StackConfigError, read_stack
from tests.app.helpers import wait_for
from tests.app.test_processes import listening_addresses

pytestmark = pytest.mark.timeout(120)

STACK = """
config:
  gcp:project: acme-local
  gcp:region: us-central1
  cloudrun-tasks:pipelines:
    orders:
      dispatchDeadline: 300s
      queue: {maxAttempts: 5}
    reports:
      location: europe-west1
      queue: {maxAttempts: 3}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: cloudrun-tasks\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK)
    return tmp_path


def test_reads_pipelines_and_locations(root: Path) -> None:
    orders, reports = read_stack(root, "dev")
    assert orders.queue == "projects/acme-local/locations/us-central1/queues/orders"
    assert (orders.dispatch_deadline, orders.max_attempts) == ("300s", 5)
    assert reports.queue == "projects/acme-local/locations/europe-west1/queues/reports"
    assert (reports.dispatch_deadline, reports.max_attempts) == ("600s", 3)


@pytest.mark.parametrize(
    ("stack_text", "message"),
    [
        ("config: {gcp:project: p}", "gcp:project and gcp:region must be set"),
        ("config: {gcp:project: p, gcp:region: r}", "cloudrun-tasks:pipelines: expected a mapping"),
        ("config: [", "not valid YAML"),
    ],
)
def test_bad_stack_files(root: Path, stack_text: str, message: str) -> None:
    (root / "Pulumi.dev.yaml").write_text(stack_text)
    with pytest.raises(StackConfigError, match=re.escape(message)):
        read_stack(root, "dev")


def test_missing_stack_file(root: Path) -> None:
    with pytest.raises(StackConfigError, match=r"^--stack qa: cannot read .*Pulumi.qa.yaml"):
        read_stack(root, "qa")


def test_local_loop_end_to_end(root: Path, tmp_path: Path) -> None:
    output = tmp_path / "local.out"
    state = tmp_path / "state"
    command = [sys.executable, "-m", "local", "--stack", "dev", "--root", str(root)]
    with output.open("wb") as sink:
        local = subprocess.Popen(
            [*command, "--state", str(state)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    try:
        text = wait_for(
            lambda: output.read_text() if "handler log follows" in output.read_text() else None,
            "the local loop to start",
        )
        emulator_port, handler_port = map(int, re.findall(r"127\.0\.0\.1:(\d+)", text)[:2])
        assert "max attempts per task: 3" in text
        outputs = json.loads((state / "pipelines.json").read_text())
        assert sorted(outputs) == ["orders", "reports"]
        assert outputs["reports"]["serviceUrl"] == f"http://127.0.0.1:{handler_port}"
        # The printed command, run as printed (with the venv's python), enqueues a task...
        printed = shlex.split(next(line for line in text.splitlines() if "taskclient" in line))
        assert printed[0] == ".venv/bin/python"
        enqueue = subprocess.run(
            [sys.executable, *printed[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert enqueue.returncode == 0, enqueue.stderr
        short = enqueue.stdout.strip().rsplit("/", 1)[-1]

        # ...that the handler processes, and its log line shows up in `make local`'s output.
        def done_line() -> str | None:
            lines = output.read_text().splitlines()
            return next((line for line in lines if short in line and '"done"' in line), None)

        assert '"taskName": "' + short in wait_for(done_line, "the task in the followed log")
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGTERM)
        local.wait(30)
    assert local.returncode == 0
    assert listening_addresses(emulator_port) == []
    assert listening_addresses(handler_port) == []
