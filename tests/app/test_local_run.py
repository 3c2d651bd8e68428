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
      service: {image: us-docker.pkg.dev/cloudrun/container/hello}
      queue: {maxAttempts: 5}
    reports:
      location: europe-west1
      service: {image: us-docker.pkg.dev/cloudrun/container/hello}
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
        ("config: {gcp:project: acme-local}", "pipelines: is required"),
        (
            "config: {gcp:project: acme-local, gcp:region: us-central1,"
            " cloudrun-tasks:pipelines: []}",
            "pipelines: must be a mapping",
        ),
        ("config: [", "not valid YAML"),
        ("config: {gcp:project: a, gcp:project: b}", "duplicate key 'gcp:project'"),
    ],
)
def test_bad_stack_files(root: Path, stack_text: str, message: str) -> None:
    (root / "Pulumi.dev.yaml").write_text(stack_text)
    with pytest.raises(StackConfigError, match=re.escape(message)):
        read_stack(root, "dev")


def test_missing_stack_file_lists_the_stacks(root: Path) -> None:
    with pytest.raises(
        StackConfigError, match=r"^--stack qa: no Pulumi.qa.yaml in .* \(stacks: dev\)"
    ):
        read_stack(root, "qa")


def test_invalid_stack_starts_nothing_and_says_what_the_program_says(
    root: Path, tmp_path: Path
) -> None:
    """Before: `make local` started the emulator and handler on a config `pulumi up` refuses."""
    (root / "Pulumi.dev.yaml").write_text(
        STACK.replace("queue: {maxAttempts: 5}", "queue: {maxAttempts: 0}").replace(
            "cloudrun-tasks:pipelines:", "cloudrun-task:protect: false\n  cloudrun-tasks:pipelines:"
        )
    )
    state = tmp_path / "state"
    command = [sys.executable, "-m", "local", "--stack", "dev", "--root", str(root)]
    result = subprocess.run(
        [*command, "--state", str(state)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Pulumi.dev.yaml: invalid stack config (2 problems):",
        "  cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
        " cloudrun-tasks:protect? this program reads cloudrun-tasks:* and gcp:* keys",
        "  pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1 and"
        " <= 2147483647, got 0",
    ]
    assert not state.exists()


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
