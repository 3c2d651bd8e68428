"""bench/plain is a fair baseline: it registers what the real program registers, flat."""

from __future__ import annotations

from bench.scale import PLAIN, stack_config
from plan.recorder import Recording, run_program
from tests.plan.conftest import ROOT


def _custom(recording: Recording) -> list[tuple[str, str]]:
    return sorted((r.type, r.name) for r in recording.resources if r.custom)


def test_plain_program_registers_the_same_resources_and_exports() -> None:
    real = run_program(ROOT, "bench", stack_config(3, enqueuers=2))
    plain = run_program(PLAIN, "bench", stack_config(3, enqueuers=2))
    # 6 APIs, the agent, the dashboard, the database and its TTL policy; per pipeline: 6,
    # 4 alert policies, the dead-letter topic, subscription and publish grant, the
    # database grant, 2 per enqueuer.
    assert len(_custom(real)) == 10 + 3 * 18
    assert _custom(plain) == _custom(real)
    inputs = {(r.type, r.name): r.inputs for r in plain.resources if r.custom}
    assert {(r.type, r.name): r.inputs for r in real.resources if r.custom} == inputs
    # Same stack output, value for value (the mocks fabricate the computed ones).
    assert sorted(real.outputs["pipelines"]) == ["p000", "p001", "p002"]
    assert plain.outputs == real.outputs
