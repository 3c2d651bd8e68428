"""What the Pub/Sub dead-letter sink asks its publisher for (a recording publisher, no
emulator): the topic, the body as data, the attributes, and one time bound for the publish,
its retries and the wait for Pub/Sub's answer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.cloud import pubsub_v1

from handler.dead_letter import ATTRIBUTE_VALUE_MAX_BYTES
from handler.pubsub_sink import PubSubDeadLetterSink
from handler.task import TaskRequest

TOPIC = "projects/p/topics/orders-dead-letters"


@dataclass
class Future:
    error: Exception | None
    waited: list[float | None] = field(default_factory=list)

    def result(self, timeout: float | None = None) -> str:
        self.waited.append(timeout)
        if self.error is not None:
            raise self.error
        return "message-id"


@dataclass
class Publisher:
    error: Exception | None = None
    calls: list[tuple[str, bytes, dict[str, Any]]] = field(default_factory=list)
    futures: list[Future] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, **kwargs: Any) -> Future:
        self.calls.append((topic, data, kwargs))
        self.futures.append(Future(self.error))
        return self.futures[-1]


class Sink(PubSubDeadLetterSink):
    def __init__(self, publisher: Publisher, timeout_s: float = 30.0) -> None:
        super().__init__(TOPIC, timeout_s=timeout_s)
        self.publisher = publisher

    def _client(self) -> Any:
        return self.publisher


def task(headers: dict[str, str] | None = None) -> TaskRequest:
    return TaskRequest(
        "t-1",
        "orders",
        4,
        4,
        None,
        "/orders",
        {"content-type": "application/json", "x-tenant": "acme", **(headers or {})},
        b'{"id": 7}',
    )


def test_the_letter_is_the_body_with_the_tasks_attributes_on_the_topic() -> None:
    publisher = Publisher()
    Sink(publisher).write(task(), "payload asked to be rejected")
    [(topic, data, kwargs)] = publisher.calls
    assert (topic, data) == (TOPIC, b'{"id": 7}')
    retry, timeout = kwargs.pop("retry"), kwargs.pop("timeout")
    assert (retry.timeout, timeout, publisher.futures[0].waited) == (30.0, 30.0, [30.0])
    assert kwargs["taskName"] == "t-1"
    assert kwargs["reason"] == "payload asked to be rejected"
    assert json.loads(kwargs["headers"]) == {"x-tenant": "acme"}


@pytest.mark.parametrize(("left", "bound"), [(2.5, 2.5), (100.0, 30.0)])
def test_the_answer_budget_left_bounds_the_publish_when_shorter(left: float, bound: float) -> None:
    publisher = Publisher()
    Sink(publisher).write(task(), "r", timeout=left)
    [(_, _, kwargs)] = publisher.calls
    assert (kwargs["retry"].timeout, kwargs["timeout"]) == (bound, bound)
    assert publisher.futures[0].waited == [bound]


def test_a_publish_pub_sub_did_not_keep_raises() -> None:
    with pytest.raises(TimeoutError):
        Sink(Publisher(error=TimeoutError("no answer"))).write(task(), "r")


def test_a_letter_with_cut_headers_is_also_logged_whole(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    big = {f"x-h{i}": "v" * 100 for i in range(ATTRIBUTE_VALUE_MAX_BYTES // 100)}
    publisher = Publisher()
    Sink(publisher).write(task(big), "too big to keep")
    [(_, _, kwargs)] = publisher.calls
    assert "headers" in kwargs["truncated"].split(",")
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")]
    assert [(m["reason"], m["headers"]["x-h0"]) for m in logged] == [("too big to keep", "v" * 100)]


def test_an_uncut_letter_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    Sink(Publisher()).write(task(), "r")
    assert [r for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("deadLetter")] == []


def test_the_publisher_is_made_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    # Made without credentials or a connection when an emulator is named.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    sink = PubSubDeadLetterSink(TOPIC, timeout_s=5)
    client = sink._client()  # pyright: ignore[reportPrivateUsage]
    assert isinstance(client, pubsub_v1.PublisherClient)
    assert sink._client() is client  # pyright: ignore[reportPrivateUsage]
