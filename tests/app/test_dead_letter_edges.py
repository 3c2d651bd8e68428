"""A dead letter keeps the whole request, whatever Pub/Sub's attribute limit cuts: what the
handler's sink publishes, decoded by `replay`, is the original target, headers and body."""

from __future__ import annotations

import base64
import json
import logging
from concurrent.futures import Future

import pytest
from google.pubsub_v1 import PubsubMessage, ReceivedMessage

from handler.dead_letter import (
    ATTRIBUTE_VALUE_MAX_BYTES,
    BODY_PART_BYTES,
    ENVELOPE_ATTRIBUTE,
    DeadLetter,
    LogDeadLetterSink,
)
from handler.pubsub_sink import PubSubDeadLetterSink
from handler.task import TaskRequest, parse_task
from taskclient.replay import InvalidDeadLetter, decode

HEADERS = {f"x-custom-{n:02}": f"value-{n:02}-" + "v" * 40 for n in range(20)}
TARGET = "/orders/import?" + "&".join(f"k{n:03}=" + "x" * 14 for n in range(80)) + "&tenant=acme"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Publisher:
    """Keeps what was published, and confirms it as Pub/Sub would."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **kwargs: object) -> Future[str]:
        attributes = {k: v for k, v in kwargs.items() if isinstance(v, str)}
        self.published.append((data, attributes))
        done: Future[str] = Future()
        done.set_result(str(len(self.published)))
        return done


def published(body: bytes, headers: dict[str, str], target: str) -> ReceivedMessage:
    task = parse_task(
        {
            "x-cloudtasks-taskname": "t",
            "x-cloudtasks-queuename": "orders",
            "content-type": "application/json",
            "traceparent": TRACEPARENT,
            **headers,
        },
        target.partition("?")[0],
        body,
        target,
    )
    sink = PubSubDeadLetterSink("projects/p/topics/dead", timeout_s=5)
    publisher = Publisher()
    sink._publisher = publisher  # pyright: ignore[reportAttributeAccessIssue]
    sink.write(task, "the processor refused it")
    [(data, attributes)] = publisher.published
    assert all(len(v.encode()) <= ATTRIBUTE_VALUE_MAX_BYTES for v in attributes.values())
    message = PubsubMessage(data=data, attributes=attributes, message_id="m-1")
    return ReceivedMessage(ack_id="a-1", message=message)


def test_a_replay_sends_the_whole_request_when_attributes_were_cut() -> None:
    # Issue 27.5: a 1,520-byte target and 20 headers came back as a cut target (without
    # &tenant=acme) and 13 of the 20 headers, exit 0.
    assert len(TARGET) > 1500
    body = b'{"order": 42}'
    letter = decode(published(body, HEADERS, TARGET))
    spec = letter.spec()
    assert spec.path == TARGET
    assert {k: v for k, v in spec.headers.items() if k.startswith("x-custom-")} == HEADERS
    assert spec.payload == body
    assert spec.headers["Content-Type"] == "application/json"
    assert spec.headers["traceparent"] == TRACEPARENT
    assert (letter.task_name, letter.queue, letter.original_task) == ("t", "orders", "orders/t")


def test_a_letter_that_fits_keeps_its_body_as_the_data() -> None:
    received = published(b"{}", {"x-tenant": "acme"}, "/orders?tenant=acme")
    assert bytes(received.message.data) == b"{}"
    assert "envelope" not in received.message.attributes
    assert decode(received).spec().path == "/orders?tenant=acme"


def test_a_cut_letter_without_its_whole_request_is_not_replayed() -> None:
    # Written before envelopes: the attributes alone would replay less than the original.
    message = PubsubMessage(
        data=b"{}",
        attributes={
            "taskName": "t",
            "path": TARGET[:1024],
            "contentType": "application/json",
            "headers": "{}",
            "truncated": "path,headers",
        },
        message_id="m-2",
    )
    with pytest.raises(InvalidDeadLetter, match="attribute path, headers cut to Pub/Sub's 1,024"):
        decode(ReceivedMessage(ack_id="a-2", message=message))
    # Only the reason cut: nothing a replay sends is missing.
    message.attributes["truncated"] = "reason"
    message.attributes["path"] = "/orders"
    assert decode(ReceivedMessage(ack_id="a-3", message=message)).spec().path == "/orders"


def tracestate(size: int) -> str:
    """A valid tracestate of SIZE bytes (1,021 to 1,026): four members of at most 256."""
    members = [f"k0{n}=" + "v" * 250 for n in range(3)]
    return ",".join([*members, "k03=" + "v" * (size - 764 - 1 - 4)])


def traced(state: str, headers: dict[str, str] | None = None) -> TaskRequest:
    return parse_task(
        {
            "x-cloudtasks-taskname": "t",
            "x-cloudtasks-queuename": "orders",
            "traceparent": TRACEPARENT,
            "tracestate": state,
            **(headers or {}),
        },
        "/orders",
        b"{}",
    )


def test_a_tracestate_of_1024_bytes_is_kept_whole_and_a_longer_one_goes_to_the_envelope() -> None:
    fits = DeadLetter.of(traced(tracestate(1024)), "no")
    assert fits.attributes["tracestate"] == tracestate(1024)
    assert fits.attributes["traceparent"] == TRACEPARENT
    assert (fits.truncated, fits.needs_envelope) == ((), False)
    assert fits.data(b"{}") == b"{}"
    over = DeadLetter.of(traced(tracestate(1025)), "no")
    assert "tracestate" not in over.attributes
    assert over.attributes["traceparent"] == TRACEPARENT
    assert over.truncated == ("tracestate",)
    assert (over.attributes["truncated"], over.attributes[ENVELOPE_ATTRIBUTE]) == (
        "tracestate",
        "1",
    )
    envelope = json.loads(over.data(b'{"a": 1}'))
    assert envelope["tracestate"] == tracestate(1025)
    assert envelope["traceparent"] == TRACEPARENT
    assert base64.b64decode(envelope["bodyBase64"]) == b'{"a": 1}'
    assert (envelope["taskName"], envelope["originalTask"]) == ("t", "orders/t")


def test_headers_of_1024_bytes_as_json_are_kept_whole() -> None:
    # {"x-tenant": "vvv..."}: 16 bytes of JSON around the value.
    fits = DeadLetter.of(traced("", {"x-tenant": "v" * (1024 - 16)}), "no")
    assert json.loads(fits.attributes["headers"]) == {"x-tenant": "v" * 1008}
    assert fits.truncated == ()
    over = DeadLetter.of(traced("", {"x-tenant": "v" * 1009}), "no")
    assert json.loads(over.attributes["headers"]) == {}
    assert over.truncated == ("headers",)


def test_an_attribute_is_cut_to_1024_bytes_on_a_character_boundary() -> None:
    reason = "a" + "é" * 600  # 1,201 bytes: the 1,024th is half of an é
    letter = DeadLetter.of(traced(""), reason)
    assert letter.attributes["reason"] == "a" + "é" * 511
    assert letter.truncated == ("reason",)
    assert letter.attributes["truncated"] == "reason"
    # Nothing a replay sends was cut: the data stays the body.
    assert (letter.needs_envelope, letter.data(b"{}")) == (False, b"{}")


def test_the_log_sink_writes_the_whole_record_in_parts_of_64_kib(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = bytes(range(256)) * 512 + b"tail"  # two whole parts and four bytes
    task = parse_task(
        {
            "x-cloudtasks-taskname": "t",
            "x-cloudtasks-queuename": "orders",
            "x-cloudtasks-taskretrycount": "4",
            "content-type": "application/octet-stream",
            "traceparent": TRACEPARENT,
            "authorization": "Bearer secret-token",
            "x-tenant": "acme",
        },
        "/orders/import",
        body,
        "/orders/import?x=1",
    )
    with caplog.at_level(logging.INFO, logger="handler.dead_letter"):
        LogDeadLetterSink().write(task, "the processor refused it")
    records = caplog.records
    assert [r.levelno for r in records] == [logging.ERROR] * 3
    lines: list[dict[str, object]] = [r.msg for r in records]  # pyright: ignore[reportAssignmentType]
    parts = [base64.b64decode(str(line.pop("bodyBase64"))) for line in lines]
    assert b"".join(parts) == body
    assert [len(p) for p in parts] == [BODY_PART_BYTES, BODY_PART_BYTES, 4]
    assert [(line.pop("part"), line.pop("parts")) for line in lines] == [(1, 3), (2, 3), (3, 3)]
    common = {
        "message": "task dead-lettered: the processor refused it",
        "deadLetter": True,
        "taskName": "t",
        "queue": "orders",
        "originalTask": "orders/t",
        "retryCount": 4,
        "path": "/orders/import?x=1",
        "contentType": "application/octet-stream",
        "headers": {"x-tenant": "acme"},
        "traceContext": {"traceparent": TRACEPARENT},
        "reason": "the processor refused it",
        "bodyBytes": len(body),
    }
    assert lines == [common] * 3


def test_the_log_sink_writes_one_line_for_a_body_under_one_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="handler.dead_letter"):
        LogDeadLetterSink().write(traced(""), "no")
    [record] = caplog.records
    line: dict[str, object] = record.msg  # pyright: ignore[reportAssignmentType]
    assert (line["part"], line["parts"], line["bodyBase64"]) == (1, 1, "e30=")
