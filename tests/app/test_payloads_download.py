"""A claim check's download as the storage client is asked for it (a recording client, no
bucket): the range, the time the answer budget allows, each storage error's answer, and the
task the processor gets back (its own headers kept, only Content-Type swapped)."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import storage

from handler.payloads import (
    CLAIM_CHECK_TYPE,
    FETCH_TIMEOUT_S,
    ClaimCheck,
    PayloadReader,
    PayloadUnavailable,
)
from handler.task import MalformedTask, TaskRequest

BUCKET = "orders-payloads-0a1b2c3d4e"
BODY = b'{"order": 42}'


@dataclass
class Call:
    bucket: str
    object: str
    kwargs: dict[str, Any]


@dataclass
class Storage:
    """Stands for google.cloud.storage.Client: serves `content`, or raises `error`."""

    content: bytes = BODY
    error: Exception | None = None
    calls: list[Call] = field(default_factory=list)

    def bucket(self, bucket: str) -> Any:
        storage = self

        class Bucket:
            def blob(self, name: str) -> Any:
                class Blob:
                    def download_as_bytes(self, **kwargs: Any) -> bytes:
                        storage.calls.append(Call(bucket, name, kwargs))
                        if storage.error is not None:
                            raise storage.error
                        return storage.content[kwargs["start"] : kwargs["end"] + 1]

                return Blob()

        return Bucket()


class Reader(PayloadReader):
    def __init__(self, storage: Storage) -> None:
        super().__init__(BUCKET)
        self.storage = storage

    def _storage(self) -> Any:
        return self.storage


def task(
    body: bytes = BODY,
    content_type: str = "application/json",
    seconds_left: float | None = None,
    obj: str = "orders/2024/x",
) -> TaskRequest:
    check = ClaimCheck(BUCKET, obj, len(body), hashlib.sha256(body).hexdigest(), content_type)
    return TaskRequest(
        name="t-1",
        queue="orders",
        retry_count=2,
        execution_count=2,
        eta=1700000000.5,
        path="/orders",
        headers={
            "content-type": f"{CLAIM_CHECK_TYPE}; charset=utf-8",
            "x-cloudtasks-taskname": "t-1",
            "x-tenant": "acme",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
        body=check.to_json(),
        answer_by=None if seconds_left is None else time.monotonic() + seconds_left,
    )


def test_the_processor_keeps_every_other_header_and_gets_the_original_type() -> None:
    resolved = Reader(Storage()).resolve(task(content_type="application/json; charset=utf-8"))
    assert resolved.body == BODY
    assert dict(resolved.headers) == {
        "content-type": "application/json; charset=utf-8",
        "x-cloudtasks-taskname": "t-1",
        "x-tenant": "acme",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    assert (resolved.name, resolved.queue, resolved.retry_count, resolved.path) == (
        "t-1",
        "orders",
        2,
        "/orders",
    )


def test_without_an_original_type_the_reference_type_is_dropped_not_kept() -> None:
    resolved = Reader(Storage()).resolve(task(content_type=""))
    assert "content-type" not in resolved.headers
    assert resolved.content_type == ""
    assert resolved.headers["x-tenant"] == "acme"


def test_without_a_deadline_the_download_gets_the_full_timeout_and_one_byte_more() -> None:
    storage = Storage()
    Reader(storage).resolve(task())
    [call] = storage.calls
    assert (call.bucket, call.object) == (BUCKET, "orders/2024/x")
    assert (call.kwargs["start"], call.kwargs["end"]) == (0, len(BODY))
    assert call.kwargs["timeout"] == FETCH_TIMEOUT_S == 60.0
    assert call.kwargs["retry"].timeout == FETCH_TIMEOUT_S


def test_the_answer_budget_left_bounds_the_download_and_its_retries() -> None:
    storage = Storage()
    Reader(storage).resolve(task(seconds_left=10.0))
    [call] = storage.calls
    # 40% of the 10 s left: the rest is for handing the task back while Cloud Tasks listens.
    assert 3.9 < call.kwargs["timeout"] <= 4.0
    assert call.kwargs["retry"].timeout == call.kwargs["timeout"]


def test_a_long_budget_is_capped_at_the_fetch_timeout() -> None:
    storage = Storage()
    Reader(storage).resolve(task(seconds_left=1000.0))
    assert storage.calls[0].kwargs["timeout"] == 60.0


@pytest.mark.parametrize("seconds_left", [1.2, 0.0, -5.0])
def test_too_little_budget_is_retried_without_starting_the_download(seconds_left: float) -> None:
    storage = Storage()
    with pytest.raises(PayloadUnavailable, match=r"gs://orders-payloads-0a1b2c3d4e/orders/2024/x"):
        Reader(storage).resolve(task(seconds_left=seconds_left))
    assert storage.calls == []


def test_just_enough_budget_starts_the_download() -> None:
    storage = Storage()
    Reader(storage).resolve(task(seconds_left=1.3))  # 0.52 s, over the 0.5 s floor
    assert 0.5 <= storage.calls[0].kwargs["timeout"] < 0.53


def test_a_missing_object_is_malformed_not_retried() -> None:
    reader = Reader(Storage(error=exceptions.NotFound("no such object")))
    with pytest.raises(MalformedTask, match="object missing"):
        reader.resolve(task())


def test_an_empty_object_is_read_as_empty_when_the_reference_says_so() -> None:
    reader = Reader(Storage(error=exceptions.RequestRangeNotSatisfiable("range")))
    resolved = reader.resolve(task(body=b""))
    assert resolved.body == b""
    assert resolved.headers["content-type"] == "application/json"


def test_an_empty_object_where_bytes_were_expected_is_altered() -> None:
    reader = Reader(Storage(error=exceptions.RequestRangeNotSatisfiable("range")))
    with pytest.raises(
        MalformedTask, match=rf"object altered \(0 bytes, the reference says {len(BODY)}\)"
    ):
        reader.resolve(task())


@pytest.mark.parametrize(
    "error",
    [exceptions.ServiceUnavailable("503"), exceptions.Forbidden("403"), TimeoutError("slow")],
)
def test_any_other_storage_error_is_retried(error: Exception) -> None:
    with pytest.raises(PayloadUnavailable, match="unreadable now") as raised:
        Reader(Storage(error=error)).resolve(task())
    assert raised.value.__cause__ is error


def test_a_shorter_object_is_altered_and_names_its_size() -> None:
    reader = Reader(Storage(content=BODY[:-3]))
    with pytest.raises(
        MalformedTask, match=rf"\({len(BODY) - 3} bytes, the reference says {len(BODY)}\)"
    ):
        reader.resolve(task())


def test_same_size_other_bytes_fail_the_digest() -> None:
    reader = Reader(Storage(content=BODY.replace(b"42", b"43")))
    digest = hashlib.sha256(BODY.replace(b"42", b"43")).hexdigest()
    with pytest.raises(MalformedTask, match=f"sha256 {digest}, the reference says"):
        reader.resolve(task())


@pytest.mark.parametrize(
    ("obj", "allowed"),
    [
        ("orders/x", True),
        ("orders/", False),
        ("emails/x", False),
        ("ordersx/y", False),
        ("x/orders/y", False),
    ],
)
def test_only_objects_under_the_queues_own_prefix_are_read(obj: str, allowed: bool) -> None:
    storage = Storage()
    if allowed:
        assert Reader(storage).resolve(task(obj=obj)).body == BODY
    else:
        with pytest.raises(MalformedTask, match="object not under this queue's prefix orders/"):
            Reader(storage).resolve(task(obj=obj))
        assert storage.calls == []


def test_a_reference_to_a_reference_is_refused_before_reading() -> None:
    storage = Storage()
    with pytest.raises(MalformedTask, match="the object is itself a claim check"):
        Reader(storage).resolve(task(content_type=f" {CLAIM_CHECK_TYPE.upper()} ; x=1"))
    assert storage.calls == []


def test_a_reference_to_another_bucket_is_refused_before_reading() -> None:
    storage = Storage()
    other = task()
    check = ClaimCheck.parse(other.body)
    body = ClaimCheck("other-bucket", check.object, check.size, check.sha256, "").to_json()
    with pytest.raises(MalformedTask, match="not in this pipeline's payload bucket " + BUCKET):
        Reader(storage).resolve(replace(other, body=body))
    assert storage.calls == []


def test_a_reference_is_compact_json_with_these_keys() -> None:
    check = ClaimCheck(BUCKET, "orders/x", 3, "a" * 64, "text/plain")
    assert check.to_json() == (
        b'{"bucket":"orders-payloads-0a1b2c3d4e","object":"orders/x","size":3,'
        b'"sha256":"' + b"a" * 64 + b'","contentType":"text/plain"}'
    )
    assert ClaimCheck.parse(check.to_json()) == check


def test_a_reference_without_a_content_type_has_none() -> None:
    body = b'{"bucket":"orders-payloads-0a1b2c3d4e","object":"orders/x","size":0,"sha256":"'
    assert ClaimCheck.parse(body + b"a" * 64 + b'"}').content_type == ""


def test_every_wrong_field_of_a_reference_is_named_at_once() -> None:
    body = b'{"bucket": "B", "object": "", "size": true, "sha256": "ABC", "contentType": 1}'
    with pytest.raises(MalformedTask) as raised:
        ClaimCheck.parse(body)
    assert str(raised.value) == (
        "claim check: bucket must be a bucket name; object must be a non-empty string; size"
        " must be an integer >= 0; sha256 must be 64 lowercase hex digits; contentType must"
        " be a string"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "claim check: not a JSON object"),
        (b"1" * 5000, "claim check: not JSON Python can read (Exceeds the limit (4300 digits)"),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "claim check: not JSON Python can read (nested too deeply)",
        ),
    ],
)
def test_a_reference_python_cannot_hold_is_malformed(body: bytes, message: str) -> None:
    with pytest.raises(MalformedTask) as raised:
        ClaimCheck.parse(body)
    assert str(raised.value).startswith(message)


def test_the_refusals_say_why_in_full() -> None:
    url = "gs://orders-payloads-0a1b2c3d4e/orders/2024/x"
    with pytest.raises(MalformedTask) as missing:
        Reader(Storage(error=exceptions.NotFound("gone"))).resolve(task())
    assert str(missing.value) == (
        f"claim check {url}: object missing (never written, or deleted by the bucket's"
        " lifecycle rule)"
    )
    with pytest.raises(PayloadUnavailable) as short:
        Reader(Storage()).resolve(task(seconds_left=0.25))
    assert re.fullmatch(
        rf"claim check {url}: 0\.\d s left of the answer budget, too little to download it",
        str(short.value),
    )


def test_the_bucket_setting_refusal_names_what_a_bucket_name_is() -> None:
    from handler.payloads import PayloadSettingsError, from_env

    with pytest.raises(PayloadSettingsError) as raised:
        from_env({"TASK_PAYLOAD_BUCKET": "Bad Bucket"})
    assert str(raised.value) == (
        "TASK_PAYLOAD_BUCKET: 'Bad Bucket' is not a bucket name (3-63 characters: lowercase"
        " letters, digits, '-', '_', '.')"
    )


def test_the_storage_client_is_made_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    # Made without credentials or a connection when an emulator is named.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    reader = PayloadReader(BUCKET)
    client = reader._storage()  # pyright: ignore[reportPrivateUsage]
    assert isinstance(client, storage.Client)
    assert reader._storage() is client  # pyright: ignore[reportPrivateUsage]
