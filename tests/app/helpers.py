"""Shared by the application tests: stack output entries, waiting, reading the handler's log,
and `python -m local` runs with the processes they start."""

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from local.processes import Child, gcloud_available, group_members

T = TypeVar("T")

# The emulator retries a failed delivery this often, and the handler knows it, so the last
# attempt is dead-lettered: 1 attempt + 2 retries.
MAX_RETRIES = 2
MAX_ATTEMPTS = MAX_RETRIES + 1
# The handler's GOOGLE_CLOUD_PROJECT in tests: its log lines' trace field names it.
HANDLER_PROJECT = "test-project"


def require_gcloud(what: str) -> None:
    """At a test module's top: skip it loudly where the Google Cloud CLI's emulators are
    missing, but never under CI=true, where a missing emulator fails the run."""
    if gcloud_available():
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs the Google Cloud CLI's emulators (gcloud and java on PATH)")
    pytest.skip(
        f"SKIPPED LOUDLY: gcloud or java missing, {what} did not run", allow_module_level=True
    )


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


def run_async(work: Coroutine[object, object, T]) -> T:
    """Runs `work` on a private event loop: asyncio.run() would leave the thread without a
    current loop, and the Pulumi tests later in the same session ask for one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        loop.close()


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


# A stack of two pipelines with different locations and retry limits, for `python -m local`.
LOCAL_STACK = """
config:
  gcp:project: acme-local
  gcp:region: us-central1
  cloudrun-tasks:pipelines:
    orders:
      dispatchDeadline: 300s
      service: {image: us-docker.pkg.dev/cloudrun/container/hello}
      queue: {maxAttempts: 5}
    reports:
      location: europe-west1
      service: {image: us-docker.pkg.dev/cloudrun/container/hello}
      queue: {maxAttempts: 3}
"""


def listening_addresses(port: int) -> list[str]:
    found: list[str] = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for row in table.read_text().splitlines()[1:]:
            fields = row.split()
            address, _, row_port = fields[1].partition(":")
            if int(row_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody reaped yet (orphans may stay zombies
    in a container whose init doesn't reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass
class LocalRun:
    """One `python -m local` started by a test: its output file and its stack's directory."""

    process: subprocess.Popen[bytes]
    output: Path
    directory: Path
    children: dict[str, dict[str, int]] = field(default_factory=dict)
    """name -> {"pid", "port"} from run.json once started; each pid leads its process group."""

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_started(self) -> str:
        def started() -> str | None:
            text = self.text()
            if "handler log follows" in text:
                return text
            if self.process.poll() is not None:  # no point waiting out the timeout
                pytest.fail(f"exited with {self.process.returncode} instead:\n{text}")
            return None

        # The gcloud emulators' JVMs may take most of local.processes' 90 s to start.
        text = wait_for(
            started, f"`python -m local` to start (output: {self.output})", timeout_s=120
        )
        run = json.loads((self.directory / "run.json").read_text())
        self.children = {
            name: {"pid": child["pid"], "port": child["port"]}
            for name, child in run["children"].items()
        }
        return text

    def kill_everything(self) -> None:
        """Whatever a test left running: the run's group and its children's groups."""
        groups = [self.process.pid, *(child["pid"] for child in self.children.values())]
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def printed_enqueue(text: str) -> list[str]:
    """The enqueue command `python -m local` printed, as argv."""
    return shlex.split(next(line for line in text.splitlines() if "-m taskclient" in line))


# The bound on how long a child may outlive a killed `make local`.
GONE_WITHIN_S = 5.0


def processes_of(local: LocalRun) -> list[int]:
    """Every live process `local` started: each child's process group (handler: + worker)."""
    return [pid for child in local.children.values() for pid in group_members(child["pid"])]


def wait_all_gone(pids: list[int], ports: list[int], what: str) -> None:
    wait_for(
        lambda: (
            True
            if not any(alive(pid) for pid in pids)
            and not any(listening_addresses(port) for port in ports)
            else None
        ),
        what,
        timeout_s=GONE_WITHIN_S,
    )


@contextlib.contextmanager
def dead_letter_topic(pubsub: Child, topic: str, subscription: str) -> Iterator[str]:
    """TOPIC and its SUBSCRIPTION on the Pub/Sub emulator, as a pipeline's dead letters have
    them; yields the subscription's name and deletes both after."""
    channel = grpc.insecure_channel(pubsub.address)
    publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    try:
        yield subscription
    finally:
        subscriber.delete_subscription(subscription=subscription)
        publisher.delete_topic(topic=topic)
        channel.close()
