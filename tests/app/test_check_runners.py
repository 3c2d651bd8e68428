"""The runners behind `make test` (tests.checks) and `make flaky-check` (tests.contention)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local.processes import group_members
from tests import checks, contention
from tests.app.helpers import wait_for

MAKEFILE = """\
good:
\t@echo good ran
bad:
\t@echo bad ran; exit 3
late:
\t@sleep 0.5; echo late ran
"""


def test_every_check_runs_to_its_end_and_each_failure_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    code = checks.run(["bad", "late", "good"], tmp_path / "logs", "make", tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    # The first to fail stopped nothing: the later and slower ones ran too.
    assert "late ran" in out and "good ran" in out and "bad ran" in out
    assert "===== make bad: FAILED (exit 2)" in out  # make's own status for a failed recipe
    assert "2 of 3 checks passed" in out
    summary = out[out.index("checks passed") :].splitlines()[1:]
    assert [line.split()[:2] for line in summary] == [
        ["FAIL", "bad"],
        ["ok", "late"],
        ["ok", "good"],
    ]
    assert (tmp_path / "logs" / "late.log").read_text() == "late ran\n"


def test_all_checks_passing_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    assert checks.run(["good", "late"], tmp_path / "logs", "make", tmp_path) == 0
    assert "2 of 2 checks passed" in capsys.readouterr().out


def test_the_busy_loops_spin_while_the_command_runs_and_are_gone_after(tmp_path: Path) -> None:
    with contention.busy_loops(2) as loops:
        group = loops[0].pid
        assert sorted(group_members(group)) == sorted(loop.pid for loop in loops)
        # Spinning: each uses CPU time (utime + stime, fields 14 and 15 of /proc/PID/stat).
        before = {loop.pid: _cpu_ticks(loop.pid) for loop in loops}
        wait_for(
            lambda: all(_cpu_ticks(pid) > ticks for pid, ticks in before.items()) or None,
            "every busy loop to use the CPU",
        )
    assert group_members(group) == []


def test_a_failing_run_is_reported_with_the_tests_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "import sys; print('FAILED tests/x.py::test_y - boom'); sys.exit(1)"
    code = contention.run([sys.executable, "-c", script], 2, 1, tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    assert "0 of 2 runs passed under 1 busy loops" in out
    assert "run 2: exit 1; failed: tests/x.py::test_y" in out
    assert (tmp_path / "run-1.log").read_text() == "FAILED tests/x.py::test_y - boom\n"


def test_passing_runs_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert contention.run([sys.executable, "-c", "pass"], 1, 1, tmp_path) == 0
    assert "1 of 1 runs passed" in capsys.readouterr().out


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])
