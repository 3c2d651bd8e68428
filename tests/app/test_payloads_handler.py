"""The handler's side of claim checks without a bucket behind it: what each failure answers."""

from __future__ import annotations

import hashlib

import pytest

from handler.app import create_app
from handler.payloads import (
    CLAIM_CHECK_TYPE,
    ClaimCheck,
    PayloadReader,
    PayloadSettingsError,
    PayloadUnavailable,
    from_env,
)
from handler.task import MalformedTask, TaskRequest
from tests.app.test_handler_app import RecordingSink, delivery

BODY = b"the original bytes"
CHECK = ClaimCheck("orders-payloads-0a1b2c3d4e", "orders/x", len(BODY), "0" * 64, "text/plain")


class Stored(PayloadReader):
    """A reader whose bucket holds `content` at every name, or raises `error`."""

    def __init__(self, content: bytes = b"", error: Exception | None = None) -> None:
        super().__init__(CHECK.bucket)
        self.content, self.error = content, error

    def _download(self, check: ClaimCheck, time_left: float | None) -> bytes:
        if self.error is not None:
            raise self.error
        return self.content[: check.size + 1]


def answer(reader: PayloadReader, body: bytes, sink: RecordingSink) -> tuple[int, str]:
    seen: list[TaskRequest] = []
    app = create_app(
        lambda task: seen.append(task) or None, dead_letter=sink, max_attempts=3, payloads=reader
    )
    headers = {**delivery(), "Content-Type": CLAIM_CHECK_TYPE}
    response = app.test_client().post("/", data=body, headers=headers)
    assert response.json is not None
    if seen:
        assert seen[0].body == BODY and seen[0].content_type == "text/plain"
    return response.status_code, response.json["status"]


def check_for(body: bytes) -> bytes:
    return ClaimCheck(
        CHECK.bucket, CHECK.object, len(body), hashlib.sha256(body).hexdigest(), "text/plain"
    ).to_json()


def test_the_processor_gets_the_original_bytes_and_type() -> None:
    sink = RecordingSink()
    assert answer(Stored(BODY), check_for(BODY), sink) == (200, "done")
    assert sink.written == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "claim check: not JSON"),
        (b"[]", "claim check: not a JSON object"),
        (b'{"bucket": "B", "size": -1}', "bucket must be a bucket name; object must be"),
    ],
)
def test_a_malformed_reference_is_rejected_with_its_fields(body: bytes, reason: str) -> None:
    sink = RecordingSink()
    assert answer(Stored(BODY), body, sink) == (200, "rejected")
    [(_, written)] = sink.written
    assert reason in written


def test_an_unreadable_object_is_retried_not_rejected() -> None:
    sink = RecordingSink()
    reader = Stored(error=PayloadUnavailable("timed out"))
    assert answer(reader, check_for(BODY), sink) == (500, "failed")
    assert sink.written == []


def test_a_longer_object_is_altered() -> None:
    sink = RecordingSink()
    assert answer(Stored(BODY + b"!"), check_for(BODY), sink) == (200, "rejected")
    assert f"more than {len(BODY)} bytes" in sink.written[0][1]


def test_without_a_bucket_a_claim_check_is_rejected() -> None:
    task = TaskRequest("t", "orders", 0, 0, None, "/", {"content-type": CLAIM_CHECK_TYPE}, b"")
    with pytest.raises(MalformedTask, match="claim check: not JSON"):
        PayloadReader(None).resolve(task)
    with pytest.raises(MalformedTask, match="this service has no payload bucket"):
        PayloadReader(None).resolve(
            TaskRequest(
                "t", "orders", 0, 0, None, "/", {"content-type": CLAIM_CHECK_TYPE}, CHECK.to_json()
            )
        )


def test_other_bodies_pass_untouched() -> None:
    task = TaskRequest("t", "orders", 0, 0, None, "/", {"content-type": "application/json"}, b"{}")
    assert PayloadReader(None).resolve(task) is task


def test_the_bucket_setting_is_checked() -> None:
    assert from_env({}).bucket is None
    assert from_env({"TASK_PAYLOAD_BUCKET": "orders-payloads-0a1b2c3d4e"}).bucket
    with pytest.raises(PayloadSettingsError, match="TASK_PAYLOAD_BUCKET: 'Not_A Bucket'"):
        from_env({"TASK_PAYLOAD_BUCKET": "Not_A Bucket"})
