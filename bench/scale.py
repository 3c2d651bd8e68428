"""How the program scales: `python -m bench.scale` (or `make bench-scale`).

For 1, 10, 50 and 100 pipelines, times the offline plan end to end (a fresh
`python -m plan --format json` process: interpreter start, imports, program under mocks,
JSON written) of the real program and of bench/plain, the same resources hand-written
without components or validation. Each of --repeat rounds runs the two back to back.
Times are the fastest of the rounds (the least disturbed run); the ratio is the median of
the rounds' ratios, so a slow spell of a shared machine, which slows both runs of a
round, does not tilt it.

Each pipeline is shaped like the prod stack's (one enqueuer): 16 resources, so 100
pipelines are 1,610 with the stack's own. `--enqueuers 2` gives the dev stack's shape.

Prints a table and its targets (linear growth, and the ratio to the plain program, the
SDK's own floor); it measures, it does not fail a build.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLAIN = ROOT / "bench" / "plain"
SIZES = (1, 10, 50, 100)
# Targets: linear growth, and components cheap against the plain program, the Pulumi SDK's
# own floor for the same resources. No absolute time: what one registration costs depends
# on the machine, and the plain program alone sets that floor.
MAX_GROWTH_10_TO_100 = 11.0
MAX_COMPONENT_RATIO = 1.3


ENQUEUERS = (
    "serviceAccount:api@acme-tasks-bench.iam.gserviceaccount.com",
    "group:payments-devs@acme.example",
)


def stack_config(pipelines: int, enqueuers: int = 1) -> dict[str, Any]:
    """A stack with PIPELINES copies of one pipeline, granted to ENQUEUERS callers."""
    pipeline = {
        "dispatchDeadline": "600s",
        "service": {
            "image": "us-docker.pkg.dev/cloudrun/container/hello",
            "maxInstances": 2,
            "env": {"LOG_LEVEL": "debug"},
        },
        "queue": {"maxDispatchesPerSecond": 5, "maxAttempts": 5, "maxRetryDuration": "600s"},
        "enqueuers": list(ENQUEUERS[:enqueuers]),
    }
    return {
        "gcp:project": "acme-tasks-bench",
        "gcp:region": "us-central1",
        "cloudrun-tasks:labels": {"env": "bench"},
        "cloudrun-tasks:pipelines": {f"p{i:03d}": pipeline for i in range(pipelines)},
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_plan(program_dir: Path, stack_file: Path, plan_file: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of one `python -m plan` process, and the resources it planned.

    CPU time is reported beside wall time because other jobs on a shared 2-core machine
    stretch the wall clock; the CPU figure shows what the run itself cost.
    """
    command = [sys.executable, "-m", "plan", "--stack", "bench", "--stack-file", str(stack_file)]
    command += ["--program-dir", str(program_dir), "--format", "json", "-o", str(plan_file)]
    # The program and the recorder are measured, not the policy pack (a second process,
    # the same for both variants).
    command += ["--policy", "off"]
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    planned = json.loads(plan_file.read_text())["resources"].values()
    return wall, cpu, sum(not r["component"] for r in planned)


def measure(sizes: tuple[int, ...], repeat: int, enqueuers: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for size in sizes:
            stack_file = work / f"Pulumi.bench-{size}.yaml"
            stack_file.write_text(yaml.safe_dump({"config": stack_config(size, enqueuers)}))
            best: dict[str, tuple[float, float]] = {}
            counts = {}
            ratios = []
            for _ in range(repeat):
                walls = {}
                for variant, program in (("components", ROOT), ("plain", PLAIN)):
                    wall, cpu, counts[variant] = timed_plan(program, stack_file, work / "plan.json")
                    walls[variant] = wall
                    best[variant] = min(best.get(variant, (wall, cpu)), (wall, cpu))
                ratios.append(walls["components"] / walls["plain"])
            if counts["components"] != counts["plain"]:
                raise SystemExit(
                    f"error: at {size} pipelines the plain program plans {counts['plain']}"
                    f" resources, the real one {counts['components']}: not a fair baseline"
                )
            rows.append(
                {
                    "pipelines": size,
                    "resources": counts["plain"],
                    "components": best["components"][0],
                    "plain": best["plain"][0],
                    "components_cpu": best["components"][1],
                    "plain_cpu": best["plain"][1],
                    "ratio": statistics.median(ratios),
                }
            )
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pipelines | resources | components s (CPU) | plain s (CPU) | ms per pipeline"
        " | median ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['pipelines']} | {row['resources']}"
            f" | {row['components']:.2f} ({row['components_cpu']:.2f})"
            f" | {row['plain']:.2f} ({row['plain_cpu']:.2f})"
            f" | {1000 * row['components'] / row['pipelines']:.0f}"
            f" | {row['ratio']:.2f}x |"
        )
    by_size = {row["pipelines"]: row for row in rows}
    if 10 in by_size and 100 in by_size:
        growth = by_size[100]["components"] / by_size[10]["components"]
        # Judged at 100 pipelines: at 1 the ratio is mostly interpreter start and noise.
        ratio = by_size[100]["ratio"]
        at_100 = by_size[100]["components"]
        lines += [
            "",
            _target(
                f"100 vs 10 pipelines: {growth:.1f}x",
                growth <= MAX_GROWTH_10_TO_100,
                f"<= {MAX_GROWTH_10_TO_100:g}x",
            ),
            _target(
                f"components vs plain at 100 pipelines (median of rounds): {ratio:.2f}x",
                ratio <= MAX_COMPONENT_RATIO,
                f"<= {MAX_COMPONENT_RATIO:g}x",
            ),
            f"100 pipelines end to end: {at_100:.2f} s, the plain program"
            f" {by_size[100]['plain']:.2f} s for the same {by_size[100]['resources']:,} resources",
        ]
    return "\n".join(lines)


def _target(figure: str, met: bool, target: str) -> str:
    return f"{figure} (target {target}): {'met' if met else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument(
        "--repeat", type=int, default=5, help="rounds, each timing both programs (default 5)"
    )
    parser.add_argument(
        "--pipelines", type=int, nargs="+", default=list(SIZES), help="stack sizes to time"
    )
    parser.add_argument(
        "--enqueuers",
        type=int,
        choices=range(1, len(ENQUEUERS) + 1),
        default=1,
        help="enqueuers per pipeline: 1 (prod's shape, default) or 2 (dev's)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or min(args.pipelines) < 1:
        parser.error("--repeat and --pipelines: must be >= 1")
    print(report(measure(tuple(args.pipelines), args.repeat, args.enqueuers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
