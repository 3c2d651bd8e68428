"""Bulk enqueue under failure: lost responses are retried without duplicates (de-dup keys make
the retry safe), and permanent errors are reported per task, none dropped."""

import asyncio
import uuid
import warnings
from collections.abc import Iterator

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from local.processes import Child, start_emulator
from taskclient import Pipeline, TaskClient, TaskSpec
from tests.app.helpers import pipeline_output

pytestmark = pytest.mark.timeout(120)

FAIL_EVERY = 3  # every third CreateTask response is lost after the task was created


@pytest.fixture(scope="module")
def lossy_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    log = tmp_path_factory.mktemp("lossy") / "emulator.log"
    child = start_emulator(log, fail_every=FAIL_EVERY)
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture
def paused_queue(lossy_emulator: Child) -> Iterator[tuple[str, tasks_v2.CloudTasksClient]]:
    """A paused queue (nothing is dispatched: tasks stay countable) and a client to inspect it."""
    channel = grpc.insecure_channel(lossy_emulator.address)
    admin = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    name = f"projects/p/locations/us-central1/queues/lossy-{uuid.uuid4().hex[:8]}"
    admin.create_queue(parent=name.rsplit("/", 2)[0], queue=tasks_v2.Queue(name=name))
    admin.pause_queue(name=name)
    yield name, admin
    admin.transport.close()


def client_for(queue: str, emulator: Child) -> TaskClient:
    # The service URL is never called: the queue is paused.
    pipeline = Pipeline.model_validate(pipeline_output(queue, "http://127.0.0.1:9"))
    return TaskClient({"orders": pipeline}, emulator=emulator.address, retry_deadline_s=30)


def test_lost_responses_are_retried_into_exactly_one_task_each(
    lossy_emulator: Child, paused_queue: tuple[str, tasks_v2.CloudTasksClient]
) -> None:
    queue, admin = paused_queue
    specs = [TaskSpec(payload={"id": n}, dedup_key=f"order-{n}") for n in range(60)]
    seen: list[int] = []
    with client_for(queue, lossy_emulator) as client:
        outcomes = client.enqueue_many(
            "orders", specs, concurrency=8, on_outcome=lambda o: seen.append(o.index)
        )
    assert sorted(seen) == list(range(60))
    assert [o.index for o in outcomes] == list(range(60))
    assert all(o.error is None and o.result is not None for o in outcomes)
    results = [o.result for o in outcomes if o.result is not None]
    retried = [r for r in results if r.attempts > 1]
    # A third of the responses were lost: those were retried and found ALREADY_EXISTS.
    assert len(retried) == 60 // FAIL_EVERY
    assert all(not r.created for r in retried)
    assert all(r.created for r in results if r.attempts == 1)
    stored = {task.name for task in admin.list_tasks(parent=queue)}
    assert stored == {r.task_name for r in results}
    assert len(stored) == 60


def test_permanent_errors_are_reported_per_task_not_retried(lossy_emulator: Child) -> None:
    missing = "projects/p/locations/us-central1/queues/does-not-exist"
    specs = [TaskSpec(payload={"id": n}) for n in range(5)] + [TaskSpec(path="no-slash")]
    with client_for(missing, lossy_emulator) as client:
        outcomes = client.enqueue_many("orders", specs, concurrency=4)
    assert len(outcomes) == 6
    assert all(o.result is None for o in outcomes)
    errors = [o.error or "" for o in outcomes]
    assert all(e.startswith("FAILED_PRECONDITION: Queue") for e in errors[:5])
    assert errors[5] == "--path: 'no-slash' must start with '/'"


def test_bulk_refuses_zero_concurrency(lossy_emulator: Child) -> None:
    client = client_for("projects/p/locations/l/queues/q", lossy_emulator)
    with client, pytest.raises(ValueError, match="--concurrency: 0 must be at least 1"):
        client.enqueue_many("orders", [TaskSpec()], concurrency=0)


def test_bulk_leaves_the_threads_event_loop_alone(
    lossy_emulator: Child, paused_queue: tuple[str, tasks_v2.CloudTasksClient]
) -> None:
    # Code running after a bulk enqueue in the same thread (Pulumi's runtime, for one) still
    # gets an event loop from get_event_loop(); asyncio.run() would leave none behind.
    queue, _ = paused_queue
    with client_for(queue, lossy_emulator) as client:
        client.enqueue_many("orders", [TaskSpec(payload=1, dedup_key="loop-check")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loop = asyncio.get_event_loop()
    assert not loop.is_closed()
