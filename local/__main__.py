"""`python -m local --stack dev` (`make local STACK=dev`): the whole loop on this machine.

Starts the Cloud Tasks emulator and the task handler on 127.0.0.1, creates one queue per
pipeline of Pulumi.<stack>.yaml, writes a stack-output file for the client, prints what it
started and how to enqueue, then follows the handler's log until Ctrl-C, SIGTERM or SIGHUP
and stops both. Killed outright, it takes them with it (see local/processes.py).
"""

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path

import pyprctl

from local.processes import REPO, Child, StartError, running, start_emulator, start_handler
from local.stack_config import LocalPipeline, StackConfigError, read_stack, stack_output
from local.state import AlreadyRunning, StackState, claim, describe

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(threading.Event):
    """Set by a stop signal, remembering which, so the user sees why it stopped."""

    reason = "stop requested"

    def on_signal(self, signum: int, _frame: object) -> None:
        self.reason = signal.Signals(signum).name
        self.set()


def _say(text: str) -> None:
    # After SIGHUP the terminal may be gone: writing to it fails, and stopping must go on.
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _shown(path: Path) -> str:
    """`path` as the user would type it here: relative to the working directory if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _die_with_parent() -> None:
    """Stop cleanly (as on SIGTERM) when whoever started us dies, e.g. a SIGKILLed `make`."""
    parent = os.getppid()
    pyprctl.set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above could take effect
        os.kill(os.getpid(), signal.SIGTERM)


def _follow(log: Path, stop: threading.Event) -> None:
    """Copies the handler's log lines to stdout until `stop` is set."""
    with log.open(encoding="utf-8", errors="replace") as lines:
        while not stop.is_set():
            line = lines.readline()
            if line:
                _say(line.rstrip("\n"))
            else:
                stop.wait(0.2)


def _started(
    state: StackState, pipelines: list[LocalPipeline], emulator: Child, handler: Child
) -> str:
    outputs = state.directory / "pipelines.json"
    outputs.write_text(
        json.dumps(stack_output(pipelines, f"http://{handler.address}"), indent=2),
        encoding="utf-8",
    )
    state.record(
        {
            "pid": os.getpid(),
            "stack": state.stack,
            "children": {
                child.name: {"pid": child.process.pid, "port": child.port, "log": str(child.log)}
                for child in (emulator, handler)
            },
            "outputs": str(outputs),
        }
    )
    max_attempts = min(p.max_attempts for p in pipelines)
    python = _shown(REPO / ".venv" / "bin" / "python")
    return (
        f"stack {state.stack} running (pid {os.getpid()}), state in {_shown(state.directory)}\n"
        f"  emulator  {emulator.address}  pid {emulator.process.pid}  log {_shown(emulator.log)}\n"
        f"  handler   {handler.address}  pid {handler.process.pid}  log {_shown(handler.log)}\n"
        f"  outputs   {_shown(outputs)}\n"
        f"queues: {', '.join(p.queue for p in pipelines)}\n"
        f"max attempts per task: {max_attempts} (smallest maxAttempts of the stack)\n"
        f"enqueue from another terminal:\n"
        f"  {python} -m taskclient enqueue --outputs {_shown(outputs)} "
        f"--emulator {emulator.address} --pipeline {pipelines[0].name} --data '{{\"id\": 1}}'\n"
        f"stop: Ctrl-C here, or `kill {os.getpid()}` (SIGTERM or SIGHUP work too)\n"
        f"handler log follows:"
    )


def _run(state: StackState, pipelines: list[LocalPipeline], stop: Stop) -> None:
    if state.stale:
        _say(
            f"taking over {_shown(state.directory)} from a run that did not clean up"
            f" ({describe(state.stale)}): its processes died with it"
        )
    # One emulator and one handler serve every pipeline, so one retry limit: the smallest.
    max_attempts = min(p.max_attempts for p in pipelines)
    max_retries = -1 if max_attempts == -1 else max_attempts - 1
    stopped: list[Child] = []
    try:
        with (
            running(
                start_emulator(
                    state.directory / "emulator.log",
                    queues=[p.queue for p in pipelines],
                    max_retries=max_retries,
                )
            ) as emulator,
            running(
                start_handler(
                    state.directory / "handler.log",
                    env={"TASK_MAX_ATTEMPTS": str(max_attempts)},
                )
            ) as handler,
        ):
            stopped = [handler, emulator]  # the order `running` stops them in
            _say(_started(state, pipelines, emulator, handler))
            _follow(handler.log, stop)
            _say(f"stopping ({stop.reason})...")
    finally:
        if stopped:
            _say(
                "stopped "
                + ", ".join(
                    f"{c.name} (pid {c.process.pid}, {c.address}, exit {c.process.returncode})"
                    for c in stopped
                )
                + f"; logs and outputs kept in {_shown(state.directory)}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument("--root", type=Path, default=REPO, help="directory of Pulumi.yaml")
    parser.add_argument(
        "--state",
        type=Path,
        default=REPO / "build" / "local",
        help="where each stack gets its directory (logs, outputs, run.json)",
    )
    args = parser.parse_args()
    stop = Stop()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop.on_signal)
    _die_with_parent()
    try:
        pipelines = read_stack(args.root, args.stack)
    except StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with claim(args.state.resolve(), args.stack) as state:
            _run(state, pipelines, stop)
    except (AlreadyRunning, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
