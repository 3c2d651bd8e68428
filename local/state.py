"""One directory per stack for `make local`, and who is running it.

    build/local/<stack>/
      lock            flock()ed by the running `python -m local` for as long as it lives
      run.json        its pid and, once they are up, its children's pids, addresses and logs
      emulator.log, handler.log, pipelines.json

The lock, not the pid in run.json, says whether a run is live: the kernel releases it when its
holder dies however it dies, and a pid can be reused. A run.json without a lock holder is what
a run that could not clean up (SIGKILL, power loss) left behind: the next run takes over.
"""

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class AlreadyRunning(RuntimeError):
    """The stack's directory is locked by a live run: the message says which and how to stop it."""


@dataclass
class StackState:
    stack: str
    directory: Path
    stale: dict[str, object] | None
    """What a run that ended without cleaning up left in run.json, if any."""

    @property
    def run_file(self) -> Path:
        return self.directory / "run.json"

    def record(self, run: dict[str, object]) -> None:
        # Written whole and renamed, so a second run reading it never sees half a file.
        partial = self.run_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(run, indent=2), encoding="utf-8")
        partial.replace(self.run_file)


def _read_run(path: Path) -> dict[str, object]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def describe(run: dict[str, object]) -> str:
    """`pid N, ports A emulator, B handler` (ports only once the children are up)."""
    children = run.get("children")
    ports = (
        ", ".join(f"{child['port']} {name}" for name, child in children.items())
        if isinstance(children, dict) and children
        else "not yet known: starting"
    )
    return f"pid {run.get('pid', '?')}, ports {ports}"


@contextmanager
def claim(base: Path, stack: str) -> Iterator[StackState]:
    """Holds `base/stack` for this process; raises AlreadyRunning if a live run holds it."""
    directory = base / stack
    directory.mkdir(parents=True, exist_ok=True)
    # Opened non-inheritable (Python's default), so children never hold the lock.
    with (directory / "lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            run = _read_run(directory / "run.json")
            raise AlreadyRunning(
                f"stack {stack} is already running ({describe(run)}); stop it with Ctrl-C in"
                f" its terminal or `kill {run.get('pid', '<pid>')}`"
            ) from None
        state = StackState(stack, directory, _read_run(directory / "run.json") or None)
        state.record({"pid": os.getpid(), "stack": stack})
        try:
            yield state
        finally:
            state.run_file.unlink(missing_ok=True)
