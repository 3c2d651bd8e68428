"""The soak's processing function (TASK_PROCESSOR=soak.processor:process), in the handlers.

It sleeps the payload's `sleepSeconds`, raises PermanentTaskError if `reject` is set, and
otherwise appends `<task name>` to $SOAK_RUNS_FILE (one file per handler incarnation) just
before returning: a run counts once the processor has returned (a run cut by SIGKILL before
that line leaves none). One write(2) of a short line to a file opened O_APPEND is not
interleaved with other writers'.
"""

import os
import time

from handler.task import PermanentTaskError, TaskRequest


def process(task: TaskRequest) -> None:
    payload = task.payload if isinstance(task.payload, dict) else {}
    sleep = payload.get("sleepSeconds", 0)
    if isinstance(sleep, int | float) and sleep > 0:
        time.sleep(sleep)
    if payload.get("reject"):
        raise PermanentTaskError("the soak asked for a rejection")
    descriptor = os.open(os.environ["SOAK_RUNS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{task.name}\n".encode())
    finally:
        os.close(descriptor)
