"""The soak's processing function (TASK_PROCESSOR=soak.processor:process), in the handlers.

It reserves the task's effect with its fencing token, sleeps the payload's `sleepSeconds`,
raises PermanentTaskError if `reject` is set, and otherwise commits the effect and appends
`<task name> <fencing token> <committed|refused>` to $SOAK_RUNS_FILE (one file per handler
incarnation) just before returning: a run counts once the processor has returned (a run
cut by SIGKILL before that line leaves none). One write(2) of a short line to a file opened
O_APPEND is not interleaved with other writers'.

The effect is what a processor's own store does with the task's idempotency key and fencing
token (handler/context.py, docs/guarantees.md): a file per task under $SOAK_EFFECTS_DIR,
changed under an exclusive lock. `reserve` notes the highest token that started work on the
task; `commit` applies the effect only if none was applied yet and no newer holder has
reserved since (a stale holder's late write is refused). However often a task runs, its
effect is applied once.
"""

import fcntl
import os
import time
from pathlib import Path

from handler.context import current
from handler.task import PermanentTaskError, TaskRequest


class Effects:
    """One file per task: `<highest reserved token> <committed token or ->`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _update(self, name: str, token: int, commit: bool) -> bool:
        descriptor = os.open(self.directory / name, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            text = os.read(descriptor, 64).decode().split()
            highest = int(text[0]) if text else 0
            committed = text[1] if len(text) > 1 else "-"
            if commit:
                ok = committed == "-" and token >= highest
                if ok:
                    committed = str(token)
            else:
                ok = token >= highest
                highest = max(highest, token)
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{highest} {committed}".encode())
            return ok
        finally:
            os.close(descriptor)

    def reserve(self, name: str, token: int) -> bool:
        return self._update(name, token, commit=False)

    def commit(self, name: str, token: int) -> bool:
        return self._update(name, token, commit=True)


def process(task: TaskRequest) -> None:
    payload = task.payload if isinstance(task.payload, dict) else {}
    token = current().fencing_token or 0
    effects = Effects(Path(os.environ["SOAK_EFFECTS_DIR"]))
    effects.reserve(task.name, token)
    sleep = payload.get("sleepSeconds", 0)
    if isinstance(sleep, int | float) and sleep > 0:
        time.sleep(sleep)
    if payload.get("reject"):
        raise PermanentTaskError("the soak asked for a rejection")
    outcome = "committed" if effects.commit(task.name, token) else "refused"
    descriptor = os.open(os.environ["SOAK_RUNS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{task.name} {token} {outcome}\n".encode())
    finally:
        os.close(descriptor)
