"""The soak's verdict inside and beyond the guarantee envelope (soak/report.py), and the
fenced effect store its processor writes through (soak/processor.py)."""

from pathlib import Path

from soak.processor import Effects
from soak.report import Run, judge

ONCE = [Run("a", "h0-0", 0), Run("b", "h1-1", 0), Run("c", "h2-2", 0)]


def verdict(runs: list[Run], **extra: object):
    return judge(
        work=["a", "b", "c"],
        rejected=[],
        acknowledged={"a", "b", "c"},
        runs=runs,
        cut_after_return=set(),
        dead_lettered=set(),
        deliveries=9,
        kills=0,
        firestore_freezes=1,
        pubsub_down_s=10,
        seconds=60,
        **extra,  # pyright: ignore[reportArgumentType]
    )


def test_a_second_run_after_a_lost_claim_is_beyond_the_envelope_and_reported() -> None:
    second = Run("a", "h1-4", 0, committed=False)
    applied = {"a": True, "b": True, "c": True}
    beyond = verdict([*ONCE, second], claim_lost={"a"}, effects=applied, contention=2)
    assert (beyond.doubled, beyond.claim_lost, beyond.exit_code()) == ([], ["a"], 0)
    text = beyond.text()
    assert "  claim lost:        1 (a)" in text and "cpu contention:    2 busy loops" in text
    inside = verdict([*ONCE, second], claim_lost={"b"}, effects=applied)
    assert (inside.doubled, inside.claim_lost, inside.exit_code()) == (["a"], [], 1)


def test_an_effect_applied_twice_or_never_fails_whatever_the_cause() -> None:
    twice = verdict(
        [*ONCE, Run("a", "h1-4", 0)], claim_lost={"a"}, effects={"a": True, "b": True, "c": True}
    )
    assert (twice.effect_errors, twice.exit_code()) == (["a"], 1)
    never = verdict(ONCE, effects={"a": True, "b": True})
    assert (never.effect_errors, never.exit_code()) == (["c"], 1)
    assert "effect not once:   1 (c)" in never.text()


def test_the_effect_store_refuses_a_stale_holder_and_a_second_commit(tmp_path: Path) -> None:
    effects = Effects(tmp_path)
    assert effects.reserve("t", 1)
    assert effects.reserve("t", 2)  # another delivery took the task over
    assert effects.commit("t", 1) is False  # the paused holder's late write: refused
    assert effects.commit("t", 2) is True
    assert effects.commit("t", 2) is False  # a second commit of the same effect
    assert effects.reserve("t", 1) is False
    assert (tmp_path / "t").read_text() == "2 2"


def test_a_killed_handlers_run_whose_record_was_still_being_written_is_cut(
    tmp_path: Path,
) -> None:
    # Seen under contention: processed, `processed` not written in time (dead_lettered
    # answer, written in the background), then SIGKILLed before it landed: the run after it
    # is the rerun a kill explains, not a double inside the envelope.
    import json
    import subprocess
    from typing import cast

    from local.processes import Child
    from soak.__main__ import Handlers, Incarnation, completed_runs

    def incarnation(name: str, runs: str, lines: list[dict[str, object]], killed: bool):
        log = tmp_path / f"{name}.log"
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        (tmp_path / f"{name}.runs").write_text(runs)
        child = Child(name, cast(subprocess.Popen[bytes], None), log, 0)
        return Incarnation(name, child, tmp_path / f"{name}.runs", killed)

    handlers = Handlers(tmp_path, {}, tmp_path)
    handlers.incarnations = [
        incarnation(
            "h0-0",
            "a 1 committed\nb 1 committed\nc 1 committed\n",
            [
                {"taskName": "a", "status": "dead_lettered"},
                {"taskName": "b", "status": "dead_lettered"},
                {"taskName": "b", "message": "task outcome written"},
                {"taskName": "c", "status": "done"},
            ],
            killed=True,
        ),
    ]
    runs, cut, lost = completed_runs(handlers)
    assert {run.task for run in cut} == {"a"}
    assert [run.committed for run in runs] == [True, True, True] and lost == set()
