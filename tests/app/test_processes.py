"""The local processes: loopback only, stopped for good, handler shuts down gracefully."""

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from local import die_with_parent
from local.processes import REPO, Child, running, start_emulator, start_handler
from tests.app.helpers import listening_addresses, wait_for

pytestmark = pytest.mark.timeout(60)

# Loopback as /proc/net/tcp{,6} spells it: 127.0.0.1, plain or IPv4-mapped (::ffff:127.0.0.1).
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_both_bind_loopback_only_and_are_stopped(tmp_path: Path) -> None:
    with (
        running(start_emulator(tmp_path / "emulator.log")) as emulator,
        running(start_handler(tmp_path / "handler.log")) as handler,
    ):
        for child in (emulator, handler):
            addresses = listening_addresses(child.port)
            assert addresses, f"{child.name} is not listening on {child.port}"
            assert set(addresses) <= LOOPBACK, (child.name, addresses)
        pids = [emulator.process.pid, handler.process.pid]
    assert all(gone(pid) for pid in pids)
    assert emulator.process.returncode == 0
    assert handler.process.returncode == 0


def test_handler_finishes_in_flight_task_on_sigterm(tmp_path: Path) -> None:
    handler: Child = start_handler(tmp_path / "handler.log")
    with running(handler):
        request = urllib.request.Request(
            f"http://{handler.address}/slow",
            data=b'{"sleepSeconds": 1.5}',
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-CloudTasks-TaskName": "slow-1",
                "X-CloudTasks-QueueName": "orders",
            },
        )
        answers: list[tuple[int, bytes]] = []

        def call() -> None:
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append((response.status, response.read()))

        caller = threading.Thread(target=call)
        caller.start()
        wait_for(
            lambda: (
                [line for line in handler.log_lines() if line.get("message") == "working"] or None
            ),
            "the task to start",
        )
        os.killpg(handler.process.pid, signal.SIGTERM)
        caller.join(30)
        assert handler.process.wait(30) == 0
    assert answers == [(200, b'{"status":"done"}\n')]
    statuses = [line["status"] for line in handler.log_lines() if "status" in line]
    assert statuses == ["done"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TASK_MAX_ATTEMPTS": "0"}, "TASK_MAX_ATTEMPTS: '0' must be a positive integer or -1"),
        ({"TASK_MAX_RETRY_DURATION": "10m"}, "TASK_MAX_RETRY_DURATION: '10m' must be a number"),
        ({"TASK_PROCESSOR": "nope"}, "TASK_PROCESSOR: 'nope' must be module:function"),
        ({"TASK_PROCESSOR": "handler.example:missing"}, "has no function 'missing'"),
        ({"PORT": "http"}, "'http' is not a port number"),
        ({"TASK_CONCURRENCY": "0"}, "TASK_CONCURRENCY: '0' must be an integer from 1 to 1000"),
        ({"TASK_DISPATCH_DEADLINE": "10m"}, "TASK_DISPATCH_DEADLINE: '10m' must be a positive"),
        ({"TASK_DEAD_LETTER_TOPIC": "dead"}, "TASK_DEAD_LETTER_TOPIC: 'dead' must be projects/"),
    ],
)
def test_handler_bad_settings_are_one_line(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "handler"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_die_with_parent_refuses_a_bad_command_line_and_a_parent_already_gone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert die_with_parent.main(["12", "true"]) == 2  # no "--"
    assert die_with_parent.main(["x", "--", "true"]) == 2
    assert "usage: python -m local.die_with_parent PID -- COMMAND" in capsys.readouterr().err
    # Started by another process than the one named: exits before running anything.
    done = subprocess.run(
        [sys.executable, "-m", "local.die_with_parent", "1", "--", "sh", "-c", "echo ran"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    ran = subprocess.run(
        [sys.executable, "-c",
         "import os, subprocess, sys; sys.exit(subprocess.run([sys.executable, '-m',"
         " 'local.die_with_parent', str(os.getpid()), '--', 'sh', '-c', 'echo ran']).returncode)"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout) == (0, "ran\n")
