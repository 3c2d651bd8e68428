"""Trace propagation end to end on loopback: a task enqueued inside a span (an OpenTelemetry
SDK tracer) reaches the handler through the Cloud Tasks emulator, and the handler's log line
carries that span's trace id; rejected, its dead letter goes through Google's Pub/Sub
emulator, and its replay's log line still carries the same trace id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from local.processes import Child, start_handler
from taskclient import TaskClient, TaskSpec, load_file
from taskclient.replay import replay_task_id
from tests.app.helpers import (
    HANDLER_PROJECT,
    MAX_ATTEMPTS,
    dead_letter_topic,
    pipeline_output,
    task_lines,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

TRACE_FIELD = "logging.googleapis.com/trace"
TOPIC = f"projects/{HANDLER_PROJECT}/topics/traced-dead-letters"
SUBSCRIPTION = f"projects/{HANDLER_PROJECT}/subscriptions/traced-dead-letters"


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    yield provider.get_tracer("tests")
    provider.shutdown()


def trace_of(span: trace.Span) -> str:
    return f"projects/{HANDLER_PROJECT}/traces/{span.get_span_context().trace_id:032x}"


def final(handler: Child, task_name: str, status: str) -> dict[str, object]:
    return wait_for(
        lambda: next((x for x in task_lines(handler, task_name) if x["status"] == status), None),
        f"{task_name} to be {status}",
    )


def test_a_task_enqueued_in_a_span_is_logged_by_the_handler_under_its_trace(
    emulator: Child, handler: Child, outputs_file: Path, tracer: trace.Tracer
) -> None:
    with TaskClient(load_file(outputs_file), emulator=emulator.address) as client:
        with tracer.start_as_current_span("checkout") as span:
            inside = client.enqueue("orders", TaskSpec(payload={"id": 1}))
        outside = client.enqueue("orders", TaskSpec(payload={"id": 2}))
    line = final(handler, inside.task_name, "done")
    assert line[TRACE_FIELD] == trace_of(span)
    # Outside a span: a trace of its own, still a valid one, not the span's.
    other = final(handler, outside.task_name, "done")
    own = other[TRACE_FIELD]
    assert isinstance(own, str) and own != line[TRACE_FIELD]
    assert own.startswith(f"projects/{HANDLER_PROJECT}/traces/")


@pytest.fixture(scope="module")
def subscription(pubsub: Child) -> Iterator[str]:
    with dead_letter_topic(pubsub, TOPIC, SUBSCRIPTION) as name:
        yield name


@pytest.fixture(scope="module")
def publishing_handler(tmp_path_factory: pytest.TempPathFactory, pubsub: Child) -> Iterator[Child]:
    """A handler whose dead letters go to the Pub/Sub emulator."""
    log = tmp_path_factory.mktemp("handler") / "handler.log"
    env = {
        "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "GOOGLE_CLOUD_PROJECT": HANDLER_PROJECT,
        "TASK_DEAD_LETTER_TOPIC": TOPIC,
        "PUBSUB_EMULATOR_HOST": pubsub.address,
    }
    child = start_handler(log, env=env)
    try:
        yield child
    finally:
        child.stop()


def test_a_dead_letter_and_its_replay_keep_the_original_trace(
    tmp_path: Path,
    emulator: Child,
    pubsub: Child,
    publishing_handler: Child,
    subscription: str,
    queue: str,
    tracer: trace.Tracer,
) -> None:
    entry = {
        **pipeline_output(queue, f"http://{publishing_handler.address}"),
        "deadLetterTopic": TOPIC,
        "deadLetterSubscription": subscription,
    }
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    with TaskClient(load_file(outputs), emulator=emulator.address) as client:
        with tracer.start_as_current_span("import") as span:
            original = client.enqueue("orders", TaskSpec(payload={"reject": True}))
        rejected = final(publishing_handler, original.task_name, "rejected")
        assert rejected[TRACE_FIELD] == trace_of(span)

        # Replayed outside any span: the replay keeps the original's trace, not a new one.
        [replayed] = client.replay("orders", pubsub_emulator=pubsub.address)
    assert replayed.outcome.ok, replayed.outcome.error
    assert replayed.letter is not None
    short = original.task_name.rsplit("/", 1)[-1]
    assert (
        replayed.letter.trace["traceparent"].split("-")[1]
        == f"{span.get_span_context().trace_id:032x}"
    )
    name = f"{queue}/tasks/{replay_task_id(short, replayed.message_id)}"
    again = final(publishing_handler, name, "rejected")  # the payload still asks for it
    assert again[TRACE_FIELD] == trace_of(span)
