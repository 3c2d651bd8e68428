"""bench/plain is a fair baseline: it registers what the real program registers, flat."""

from __future__ import annotations

from bench.scale import PLAIN, report, stack_config
from plan.recorder import Recording, run_program
from tests.plan.conftest import ROOT


def _custom(recording: Recording) -> list[tuple[str, str]]:
    return sorted((r.type, r.name) for r in recording.resources if r.custom)


def test_plain_program_registers_the_same_resources_and_exports() -> None:
    real = run_program(ROOT, "bench", stack_config(3, enqueuers=2))
    plain = run_program(PLAIN, "bench", stack_config(3, enqueuers=2))
    # 7 APIs, the agent, the dashboard, the database and its TTL policy; per pipeline: 6,
    # 5 alert policies and the claims-lost metric, the dead-letter topic, subscription and
    # publish grant, the database grant, 2 per enqueuer.
    assert len(_custom(real)) == 11 + 3 * 20
    assert _custom(plain) == _custom(real)
    inputs = {(r.type, r.name): r.inputs for r in plain.resources if r.custom}
    assert {(r.type, r.name): r.inputs for r in real.resources if r.custom} == inputs
    # Same stack output, value for value (the mocks fabricate the computed ones).
    assert sorted(real.outputs["pipelines"]) == ["p000", "p001", "p002"]
    assert plain.outputs == real.outputs


def _row(pipelines: int, components: float, plain: float, ratio: float) -> dict[str, float]:
    return {
        "pipelines": pipelines,
        "resources": 16 * pipelines + 10,
        "components": components,
        "plain": plain,
        "components_cpu": components,
        "plain_cpu": plain,
        "ratio": ratio,
    }


def test_the_report_judges_the_ratios_and_sets_no_absolute_time() -> None:
    met = report([_row(10, 0.5, 0.45, 1.1), _row(100, 2.9, 2.5, 1.16)])
    assert "100 vs 10 pipelines: 5.8x (target <= 11x): met" in met
    assert "(median of rounds): 1.16x (target <= 1.3x): met" in met
    assert "100 pipelines end to end: 2.90 s, the plain program 2.50 s for the same 1,610" in met

    missed = report([_row(10, 0.5, 0.45, 1.1), _row(100, 4.3, 3.9, 1.4)])
    assert "1.40x (target <= 1.3x): MISSED" in missed
    # The time is a figure beside the SDK's floor, never a target of its own.
    assert "100 pipelines end to end: 4.30 s, the plain program 3.90 s" in missed
    assert "< 3 s" not in missed and missed.count("MISSED") == 1
