"""The enqueue client from the wheel: `pip install "cloudrun-tasks[client]"` gives
`import taskclient` (and the handler package whose claim-check and tick formats it shares),
which imports and enqueues into the Cloud Tasks emulator from a fresh virtualenv outside
the repository."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local.processes import Child, start_emulator
from tests.package.conftest import ROOT, outside
from tests.package.test_wheel import imported_distributions

CLIENT_PACKAGES = ("taskclient", "handler")
ACCOUNTS = "test-project.iam.gserviceaccount.com"


def requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = Parser().parsestr(archive.read(metadata).decode())
    return [Requirement(r) for r in headers.get_all("Requires-Dist", [])]


def test_the_client_and_handler_ship_in_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in CLIENT_PACKAGES:
        expected = {f"{package}/{p.name}" for p in (ROOT / package).glob("*.py")}
        assert expected and expected - names == set()


def test_every_import_of_the_client_is_declared_in_the_extra(wheel: Path) -> None:
    declared = {
        canonicalize_name(r.name)
        for r in requirements(wheel)
        if r.marker is None or r.marker.evaluate({"extra": "client"})
    }
    declared |= {"pydantic-core"}
    for package in CLIENT_PACKAGES:
        imported = imported_distributions(ROOT / package)
        undeclared = {
            top: dists
            for top, dists in imported.items()
            if top not in ("components", *CLIENT_PACKAGES) and not dists & declared
        }
        assert undeclared == {}, package
        # components/ is reached only through taskclient/shared.py, by either name.
        assert "components" not in imported or package == "taskclient"


def test_the_extras_ranges_accept_the_locked_versions(wheel: Path) -> None:
    extra = [r for r in requirements(wheel) if r.marker is not None]
    assert len(extra) >= 10
    refused = {r.name: version(r.name) for r in extra if not r.specifier.contains(version(r.name))}
    assert refused == {}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    child = start_emulator(tmp_path_factory.mktemp("emulator") / "emulator.log", max_retries=0)
    try:
        yield child
    finally:
        child.stop()


ENQUEUE = """
import json, sys
from pathlib import Path
import taskclient
from taskclient import TaskClient, TaskSpec, load_file
from taskclient.shared import Duration
client = TaskClient(load_file(Path(sys.argv[2])), emulator=sys.argv[1])
# An hour ahead: the task stays in the queue to be seen.
spec = TaskSpec(payload={"order": 42}, dedup_key="order-42", delay=Duration.of_seconds(3600))
first, again = client.enqueue("orders", spec), client.enqueue("orders", spec)
print(json.dumps({
    "taskclient": taskclient.__file__,
    "durations": Duration.__module__,
    "repository": "components" in sys.modules,
    "first": [first.task_name, first.created],
    "again": [again.task_name, again.created],
}))
"""


def test_taskclient_enqueues_from_a_fresh_virtualenv(
    installed: Path, emulator: Child, tmp_path: Path
) -> None:
    queue = f"projects/test-project/locations/us-central1/queues/q-{uuid.uuid4().hex[:12]}"
    admin = tasks_v2.CloudTasksClient(
        transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(emulator.address))
    )
    try:
        admin.create_queue(parent=queue.rsplit("/", 2)[0], queue=tasks_v2.Queue(name=queue))
        outputs = tmp_path / "pipelines.json"
        outputs.write_text(
            json.dumps(
                {
                    "orders": {
                        "queue": queue,
                        "queueName": queue.rsplit("/", 1)[-1],
                        "location": "us-central1",
                        "serviceName": "orders",
                        "serviceUrl": "http://127.0.0.1:9",
                        "invokerServiceAccount": f"orders-invoker@{ACCOUNTS}",
                        "runtimeServiceAccount": f"orders-runtime@{ACCOUNTS}",
                        "dispatchDeadline": "600s",
                    }
                }
            )
        )
        result = outside(installed, "-c", ENQUEUE, emulator.address, str(outputs), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        run = json.loads(result.stdout)
        assert "/site-packages/taskclient/" in run["taskclient"]
        assert (run["durations"], run["repository"]) == ("cloudrun_tasks.durations", False)
        name, created = run["first"]
        assert created is True and name.startswith(queue + "/tasks/")
        # The same de-dup key: the same task, reported as not created again.
        assert run["again"] == [name, False]
        tasks = [task.name for task in admin.list_tasks(parent=queue)]
        assert tasks == [name]
    finally:
        admin.transport.close()
