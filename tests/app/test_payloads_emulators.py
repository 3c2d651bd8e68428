"""Claim checks end to end on the emulators: fake-gcs-server for the payload bucket, the Cloud
Tasks emulator, the handler, and (for dead letters and replay) Google's Pub/Sub emulator.
5 MB bodies, five times Cloud Tasks' task size limit, reach the processor byte for byte; an
altered or missing object is rejected once; a rejected one is dead-lettered by reference and
replayed byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage, tasks_v2
from google.pubsub_v1 import SubscriberClient
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from components.durations import Duration
from handler.payloads import CLAIM_CHECK_TYPE, ClaimCheck
from local.processes import (
    Child,
    gcloud_available,
    start_handler,
    start_storage_emulator,
)
from taskclient.bulk import Outcome
from taskclient.client import TaskClient
from taskclient.pipelines import Pipeline
from taskclient.task_builder import MAX_TASK_BYTES, TaskSpec
from tests.app.helpers import (
    MAX_ATTEMPTS,
    dead_letter_topic,
    pipeline_output,
    task_lines,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)

BUCKET = "orders-payloads-test"
BIG = os.urandom(5 * 1024 * 1024)
TOPIC = "projects/test-project/topics/payload-dead-letters"
SUBSCRIPTION = "projects/test-project/subscriptions/payload-dead-letters"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    child = start_storage_emulator(tmp_path_factory.mktemp("gcs") / "gcs.log")
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture(scope="module")
def bucket(gcs: Child) -> Iterator[storage.Bucket]:
    """The payload bucket, through a client of the test's own (full access, unlike the
    enqueuer's create-only and the handler's read-only grants in the cloud)."""
    client = storage.Client(
        project="test-project",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://{gcs.address}"},
    )
    yield client.create_bucket(BUCKET)


@pytest.fixture(autouse=True)
def storage_env(gcs: Child, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client under test finds the emulator as google-cloud-storage does."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{gcs.address}")


def handler_env(gcs: Child, **extra: str) -> dict[str, str]:
    return {
        "TASK_PROCESSOR": "tests.app.payload_processor:process",
        "TASK_PAYLOAD_BUCKET": BUCKET,
        "STORAGE_EMULATOR_HOST": f"http://{gcs.address}",
        "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        **extra,
    }


@pytest.fixture(scope="module")
def payload_handler(tmp_path_factory: pytest.TempPathFactory, gcs: Child) -> Iterator[Child]:
    log = tmp_path_factory.mktemp("handler") / "handler.log"
    child = start_handler(log, env=handler_env(gcs))
    try:
        yield child
    finally:
        child.stop()


def client_for(queue: str, handler: Child, emulator: Child, **extra: object) -> TaskClient:
    entry = {**pipeline_output(queue, f"http://{handler.address}"), "payloadBucket": BUCKET}
    return TaskClient(
        {"orders": Pipeline.model_validate({**entry, **extra})}, emulator=emulator.address
    )


def finished(handler: Child, task_name: str | None, status: str = "done") -> dict[str, object]:
    assert task_name
    [line] = wait_for(
        lambda: (
            [line for line in task_lines(handler, task_name) if line["status"] == status] or None
        ),
        f"task {task_name} to be {status}",
    )
    return line


def result_of(line: dict[str, object]) -> dict[str, object]:
    result = line["result"]
    assert isinstance(result, dict)
    return result


def objects(bucket: storage.Bucket, queue: str) -> list[storage.Blob]:
    return list(bucket.list_blobs(prefix=queue.rsplit("/", 1)[-1] + "/"))


def test_a_5mb_enqueue_is_offloaded_and_reaches_the_processor_byte_for_byte(
    emulator: Child, payload_handler: Child, queue: str, bucket: storage.Bucket
) -> None:
    with client_for(queue, payload_handler, emulator) as client:
        result = client.enqueue("orders", TaskSpec(payload=BIG, path="/orders/import"))
    done = finished(payload_handler, result.task_name)
    assert done["result"] == {
        "bytes": len(BIG),
        "sha256": hashlib.sha256(BIG).hexdigest(),
        "contentType": "application/octet-stream",  # the original type, not the reference's
        "replayOf": None,
    }
    [stored] = objects(bucket, queue)
    assert str(stored.name).startswith(
        f"{queue.rsplit('/', 1)[-1]}/{hashlib.sha256(BIG).hexdigest()}-"
    )
    assert stored.size == len(BIG)


def test_bulk_offloads_the_5mb_body_only_and_both_arrive_byte_for_byte(
    emulator: Child, payload_handler: Child, queue: str, bucket: storage.Bucket
) -> None:
    small = {"id": "small"}
    with client_for(queue, payload_handler, emulator) as client:
        outcomes = client.enqueue_many(
            "orders", [TaskSpec(payload=BIG), TaskSpec(payload=small)], concurrency=2
        )
    assert [o.outcome for o in outcomes] == [Outcome.CREATED, Outcome.CREATED]
    big_done = finished(payload_handler, outcomes[0].task_name)
    small_done = finished(payload_handler, outcomes[1].task_name)
    assert result_of(big_done)["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert result_of(big_done)["bytes"] == len(BIG)
    small_body = json.dumps(small, separators=(",", ":")).encode()
    assert result_of(small_done)["sha256"] == hashlib.sha256(small_body).hexdigest()
    assert result_of(small_done)["contentType"] == "application/json"
    assert len(objects(bucket, queue)) == 1  # the small body went in its task


def test_a_threshold_offloads_bodies_that_would_fit_a_task(
    emulator: Child, payload_handler: Child, queue: str, bucket: storage.Bucket
) -> None:
    body = b"x" * 2_000
    with client_for(queue, payload_handler, emulator, payloadThreshold=1_000) as client:
        result = client.enqueue("orders", TaskSpec(payload=body))
    assert result_of(finished(payload_handler, result.task_name))["bytes"] == 2_000
    assert len(objects(bucket, queue)) == 1


def test_without_a_bucket_a_5mb_body_is_refused_before_anything_is_sent(
    emulator: Child, payload_handler: Child, queue: str, admin: tasks_v2.CloudTasksClient
) -> None:
    pipeline = Pipeline.model_validate(pipeline_output(queue, f"http://{payload_handler.address}"))
    with (
        TaskClient({"orders": pipeline}, emulator=emulator.address) as client,
        pytest.raises(ValueError, match="enable `payloads` on the pipeline"),
    ):
        client.enqueue("orders", TaskSpec(payload=BIG))
    assert list(admin.list_tasks(parent=queue)) == []


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda blob: blob.upload_from_string(b"tampered"), "object altered (8 bytes"),
        (lambda blob: blob.upload_from_string(b"\0" * len(BIG)), "object altered (sha256 "),
        (lambda blob: blob.delete(), "object missing"),
    ],
    ids=["shorter", "same-size", "deleted"],
)
def test_an_altered_or_missing_object_is_rejected_once_with_the_reason(
    emulator: Child,
    payload_handler: Child,
    queue: str,
    bucket: storage.Bucket,
    tamper: object,
    reason: str,
) -> None:
    # Delivered in 2 s: time to tamper with the object first.
    spec = TaskSpec(payload=BIG, delay=Duration.of_seconds(2))
    with client_for(queue, payload_handler, emulator) as client:
        result = client.enqueue("orders", spec)
    [stored] = objects(bucket, queue)
    tamper(stored)  # pyright: ignore[reportCallIssue]
    rejected = finished(payload_handler, result.task_name, "rejected")
    assert reason in str(rejected["reason"])
    assert f"gs://{BUCKET}/{stored.name}" in str(rejected["reason"])
    # Answered 200: not retried, so one line for the task, the rejection.
    wait_for(lambda: True if task_lines(payload_handler, result.task_name) else None, "lines")
    assert [line["status"] for line in task_lines(payload_handler, result.task_name)] == [
        "rejected"
    ]


def test_a_reference_to_another_bucket_is_rejected(
    emulator: Child, payload_handler: Child, queue: str, bucket: storage.Bucket
) -> None:
    check = ClaimCheck("someone-elses-bucket", "o", 1, "0" * 64, "text/plain")
    spec = TaskSpec(payload=check.to_json(), headers={"Content-Type": CLAIM_CHECK_TYPE})
    with client_for(queue, payload_handler, emulator) as client:
        result = client.enqueue("orders", spec)
    rejected = finished(payload_handler, result.task_name, "rejected")
    assert "not in this pipeline's payload bucket orders-payloads-test" in str(rejected["reason"])


@pytest.fixture(scope="module")
def subscription(pubsub: Child) -> Iterator[str]:
    with dead_letter_topic(pubsub, TOPIC, SUBSCRIPTION) as name:
        yield name


def dead_letters(pubsub: Child) -> list[tuple[bytes, dict[str, str]]]:
    """The messages waiting, each handed straight back."""
    channel = grpc.insecure_channel(pubsub.address)
    try:
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=10)
        ack_ids = [m.ack_id for m in pulled.received_messages]
        if ack_ids:
            subscriber.modify_ack_deadline(
                subscription=SUBSCRIPTION, ack_ids=ack_ids, ack_deadline_seconds=0
            )
        return [(m.message.data, dict(m.message.attributes)) for m in pulled.received_messages]
    finally:
        channel.close()


def test_a_rejected_5mb_task_is_dead_lettered_by_reference_and_replayed_byte_for_byte(
    tmp_path: Path,
    emulator: Child,
    gcs: Child,
    pubsub: Child,
    subscription: str,
    queue: str,
    bucket: storage.Bucket,
) -> None:
    assert gcloud_available()
    env = handler_env(gcs, TASK_DEAD_LETTER_TOPIC=TOPIC, PUBSUB_EMULATOR_HOST=pubsub.address)
    handler = start_handler(tmp_path / "handler.log", env=env)
    try:
        entry = {
            **pipeline_output(queue, f"http://{handler.address}"),
            "payloadBucket": BUCKET,
            "deadLetterTopic": TOPIC,
            "deadLetterSubscription": SUBSCRIPTION,
        }
        pipeline = Pipeline.model_validate(entry)
        with TaskClient({"orders": pipeline}, emulator=emulator.address) as client:
            spec = TaskSpec(payload=BIG, headers={"X-Reject-First": "yes"})
            original = client.enqueue("orders", spec)
            finished(handler, original.task_name, "rejected")

            # The dead letter holds the reference, not 5 MB.
            [(data, attributes)] = wait_for(lambda: dead_letters(pubsub) or None, "dead letter")
            assert attributes["contentType"] == CLAIM_CHECK_TYPE
            check = ClaimCheck.parse(data)
            assert (check.size, check.sha256) == (len(BIG), hashlib.sha256(BIG).hexdigest())
            assert len(data) < 1_000 < MAX_TASK_BYTES

            [replayed] = client.replay("orders", pubsub_emulator=pubsub.address)
        assert replayed.outcome.outcome is Outcome.CREATED
        done = finished(handler, replayed.outcome.task_name)
        assert done["result"] == {
            "bytes": len(BIG),
            "sha256": hashlib.sha256(BIG).hexdigest(),
            "contentType": "application/octet-stream",
            "replayOf": f"{queue.rsplit('/', 1)[-1]}/{original.task_name.rsplit('/', 1)[-1]}",
        }
        assert len(objects(bucket, queue)) == 1  # the replay re-sent the reference only
    finally:
        handler.stop()
