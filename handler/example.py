"""The shipped processing function: echoes the task, and fails on request (for tests).

Controls, read from a JSON object payload:
  "failTimes": N      fail with a retryable error while X-CloudTasks-TaskRetryCount < N
  "failAlways": true  fail with a retryable error on every attempt
  "reject": true      fail permanently (dead-lettered, not retried)
  "sleepSeconds": S   take S seconds (to watch graceful shutdown finish the work)
"""

import logging
import time

from handler.logs import is_credential
from handler.task import PermanentTaskError, TaskRequest

logger = logging.getLogger("handler.example")

# Headers the echo leaves out: the task's identity is logged in its own fields, and
# credentials (is_credential: X-Api-Key, X-Auth-Token...) are never echoed nor logged.
_NOT_ECHOED = ("x-cloudtasks-", "x-forwarded-", "x-cloud-trace-context")


def process(task: TaskRequest) -> dict[str, object]:
    controls = task.payload if isinstance(task.payload, dict) else {}
    if controls.get("reject"):
        raise PermanentTaskError("payload asked to be rejected")
    if controls.get("failAlways"):
        raise RuntimeError("payload asked to fail on every attempt")
    fail_times = controls.get("failTimes")
    if isinstance(fail_times, int) and task.retry_count < fail_times:
        raise RuntimeError(f"payload asked to fail {fail_times} times")
    sleep = controls.get("sleepSeconds")
    if isinstance(sleep, int | float) and sleep > 0:
        # Logged so that a test knows the work has started before it stops the server.
        logger.info({"message": "working", "taskName": task.name, "seconds": sleep})
        time.sleep(sleep)
    headers = {
        name: value
        for name, value in task.headers.items()
        if name.lower().startswith("x-")
        and not name.lower().startswith(_NOT_ECHOED)
        and not is_credential(name)
    }
    return {"echo": task.payload, "path": task.path, "headers": headers}
