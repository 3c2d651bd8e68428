"""The enqueue client page's example, `--at` included, runs as written against the emulator: its
date is computed when it runs (tomorrow), so it can't fall outside Cloud Tasks' 30 days."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.cloud import tasks_v2

from local.processes import Child
from tests.infra.test_readme_commands import commands

REPO = Path(__file__).resolve().parents[2]


def _example() -> list[str]:
    """The documentation's first `taskclient enqueue --at` example, every optional part taken, the
    `--delay | --at` alternative as `--at`, its shell substitution run by a shell."""
    [command] = [c for c in commands() if "--at " in c and " enqueue " in c][:1]
    command = re.sub(r"\[--delay [^|\]]+\| (--at [^\]]+)\]", r"\1", command)
    command = command.replace("[", "").replace("]", "")
    words = subprocess.run(
        ["bash", "-c", f"printf '%s\\n' {command}"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return words


def _with(words: list[str], flag: str, value: str) -> list[str]:
    at = words.index(flag)
    return [*words[:at], flag, value, *words[at + 2 :]]


def test_the_at_example_is_accepted_and_scheduled(
    outputs_file: Path, emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    words = _example()
    assert words[:4] == [".venv/bin/python", "-m", "taskclient", "enqueue"]
    when = datetime.fromisoformat(words[words.index("--at") + 1])
    assert timedelta(hours=23) < when - datetime.now(UTC) < timedelta(hours=25)
    # The page's placeholders: this test's outputs file and emulator, not a stack.
    args = [w for w in words[4:] if w not in ("--stack", "dev")]
    args = _with(args, "--outputs", str(outputs_file))
    args = _with(args, "--emulator", emulator.address)
    result = subprocess.run(
        [sys.executable, "-m", "taskclient", "enqueue", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [task] = admin.list_tasks(parent=queue)
    assert tasks_v2.Task.pb(task).schedule_time.ToDatetime(tzinfo=UTC) == when


def test_the_old_fixed_date_would_be_refused(outputs_file: Path, emulator: Child) -> None:
    """The example the documentation once had: fixed in 2030, more than 30 days ahead."""
    result = subprocess.run(
        [
            sys.executable, "-m", "taskclient", "enqueue", "--outputs", str(outputs_file),
            "--emulator", emulator.address, "--pipeline", "orders", "--data", "{}",
            "--at", "2030-01-01T12:00Z",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--at: more than Cloud Tasks' 30 days ahead" in result.stderr
