"""A dead letter keeps the whole request, whatever Pub/Sub's attribute limit cuts: what the
handler's sink publishes, decoded by `replay`, is the original target, headers and body."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from google.pubsub_v1 import PubsubMessage, ReceivedMessage

from handler.dead_letter import ATTRIBUTE_VALUE_MAX_BYTES
from handler.pubsub_sink import PubSubDeadLetterSink
from handler.task import parse_task
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
