"""`python -m local --stack dev` (`make local STACK=dev`): the whole loop on this machine.

Starts the Cloud Tasks emulator and the task handler on 127.0.0.1, creates one queue per
pipeline of Pulumi.<stack>.yaml, writes a stack-output file for the client, prints how to
enqueue, then follows the handler's log until Ctrl-C (or SIGTERM) and stops both.
"""

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from local.processes import REPO, StartError, running, start_emulator, start_handler
from local.stack_config import StackConfigError, read_stack, stack_output


def _follow(log: Path, stop: threading.Event) -> None:
    """Copies the handler's log lines to stdout until `stop` is set."""
    with log.open(encoding="utf-8", errors="replace") as lines:
        while not stop.is_set():
            line = lines.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                stop.wait(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument("--root", type=Path, default=REPO, help="directory of Pulumi.yaml")
    parser.add_argument(
        "--state", type=Path, default=REPO / "build" / "local", help="logs, outputs"
    )
    args = parser.parse_args()
    try:
        pipelines = read_stack(args.root, args.stack)
    except StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # One emulator and one handler serve every pipeline, so one retry limit: the smallest.
    max_attempts = min(p.max_attempts for p in pipelines)
    max_retries = -1 if max_attempts == -1 else max_attempts - 1
    args.state.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with (
            running(
                start_emulator(
                    args.state / "emulator.log",
                    queues=[p.queue for p in pipelines],
                    max_retries=max_retries,
                )
            ) as emulator,
            running(
                start_handler(
                    args.state / "handler.log", env={"TASK_MAX_ATTEMPTS": str(max_attempts)}
                )
            ) as handler,
        ):
            outputs = args.state / "pipelines.json"
            output = stack_output(pipelines, f"http://{handler.address}")
            outputs.write_text(json.dumps(output, indent=2), encoding="utf-8")
            first = pipelines[0].name
            print(
                f"Cloud Tasks emulator on {emulator.address}, handler on {handler.address}\n"
                f"queues: {', '.join(p.queue for p in pipelines)}\n"
                f"max attempts per task: {max_attempts} (smallest maxAttempts of the stack)\n"
                f"enqueue from another terminal:\n"
                f"  .venv/bin/python -m taskclient enqueue --outputs {outputs} "
                f"--emulator {emulator.address} --pipeline {first} --data '{{\"id\": 1}}'\n"
                f"handler log follows (Ctrl-C stops both):",
                flush=True,
            )
            _follow(handler.log, stop)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
