"""`python -m tests.contention [--runs N] [--loops K] -- COMMAND...`: run COMMAND N times while
K busy loops (one per core by default) compete for the CPU, and report every failed run and
the tests it names.

A test that fails here but passes on an idle machine depends on timing: a defect (the team's
standards). The busy loops are one process group of their own, each started through
local.die_with_parent, so they are stopped when this exits, is interrupted or terminated,
and killed by the kernel if this process is killed outright.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
BUSY_LOOP = "while True: pass"
# pytest's short summary lines (-ra): the tests a failed run names.
FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (\S+)")


@contextmanager
def busy_loops(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """COUNT processes spinning on the CPU, in one process group, always stopped."""
    loops: list[subprocess.Popen[bytes]] = []
    command = [sys.executable, "-m", "local.die_with_parent", str(os.getpid()), "--"]
    command += [sys.executable, "-c", BUSY_LOOP]
    try:
        for _ in range(count):
            # The first loop leads a new process group; the others join it.
            group = loops[0].pid if loops else 0
            loops.append(
                subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, process_group=group)
            )
        yield loops
    finally:
        if loops:
            with suppress(ProcessLookupError):
                os.killpg(loops[0].pid, signal.SIGKILL)
            for loop in loops:
                loop.wait()


def _stop(process: subprocess.Popen[str]) -> None:
    """Interrupted mid-run: SIGINT as Ctrl-C would send (pytest then runs its teardowns and
    stops its emulators), SIGKILL if that takes too long."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(command: Sequence[str], runs: int, loops: int, log_dir: Path) -> int:
    log_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[int, int, list[str]]] = []
    with busy_loops(loops):
        for index in range(1, runs + 1):
            log = log_dir / f"run-{index}.log"
            started = time.monotonic()
            print(f"contention: run {index}/{runs} with {loops} busy loops: {' '.join(command)}")
            named: list[str] = []
            with (
                log.open("w", encoding="utf-8") as sink,
                subprocess.Popen(
                    command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                ) as process,
            ):
                assert process.stdout is not None
                try:
                    for line in process.stdout:
                        sys.stdout.write(line)
                        sys.stdout.flush()
                        sink.write(line)
                        if match := FAILED_LINE.match(line):
                            named.append(match.group(1))
                    code = process.wait()
                finally:
                    _stop(process)
            elapsed = time.monotonic() - started
            print(f"contention: run {index}/{runs} exit {code} in {elapsed:.0f}s (log: {log})")
            if code != 0:
                failures.append((index, code, named))
    print(f"contention: {runs - len(failures)} of {runs} runs passed under {loops} busy loops")
    for index, code, named in failures:
        print(f"  run {index}: exit {code}; failed: {', '.join(named) or '(see its log)'}")
    return 1 if failures else 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.contention", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="times to run COMMAND (3)")
    parser.add_argument(
        "--loops", type=int, default=os.cpu_count() or 1, help="busy loops (one per core)"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=REPO / "build" / "contention", help="one log per run"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.runs < 1 or args.loops < 0:
        parser.error("needs -- COMMAND, --runs >= 1 and --loops >= 0")
    signal.signal(signal.SIGTERM, _raise_on_signal)
    return run(command, args.runs, args.loops, args.log_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
