"""The task the client builds: URL, OIDC audience, body, headers, schedule, deadline, name."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import tasks_v2

from components.durations import Duration
from taskclient import Pipeline, TaskSpec, UsageError, build_task, task_id
from tests.app.helpers import pipeline_output

QUEUE = "projects/p/locations/us-central1/queues/orders"
URL = "https://orders-xyz-uc.a.run.app"


def as_datetime(task: tasks_v2.Task) -> datetime:
    # proto-plus returns Timestamp fields as datetimes; the stubs say Timestamp.
    value: object = task.schedule_time
    assert isinstance(value, datetime)
    return value


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline.model_validate(pipeline_output(QUEUE, URL))


def test_json_task_targets_service_with_explicit_audience(pipeline: Pipeline) -> None:
    task = build_task(pipeline, TaskSpec(payload={"id": 1}, path="/orders?x=1"))
    request = task.http_request
    assert request.url == URL + "/orders?x=1"
    assert request.oidc_token.service_account_email == pipeline.invoker_service_account
    # The audience is the service URL, not the task URL (which would fail with 401).
    assert request.oidc_token.audience == URL
    assert json.loads(request.body) == {"id": 1}
    assert request.headers["Content-Type"] == "application/json"
    assert task.dispatch_deadline == timedelta(seconds=600)
    assert tasks_v2.Task.pb(task).dispatch_deadline.ToJsonString() == "600s"
    assert task.name == ""  # unnamed: Cloud Tasks picks a random id


def test_bytes_payload_and_headers(pipeline: Pipeline) -> None:
    spec = TaskSpec(payload=b"\x00raw", headers={"X-Tenant": "acme"})
    request = build_task(pipeline, spec).http_request
    assert request.body == b"\x00raw"
    headers = dict(request.headers)
    assert headers.pop("traceparent").startswith("00-")  # tests/app/test_tracing_client.py
    assert headers == {"X-Tenant": "acme", "Content-Type": "application/octet-stream"}


def test_no_payload_sends_no_body(pipeline: Pipeline) -> None:
    request = build_task(pipeline, TaskSpec()).http_request
    assert request.body == b""
    assert "Content-Type" not in request.headers


def test_dedup_key_is_hashed_into_a_stable_task_id(pipeline: Pipeline) -> None:
    first = build_task(pipeline, TaskSpec(payload=1, dedup_key="order-42"))
    again = build_task(pipeline, TaskSpec(payload=2, dedup_key="order-42"))
    other = build_task(pipeline, TaskSpec(payload=1, dedup_key="order-43"))
    assert first.name == again.name == f"{QUEUE}/tasks/{task_id('order-42')}"
    assert first.name != other.name
    assert "order-42" not in first.name


def test_delay_and_schedule_time(pipeline: Pipeline) -> None:
    before = datetime.now(UTC)
    scheduled = as_datetime(build_task(pipeline, TaskSpec(delay=Duration.parse("5m"))))
    assert before + timedelta(minutes=5) <= scheduled <= datetime.now(UTC) + timedelta(minutes=5)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=29)
    assert as_datetime(build_task(pipeline, TaskSpec(schedule_time=at))) == at


def test_dispatch_deadline_override(pipeline: Pipeline) -> None:
    task = build_task(pipeline, TaskSpec(dispatch_deadline=Duration.parse("30s")))
    assert task.dispatch_deadline == timedelta(seconds=30)


def test_deadline_and_delay_are_exact_to_the_nanosecond(pipeline: Pipeline) -> None:
    """No float on the way: 15.000000001s stays 15 s and 1 ns in the request."""
    spec = TaskSpec(
        dispatch_deadline=Duration.parse("15.000000001s"), delay=Duration.parse("1.5ms")
    )
    before = time.time_ns()
    raw = tasks_v2.Task.pb(build_task(pipeline, spec))
    after = time.time_ns()
    assert (raw.dispatch_deadline.seconds, raw.dispatch_deadline.nanos) == (15, 1)
    assert before + 1_500_000 <= raw.schedule_time.ToNanoseconds() <= after + 1_500_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (TaskSpec(path="orders"), "--path: 'orders' must start with '/'"),
        (
            TaskSpec(dispatch_deadline=Duration.parse("5s")),
            "--deadline: 5s is outside Cloud Tasks' range of 15s to 1800s",
        ),
        (TaskSpec(dispatch_deadline=Duration.parse("1h")), "--deadline: 3600s is outside"),
        (TaskSpec(delay=Duration.parse("721h")), "--delay: 2595600s is more than Cloud Tasks' 30"),
        (TaskSpec(schedule_time=datetime(2030, 1, 1)), "--at: needs a timezone"),
        (
            TaskSpec(schedule_time=datetime(2030, 1, 1, tzinfo=UTC)),
            "--at: more than Cloud Tasks' 30 days ahead",
        ),
        (
            TaskSpec(delay=Duration.parse("1s"), schedule_time=datetime(2030, 1, 1, tzinfo=UTC)),
            "--delay/--at: give one of them, not both",
        ),
        (TaskSpec(dedup_key=""), "--dedup-key: must not be empty"),
        (TaskSpec(payload={1, 2}), "payload: not JSON-serializable"),
        (TaskSpec(headers={"Bad\nName": "x"}), "--header:"),
    ],
)
def test_bad_specs_are_refused_with_the_argument_named(
    pipeline: Pipeline, spec: TaskSpec, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        build_task(pipeline, spec)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("name", ["X-Replay-Of", "x-replay-of"])
def test_x_replay_of_is_reserved_for_replay(pipeline: Pipeline, name: str) -> None:
    # A task carrying it would share another task's idempotency record in the handler.
    with pytest.raises(UsageError, match=f"--header: {name} is reserved for `taskclient replay`"):
        build_task(pipeline, TaskSpec(payload={}, headers={name: "orders/t"}))
    task = build_task(pipeline, TaskSpec(payload={}, replay_of="orders/t"))
    assert dict(task.http_request.headers)["X-Replay-Of"] == "orders/t"
