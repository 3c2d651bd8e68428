"""The soak's verdict (soak/report.py): which tasks are lost or doubled, and its exit code."""

import subprocess
import sys

from soak.report import Run, judge


def verdict(
    runs: list[Run],
    *,
    cut: set[Run] | None = None,
    acknowledged: set[str] | None = None,
    dead_lettered: set[str] | None = None,
):
    return judge(
        work=["a", "b", "c"],
        rejected=["r"],
        acknowledged={"a", "b", "c", "r"} if acknowledged is None else acknowledged,
        runs=runs,
        cut_after_return=cut or set(),
        dead_lettered={"r"} if dead_lettered is None else dead_lettered,
        deliveries=12,
        kills=2,
        firestore_freezes=1,
        pubsub_down_s=10,
        seconds=60,
    )


ONCE = [Run("a", "h0-0", 0), Run("b", "h1-1", 0), Run("c", "h2-2", 0)]


def test_every_task_once_passes() -> None:
    report = verdict(ONCE)
    assert (report.lost, report.doubled, report.exit_code()) == ([], [], 0)
    assert report.runs_per_task == {1: 3}
    assert "PASS" in report.text() and "lost:              0" in report.text()


def test_a_work_task_without_a_run_is_lost() -> None:
    report = verdict(ONCE[:2])
    assert (report.lost, report.exit_code()) == (["c"], 1)
    assert report.runs_per_task == {1: 2, 0: 1}
    assert "lost:              1 (c)" in report.text() and "FAIL" in report.text()


def test_a_task_never_acknowledged_is_lost_even_if_it_ran() -> None:
    report = verdict(ONCE, acknowledged={"a", "b", "r"})
    assert (report.lost, report.exit_code()) == (["c"], 1)


def test_a_rejected_task_without_its_dead_letter_is_lost() -> None:
    report = verdict(ONCE, dead_lettered=set())
    assert (report.lost, report.exit_code()) == (["r"], 1)


def test_two_runs_are_doubled_unless_the_first_was_cut_by_a_kill_after_returning() -> None:
    second = Run("a", "h1-4", 0)
    doubled = verdict([*ONCE, second])
    assert (doubled.doubled, doubled.rerun_after_kill, doubled.exit_code()) == (["a"], [], 1)
    assert doubled.runs_per_task == {1: 2, 2: 1}
    explained = verdict([*ONCE, second], cut={ONCE[0]})
    assert (explained.doubled, explained.rerun_after_kill, explained.exit_code()) == ([], ["a"], 0)
    # Three runs with one cut: one extra run is unexplained.
    third = Run("a", "h2-5", 0)
    assert verdict([*ONCE, second, third], cut={ONCE[0]}).doubled == ["a"]


def test_help_keeps_the_faults_as_a_list_of_sentences() -> None:
    """Before: argparse refilled the list into "...once, --pubsub-down-at in The run ends"."""
    shown = subprocess.run(
        [sys.executable, "-m", "soak", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "  - the Pub/Sub emulator frozen for --pubsub-down-seconds, once, --pubsub-down-at" in (
        shown
    )
    assert "seconds\n    into the run;\n  - with --contention" in shown
    assert "stopped at the end.\nThe run ends" in shown
    assert "--pubsub-down-at in The run" not in " ".join(shown.split())


def test_a_second_run_in_proxy_mode_is_doubled_like_any_other() -> None:
    # An app outliving its budget keeps its claim: a second run is no longer excused.
    report = verdict([*ONCE, Run("a", "h1-4", 0)])
    assert (report.doubled, report.exit_code()) == (["a"], 1)
    assert "app not heard" not in report.text()
