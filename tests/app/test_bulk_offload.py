"""A bulk run onto a pipeline with a payload bucket: a body over the threshold is uploaded
(to a fake bucket) and its task carries the claim check; a failed upload fails that input
alone, before any request; a run stopping during an upload ends that input unsent."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from handler.payloads import CLAIM_CHECK_TYPE, ClaimCheck
from taskclient import Pipeline, TaskSpec, transport
from taskclient.bulk import BulkOutcome, BulkRun, Outcome
from tests.app.helpers import pipeline_output, run_async
from tests.app.test_bulk_run import QUEUE, Client, created

BUCKET = "orders-payloads"
PIPELINE = Pipeline.model_validate(
    {
        **pipeline_output(QUEUE, "https://orders-xyz-uc.a.run.app"),
        "payloadBucket": BUCKET,
        "payloadThreshold": 16,
    }
)
BIG = {"order": "x" * 40}  # its JSON is over the 16-byte threshold
SMALL = 7


@dataclass
class Bucket:
    """What google-cloud-storage's Client.bucket(...).blob(...) is asked to store."""

    fail: Exception | None = None
    release: threading.Event | None = None
    """When set, an upload waits for it (and for the run to stop first)."""
    uploads: dict[tuple[str, str], tuple[bytes, str, int]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def bucket(self, bucket: str) -> Bucket:
        self._bucket = bucket
        return self

    def blob(self, name: str) -> Blob:
        return Blob(self, self._bucket, name)


@dataclass
class Blob:
    store: Bucket
    bucket: str
    name: str

    def upload_from_string(
        self, body: bytes, *, content_type: str, if_generation_match: int, timeout: float
    ) -> None:
        self.store.threads.append(threading.current_thread())
        if self.store.release is not None:
            assert self.store.release.wait(30), "the run never stopped"
        if self.store.fail is not None:
            raise self.store.fail
        self.store.uploads[self.bucket, self.name] = (body, content_type, if_generation_match)


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Bucket:
    fake = Bucket()
    monkeypatch.setattr(transport, "storage_client", lambda pipeline: fake)
    return fake


def bulk(client: Client, specs: list[TaskSpec], **kwargs: object) -> list[BulkOutcome]:
    run = BulkRun(
        client,  # pyright: ignore[reportArgumentType]
        PIPELINE,
        concurrency=2,
        retry_deadline_s=30.0,
        call_timeout_s=20.0,
        **kwargs,  # pyright: ignore[reportArgumentType]
    )
    return run_async(run.run(specs))


def sent(client: Client) -> list[tasks_v2.Task]:
    tasks = [call["task"] for call in client.calls]
    return [task for task in tasks if isinstance(task, tasks_v2.Task)]


def test_a_body_over_the_threshold_goes_to_the_bucket_and_its_task_carries_the_check(
    bucket: Bucket,
) -> None:
    client = Client(created)
    outcomes = bulk(client, [TaskSpec(payload=BIG), TaskSpec(payload=SMALL)])
    assert [o.outcome for o in outcomes] == [Outcome.CREATED, Outcome.CREATED]
    body = json.dumps(BIG, separators=(",", ":")).encode()
    [((stored_in, name), (stored, content_type, generation))] = bucket.uploads.items()
    assert (stored_in, stored, content_type, generation) == (BUCKET, body, "application/json", 0)
    digest = hashlib.sha256(body).hexdigest()
    assert name.startswith(f"orders/{digest}-")
    tasks = {task.http_request.body: task for task in sent(client)}
    assert set(tasks) == {b"7", ClaimCheck(BUCKET, name, len(body), digest, content_type).to_json()}
    check = next(task for raw, task in tasks.items() if raw != b"7")
    assert check.http_request.headers["Content-Type"] == CLAIM_CHECK_TYPE
    assert ClaimCheck.parse(check.http_request.body).size == len(body)


def test_a_failed_upload_fails_its_input_alone_and_sends_nothing_for_it(bucket: Bucket) -> None:
    bucket.fail = exceptions.ServiceUnavailable("storage is down")
    client = Client(created)
    big, small = bulk(client, [TaskSpec(payload=BIG), TaskSpec(payload=SMALL)])
    assert (big.outcome, big.attempts) == (Outcome.FAILED, 0)
    assert big.error is not None
    assert big.error.startswith(f"payload upload to gs://{BUCKET}/orders/")
    assert big.error.endswith(" failed: 503 storage is down")
    assert small.outcome is Outcome.CREATED
    assert [task.http_request.body for task in sent(client)] == [b"7"]


def test_a_run_stopping_during_an_upload_ends_that_input_never_sent(bucket: Bucket) -> None:
    bucket.release = threading.Event()

    def told(outcome: BulkOutcome) -> None:
        if outcome.index == 0:
            bucket.release.set()  # pyright: ignore[reportOptionalMemberAccess]

    # Input 0's upload waits while input 1 is refused: the run stops (PERMISSION_DENIED).
    client = Client(lambda _n, _task: exceptions.PermissionDenied("no"))
    big, small = bulk(client, [TaskSpec(payload=BIG), TaskSpec(payload=SMALL)], on_outcome=told)
    for thread in bucket.threads:
        thread.join(30)
    assert (big.outcome, big.error, big.attempts) == (
        Outcome.FAILED,
        "stopped retrying: never sent",
        0,
    )
    assert (small.outcome, small.error) == (Outcome.FAILED, "PERMISSION_DENIED: no")
    assert [task.http_request.body for task in sent(client)] == [b"7"]
