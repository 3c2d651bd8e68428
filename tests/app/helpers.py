"""Shared by the application tests: stack output entries, waiting, reading the handler's log."""

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from local.processes import Child

T = TypeVar("T")

# The emulator retries a failed delivery this often, and the handler knows it, so the last
# attempt is dead-lettered: 1 attempt + 2 retries.
MAX_RETRIES = 2
MAX_ATTEMPTS = MAX_RETRIES + 1


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pipeline_output(queue: str, service_url: str) -> dict[str, object]:
    """One entry of the stack output `pipelines`, shaped as the Pulumi program exports it."""
    queue_id = queue.rsplit("/", 1)[-1]
    return {
        "queue": queue,
        "queueName": queue_id,
        "location": queue.split("/")[3],
        "serviceName": "orders",
        "serviceUrl": service_url,
        "invokerServiceAccount": "orders-invoker@test-project.iam.gserviceaccount.com",
        "runtimeServiceAccount": "orders-runtime@test-project.iam.gserviceaccount.com",
        "dispatchDeadline": "600s",
    }


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 30.0) -> T:
    """Polls until `probe` returns something; fails the test (not hangs) if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


def task_lines(handler: Child, task_name: str) -> list[dict[str, object]]:
    """The handler's per-task log lines for one task (short task id), in order."""
    short = task_name.rsplit("/", 1)[-1]
    return [
        line
        for line in handler.log_lines()
        if line.get("taskName") == short and "status" in line and not line.get("deadLetter")
    ]
