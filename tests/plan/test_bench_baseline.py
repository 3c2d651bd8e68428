"""bench/plain is a fair baseline: it registers what the real program registers, flat."""

from __future__ import annotations

from pathlib import Path

from bench.scale import PLAIN, stack_config
from plan.recorder import run_program
from tests.plan.conftest import ROOT


def _custom(program: Path) -> list[tuple[str, str]]:
    recording = run_program(program, "bench", stack_config(3), preview=True)
    return sorted((r.type, r.name) for r in recording.resources if r.custom)


def test_plain_program_registers_the_same_resources() -> None:
    real, plain = _custom(ROOT), _custom(PLAIN)
    assert len(real) == 4 + 3 * 10
    assert plain == real
