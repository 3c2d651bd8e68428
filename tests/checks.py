"""`python -m tests.checks TARGET...`: run make targets side by side, every one to its end
even when another fails, then name each failure; exit 1 if any failed.

`make test` runs its checks through this: a red lint no longer hides a red test suite, and
the checks that wait on PyPI (lock-check) or on emulators overlap with those that need the
CPU. Each target's output goes to build/checks/TARGET.log and is printed whole once the
target ends, so outputs never interleave. Every target runs in a process group of its own,
stopped if this is interrupted or terminated.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 30.0


@dataclass
class Check:
    target: str
    log: Path
    process: subprocess.Popen[bytes]
    started: float
    elapsed_s: float = 0.0

    @property
    def code(self) -> int | None:
        return self.process.poll()


def start(target: str, log_dir: Path, make: str, directory: Path) -> Check:
    log = log_dir / f"{target}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [make, "--no-print-directory", target],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Check(target, log, process, time.monotonic())


def stop(check: Check) -> None:
    """SIGTERM to the target's whole group (pytest then runs its teardowns), SIGKILL if it
    is still there after a grace period."""
    if check.code is not None:
        return
    os.killpg(check.process.pid, signal.SIGTERM)
    try:
        check.process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(check.process.pid, signal.SIGKILL)
        check.process.wait()


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(targets: Sequence[str], log_dir: Path, make: str, directory: Path = REPO) -> int:
    log_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    checks = [start(target, log_dir, make, directory) for target in targets]
    running = list(checks)
    try:
        while running:
            for check in [c for c in running if c.code is not None]:
                running.remove(check)
                check.elapsed_s = time.monotonic() - check.started
                verdict = "passed" if check.code == 0 else f"FAILED (exit {check.code})"
                sys.stdout.write(f"\n===== make {check.target}: {verdict} in ")
                sys.stdout.write(f"{check.elapsed_s:.0f}s =====\n")
                sys.stdout.write(check.log.read_text(encoding="utf-8", errors="replace"))
                sys.stdout.flush()
            time.sleep(0.2)
    finally:
        for check in running:
            stop(check)
    failed = [c for c in checks if c.code != 0]
    print(f"\n===== {len(checks) - len(failed)} of {len(checks)} checks passed", end="")
    print(f" in {time.monotonic() - began:.0f}s =====")
    for check in checks:
        verdict = "ok  " if check.code == 0 else "FAIL"
        print(f"  {verdict} {check.target:<14} {check.elapsed_s:6.0f}s  {check.log}")
    return 1 if failed else 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.checks", description=__doc__)
    parser.add_argument("targets", nargs="+", help="make targets, run side by side")
    parser.add_argument("--log-dir", type=Path, default=REPO / "build" / "checks")
    parser.add_argument("--make", default=os.environ.get("MAKE", "make"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_signal)
    return run(args.targets, args.log_dir, args.make)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
