"""The task builder at its limits: each refusal's exact message, the edges of Cloud Tasks'
ranges (accepted at the limit, refused past it), and the headers and body bytes it sends."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import tasks_v2

from components.durations import Duration
from taskclient import Pipeline, TaskSpec, UsageError, build_task, task_id
from taskclient.shared import MAX_TASK_BYTES
from taskclient.task_builder import build_task_unchecked
from tests.app.helpers import pipeline_output

QUEUE = "projects/p/locations/us-central1/queues/orders"
URL = "https://orders-xyz-uc.a.run.app"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PIPELINE = Pipeline.model_validate(pipeline_output(QUEUE, URL))


def refusal(spec: TaskSpec, pipeline: Pipeline = PIPELINE) -> str:
    with pytest.raises(UsageError) as raised:
        build_task(pipeline, spec)
    return str(raised.value)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X:Y": "v"}, "--header: 'X:Y' is not a valid header; use 'Name: value'"),
        ({"": "v"}, "--header: '' is not a valid header; use 'Name: value'"),
        ({"X-A": "v\r\nX-B: w"}, "--header: 'X-A' is not a valid header; use 'Name: value'"),
        ({"X-A\n": "v"}, "--header: 'X-A\\n' is not a valid header; use 'Name: value'"),
        ({"x-replay-of": "q/t"}, "--header: x-replay-of is reserved for `taskclient replay`"),
        ({"tracestate": "a=b"}, "--header: tracestate needs a traceparent header beside it"),
        (
            {"traceparent": "00-zz-b7ad6b7169203331-01"},
            "--header: traceparent '00-zz-b7ad6b7169203331-01' is not a valid W3C traceparent"
            " (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>, ids not all 0)",
        ),
        (
            {"TraceParent": PARENT, "TraceState": "=bad="},
            "--header: tracestate '=bad=' is not a valid W3C tracestate (comma-separated"
            " key=value members)",
        ),
    ],
)
def test_bad_headers_are_refused_with_these_words(headers: dict[str, str], message: str) -> None:
    assert refusal(TaskSpec(headers=headers)) == message


def test_given_trace_headers_in_any_case_are_the_tasks_and_others_pass_as_given() -> None:
    spec = TaskSpec(
        payload={"a": [1, 2]},
        headers={"TRACEPARENT": PARENT, "TraceState": "vendor=x", "X-Tenant": "acme"},
    )
    request = build_task(PIPELINE, spec).http_request
    assert dict(request.headers) == {
        "X-Tenant": "acme",
        "traceparent": PARENT,
        "tracestate": "vendor=x",
        "Content-Type": "application/json",
    }
    assert request.body == b'{"a":[1,2]}'  # compact JSON, UTF-8
    assert request.http_method == tasks_v2.HttpMethod.POST


def test_a_given_content_type_in_any_case_is_kept_and_not_doubled() -> None:
    spec = TaskSpec(payload={"é": 1}, headers={"CONTENT-TYPE": "application/cloudevents+json"})
    request = build_task(PIPELINE, spec).http_request
    headers = dict(request.headers)
    headers.pop("traceparent")
    assert headers == {"CONTENT-TYPE": "application/cloudevents+json"}
    assert request.body == b'{"\\u00e9":1}'  # ASCII-escaped JSON


def test_a_replay_carries_the_task_it_replays() -> None:
    headers = build_task(PIPELINE, TaskSpec(replay_of="orders/t-1")).http_request.headers
    assert headers["X-Replay-Of"] == "orders/t-1"


@pytest.mark.parametrize("url", [URL, "https://orders.example.com:8443", "https://HOST-X"])
def test_the_task_url_is_the_service_url_and_the_path_as_given(url: str) -> None:
    pipeline = Pipeline.model_validate(pipeline_output(QUEUE, url))
    task = build_task(pipeline, TaskSpec(path="/a/b?c=d"))
    assert task.http_request.url == f"{url}/a/b?c=d"


def test_the_task_id_is_the_keys_sha256() -> None:
    assert task_id("order-42") == hashlib.sha256(b"order-42").hexdigest()
    assert task_id("é") == hashlib.sha256("é".encode()).hexdigest()
    task = build_task(PIPELINE, TaskSpec(dedup_key="order-42"))
    assert task.name == f"{QUEUE}/tasks/{task_id('order-42')}"


@pytest.mark.parametrize(
    ("deadline", "accepted"),
    [
        (Duration.of_seconds(15), True),
        (Duration.of_seconds(1800), True),
        (Duration.parse("14.999999999s"), False),
        (Duration.parse("1800.000000001s"), False),
    ],
)
def test_the_dispatch_deadline_range_is_inclusive(deadline: Duration, accepted: bool) -> None:
    spec = TaskSpec(dispatch_deadline=deadline)
    if accepted:
        dispatch = tasks_v2.Task.pb(build_task(PIPELINE, spec)).dispatch_deadline
        assert (dispatch.seconds, dispatch.nanos) == (deadline.seconds, deadline.nanos_part)
    else:
        assert refusal(spec) == (
            f"--deadline: {deadline} is outside Cloud Tasks' range of 15s to 1800s"
        )


def test_a_delay_of_exactly_thirty_days_is_accepted_and_one_more_second_is_not() -> None:
    build_task(PIPELINE, TaskSpec(delay=Duration.of_seconds(30 * 86400)))
    assert refusal(TaskSpec(delay=Duration.of_seconds(30 * 86400 + 1))) == (
        "--delay: 2592001s is more than Cloud Tasks' 30 days (2592000s)"
    )


def test_a_schedule_time_needs_a_zone_and_at_most_thirty_days() -> None:
    assert refusal(TaskSpec(schedule_time=datetime(2030, 1, 1))) == (
        "--at: needs a timezone, e.g. 2030-01-01T12:00:00Z"
    )
    far = datetime.now(UTC) + timedelta(days=30, seconds=5)
    assert refusal(TaskSpec(schedule_time=far)) == "--at: more than Cloud Tasks' 30 days ahead"
    near = datetime.now(UTC) + timedelta(days=29, hours=23)
    assert build_task(PIPELINE, TaskSpec(schedule_time=near)).schedule_time == near
    assert refusal(TaskSpec(delay=Duration.of_seconds(1), schedule_time=near)) == (
        "--delay/--at: give one of them, not both"
    )


def test_path_and_dedup_key_refusals_name_the_argument() -> None:
    assert refusal(TaskSpec(path="orders")) == "--path: 'orders' must start with '/'"
    assert refusal(TaskSpec(dedup_key="")) == "--dedup-key: must not be empty"


def size_of(payload: bytes) -> int:
    task, size = build_task_unchecked(
        PIPELINE, TaskSpec(payload=payload, headers={"traceparent": PARENT})
    )
    assert size == tasks_v2.Task.pb(task).ByteSize()
    return size


def test_a_task_of_exactly_the_size_limit_is_accepted_and_one_byte_more_refused() -> None:
    overhead = size_of(b"x" * 100_000) - 100_000
    # The body's length prefix grows by a byte at 2**21: far above the limit, so one byte
    # of body is one byte of task here.
    body = b"x" * (MAX_TASK_BYTES - overhead)
    spec = TaskSpec(payload=body, headers={"traceparent": PARENT})
    assert tasks_v2.Task.pb(build_task(PIPELINE, spec)).ByteSize() == MAX_TASK_BYTES
    bigger = TaskSpec(payload=body + b"x", headers={"traceparent": PARENT})
    assert refusal(bigger) == (
        f"task: {MAX_TASK_BYTES + 1} bytes, over Cloud Tasks' task size limit of"
        f" {MAX_TASK_BYTES} bytes (1 MB, Cloud Tasks quotas); enable `payloads` on the"
        " pipeline to send bigger bodies through Cloud Storage"
    )
    with_bucket = Pipeline.model_validate(
        {**pipeline_output(QUEUE, URL), "payloadBucket": "orders-payloads-0a1b2c3d4e"}
    )
    assert refusal(bigger, with_bucket) == (
        f"task: {MAX_TASK_BYTES + 1} bytes, over Cloud Tasks' task size limit of"
        f" {MAX_TASK_BYTES} bytes (1 MB, Cloud Tasks quotas)"
    )
