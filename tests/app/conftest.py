"""Fixtures for the application tests: pipelines, and the emulator + handler on loopback.

Both processes are started once per session on free 127.0.0.1 ports and stopped (with their
process groups) at the end; each test gets its own queue so tests can't see each other's tasks.
"""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from local.processes import REPO, Child, start_emulator, start_handler, start_pubsub_emulator
from tests.app.helpers import (
    HANDLER_PROJECT,
    LOCAL_STACK,
    MAX_ATTEMPTS,
    MAX_RETRIES,
    LocalRun,
    pipeline_output,
    require_gcloud,
)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("processes")


@pytest.fixture(scope="session")
def emulator(logs_dir: Path) -> Iterator[Child]:
    child = start_emulator(logs_dir / "emulator.log", max_retries=MAX_RETRIES)
    try:
        yield child
    finally:
        assert child.stop() is not None
        assert child.process.poll() is not None


@pytest.fixture(scope="session")
def pubsub(logs_dir: Path) -> Iterator[Child]:
    """One Pub/Sub emulator for the tests that dead-letter and replay; each test file keeps
    its own topic and subscription on it (helpers.dead_letter_topic)."""
    require_gcloud("the dead letter and replay tests on the Pub/Sub emulator")
    child = start_pubsub_emulator(logs_dir / "pubsub.log")
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture(scope="session")
def handler(logs_dir: Path) -> Iterator[Child]:
    env = {"TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS), "GOOGLE_CLOUD_PROJECT": HANDLER_PROJECT}
    child = start_handler(logs_dir / "handler.log", env=env)
    try:
        yield child
    finally:
        child.stop()
        assert child.process.poll() is not None


@pytest.fixture(scope="session")
def admin(emulator: Child) -> Iterator[tasks_v2.CloudTasksClient]:
    """A plain client for test set-up (creating queues) and inspection (listing tasks)."""
    channel = grpc.insecure_channel(emulator.address)
    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    yield client
    client.transport.close()


@pytest.fixture
def queue(admin: tasks_v2.CloudTasksClient) -> str:
    """A fresh queue on the emulator for this test."""
    name = f"projects/test-project/locations/us-central1/queues/q-{uuid.uuid4().hex[:12]}"
    admin.create_queue(parent=name.rsplit("/", 2)[0], queue=tasks_v2.Queue(name=name))
    return name


@pytest.fixture
def outputs_file(tmp_path: Path, queue: str, handler: Child) -> Path:
    """A file as `pulumi stack output pipelines --json` writes it, pointing at the local loop."""
    path = tmp_path / "pipelines.json"
    output = {"orders": pipeline_output(queue, f"http://{handler.address}")}
    path.write_text(json.dumps(output), encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project directory with Pulumi.dev.yaml and Pulumi.qa.yaml (the same pipelines)."""
    (tmp_path / "Pulumi.yaml").write_text("name: cloudrun-tasks\nruntime: python\n")
    for stack in ("dev", "qa"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(LOCAL_STACK)
    return tmp_path


@pytest.fixture
def start_local(root: Path, tmp_path: Path) -> Iterator[Callable[..., LocalRun]]:
    """Starts `python -m local` (state under tmp_path/state) and waits until it is serving;
    at the end kills whatever is left of every run, children included, pass or fail.
    `gcloud`: with the Firestore and Pub/Sub emulators where gcloud is installed (half a
    minute more to start); otherwise --in-memory."""
    runs: list[LocalRun] = []

    def start(
        stack: str = "dev",
        *,
        env: Mapping[str, str] | None = None,
        gcloud: bool = False,
        args: Sequence[str] = (),
    ) -> LocalRun:
        state = tmp_path / "state"
        output = tmp_path / f"local-{stack}-{len(runs)}.out"
        command = [sys.executable, "-m", "local", "--stack", stack, "--root", str(root), *args]
        command += [] if gcloud else ["--in-memory"]
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [*command, "--state", str(state)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        run = LocalRun(process, output, state / stack)
        runs.append(run)
        run.wait_started()
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.kill_everything()
