"""Replay end to end on Google's Pub/Sub emulator, the Cloud Tasks emulator and the handler:
a dead letter of several hundred KB, in the handler's format, is re-created as a task,
delivered byte for byte, and acknowledged; replayed twice, it is one task."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.api_core import exceptions
from google.pubsub_v1 import (
    PublisherClient,
    PubsubMessage,
    SubscriberAsyncClient,
    SubscriberClient,
)
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from bench.enqueue_faults import LoopbackServer
from local.processes import (
    REPO,
    Child,
    start_handler,
)
from taskclient import transport
from taskclient.bulk import BulkRun, Outcome
from taskclient.pipelines import Pipeline
from taskclient.replay import ReplayRun, replay_task_id
from tests.app.helpers import (
    dead_letter_topic,
    pipeline_output,
    require_gcloud,
    run_async,
    task_lines,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)

require_gcloud("the replay tests on the Pub/Sub emulator")

TOPIC = "projects/test-project/topics/orders-dead-letters"
SUBSCRIPTION = "projects/test-project/subscriptions/orders-dead-letters"
# Several hundred KB: well over the 64 KiB the log sink kept, under Cloud Tasks' 1 MB.
BODY = json.dumps({"id": "big", "blob": "x" * 400_000, "reject": True}).encode()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """A handler whose processor logs the length and digest of every body it gets."""
    log = tmp_path_factory.mktemp("handler") / "handler.log"
    child = start_handler(log, env={"TASK_PROCESSOR": "tests.app.replay_processor:process"})
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture
def subscription(pubsub: Child) -> Iterator[str]:
    with dead_letter_topic(pubsub, TOPIC, SUBSCRIPTION) as name:
        yield name


def publish(
    pubsub: Child,
    body: bytes,
    task_name: str,
    path: str = "/orders/import",
    queue: str = "orders",
) -> str:
    """A dead letter as the handler publishes it, from queue id QUEUE; returns its message
    id. The handler honours a replay on its original's queue only."""
    channel = grpc.insecure_channel(pubsub.address)
    try:
        publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
        attributes = {
            "taskName": task_name,
            "queue": queue,
            "retryCount": "0",
            "reason": "payload asked to be rejected",
            "path": path,
            "contentType": "application/json",
            "headers": json.dumps({"X-Tenant": "acme", "Content-Type": "application/json"}),
        }
        message = PubsubMessage(data=body, attributes=attributes)
        response = publisher.publish(topic=TOPIC, messages=[message])
        return response.message_ids[0]
    finally:
        channel.close()


def waiting(pubsub: Child) -> int:
    """Messages the subscription would deliver now."""
    channel = grpc.insecure_channel(pubsub.address)
    try:
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=5)
        if pulled.received_messages:  # looked at, not taken: back at once
            ack_ids = [m.ack_id for m in pulled.received_messages]
            subscriber.modify_ack_deadline(
                subscription=SUBSCRIPTION, ack_ids=ack_ids, ack_deadline_seconds=0
            )
        return len(pulled.received_messages)
    except exceptions.DeadlineExceeded:
        return 0
    finally:
        channel.close()


class AckLost:
    """The real subscriber, except that acknowledgements never arrive."""

    def __init__(self, subscriber: SubscriberAsyncClient) -> None:
        self._subscriber = subscriber
        self.pull = subscriber.pull
        self.modify_ack_deadline = subscriber.modify_ack_deadline

    async def acknowledge(self, **_: object) -> None:
        raise exceptions.ServiceUnavailable("acknowledgement lost")


def replay_with_lost_ack(pubsub: Child, emulator: Child, pipeline: Pipeline) -> Outcome:
    async def run() -> Outcome:
        subscriber = transport.async_subscriber(pubsub.address)
        client = transport.async_client(emulator.address)
        try:
            bulk = BulkRun(client, pipeline, concurrency=4, retry_deadline_s=10, call_timeout_s=30)
            lossy = cast(SubscriberAsyncClient, AckLost(subscriber))
            [result] = await ReplayRun(lossy, SUBSCRIPTION, pipeline, bulk).run()
            return result.outcome.outcome
        finally:
            await client.transport.close()
            await subscriber.transport.close()

    return run_async(run())


def cli(
    outputs: Path, emulator: Child, pubsub: Child, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "taskclient", "replay", "--outputs", str(outputs),
            "--pipeline", "orders", "--emulator", emulator.address, *args,
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PUBSUB_EMULATOR_HOST": pubsub.address},
    )  # fmt: skip


def test_a_big_dead_letter_is_replayed_delivered_byte_for_byte_and_acknowledged_once(
    tmp_path: Path,
    pubsub: Child,
    emulator: Child,
    recorder: Child,
    queue: str,
    subscription: str,
) -> None:
    entry = {
        **pipeline_output(queue, f"http://{recorder.address}"),
        "deadLetterTopic": TOPIC,
        "deadLetterSubscription": subscription,
    }
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    queue_id = queue.rsplit("/", 1)[-1]
    message_id = publish(pubsub, BODY, "original-task-7", queue=queue_id)
    name = f"{queue}/tasks/{replay_task_id('original-task-7', message_id)}"

    # Dry run: shown, not created, still waiting.
    dry = cli(outputs, emulator, pubsub, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(f"{name}  replays original-task-7 (message {message_id}):")
    assert f"{len(BODY)} bytes" in dry.stdout
    assert waiting(pubsub) == 1

    # Created, but the acknowledgement is lost: the message comes back, the task runs once.
    assert replay_with_lost_ack(pubsub, emulator, Pipeline.model_validate(entry)) is Outcome.FAILED
    [done] = wait_for(
        lambda: [line for line in task_lines(recorder, name) if line["status"] == "done"] or None,
        "the replayed task to reach the handler",
    )
    assert done["result"] == {
        "bytes": len(BODY),
        "sha256": hashlib.sha256(BODY).hexdigest(),
        "contentType": "application/json",
        "replayOf": f"{queue_id}/original-task-7",  # the original task, queue/name
        "tenant": "acme",
    }
    assert done["path"] == "/orders/import"
    assert waiting(pubsub) == 1

    # Replayed again: the task already exists, so nothing new; now it is acknowledged.
    again = cli(outputs, emulator, pubsub, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["messages"] == 1
    assert report["outcomes"]["already existed"] == 1
    assert waiting(pubsub) == 0
    assert len([line for line in task_lines(recorder, name) if line["status"] == "done"]) == 1

    # Nothing left: a replay of an empty subscription is a report of zero.
    empty = cli(outputs, emulator, pubsub, "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["messages"] == 0


def test_a_missing_subscription_aborts_with_the_error(
    tmp_path: Path, pubsub: Child, emulator: Child, recorder: Child, queue: str
) -> None:
    entry = {
        **pipeline_output(queue, f"http://{recorder.address}"),
        "deadLetterSubscription": "projects/test-project/subscriptions/no-such-subscription",
    }
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    result = cli(outputs, emulator, pubsub)
    assert result.returncode == 3, result.stderr
    assert (
        "stopped: pulling projects/test-project/subscriptions/no-such-subscription: NOT_FOUND"
        in (result.stderr)
    )
    assert "(retrying cannot fix it)" in result.stderr


def test_sigterm_stops_the_replay_and_hands_every_message_back(
    tmp_path: Path, pubsub: Child, subscription: str
) -> None:
    """Cloud Tasks never answers: in-flight creates are unknown, the rest not sent, and every
    message is back in the subscription for the next replay."""
    hanging = LoopbackServer("hang")
    try:
        queue = "projects/test-project/locations/us-central1/queues/orders"
        entry = {
            **pipeline_output(queue, "http://127.0.0.1:9"),
            "deadLetterSubscription": subscription,
        }
        outputs = tmp_path / "pipelines.json"
        outputs.write_text(json.dumps({"orders": entry}))
        for n in range(6):
            publish(pubsub, b'{"id": %d}' % n, f"task-{n}")
        command = [
            sys.executable, "-m", "taskclient", "replay", "--outputs", str(outputs),
            "--pipeline", "orders", "--emulator", hanging.address, "--concurrency", "2", "--json",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "PUBSUB_EMULATOR_HOST": pubsub.address},
            start_new_session=True,
        )  # fmt: skip
        try:
            # The first connection is the CLI's reachability check; the second is the gRPC
            # channel, opened by the first create, once the messages are pulled.
            wait_for(lambda: len(hanging.held) >= 2 or None, "creates to hang in flight")
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    finally:
        hanging.stop()
    assert process.returncode == 143, err
    report = json.loads(out)
    assert report["messages"] == 6
    assert report["outcomes"]["unknown"] == 2
    assert report["outcomes"]["not sent"] == 4
    assert report["stopped"] == "SIGTERM: stopped sending"
    assert waiting(pubsub) == 6


@pytest.fixture
def rejecting(tmp_path: Path, pubsub: Child, subscription: str) -> Iterator[Child]:
    """The example handler, dead-lettering to the Pub/Sub emulator's topic."""
    env = {"TASK_DEAD_LETTER_TOPIC": TOPIC, "PUBSUB_EMULATOR_HOST": pubsub.address}
    child = start_handler(tmp_path / "handler.log", env=env)
    try:
        yield child
    finally:
        child.stop()


def pulled_task_names(pubsub: Child) -> list[str]:
    """The taskName of every message waiting, each handed straight back."""
    channel = grpc.insecure_channel(pubsub.address)
    try:
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        pulled = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=5)
        ack_ids = [m.ack_id for m in pulled.received_messages]
        if ack_ids:
            subscriber.modify_ack_deadline(
                subscription=SUBSCRIPTION, ack_ids=ack_ids, ack_deadline_seconds=0
            )
        return [m.message.attributes["taskName"] for m in pulled.received_messages]
    except exceptions.DeadlineExceeded:
        return []
    finally:
        channel.close()


def test_a_replay_whose_task_fails_again_ends_and_leaves_the_new_dead_letter(
    tmp_path: Path,
    pubsub: Child,
    emulator: Child,
    rejecting: Child,
    queue: str,
    subscription: str,
) -> None:
    """Before: the run pulled its own replay's dead letter and replayed it, again and again
    (3,874 tasks in 10 minutes from the README's local steps); only --limit ended it."""
    entry = {
        **pipeline_output(queue, f"http://{rejecting.address}"),
        "deadLetterTopic": TOPIC,
        "deadLetterSubscription": subscription,
    }
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    message_id = publish(
        pubsub, b'{"id": "loop", "reject": true}', "original-loop", queue=queue.rsplit("/", 1)[-1]
    )
    replay_id = replay_task_id("original-loop", message_id)

    result = cli(outputs, emulator, pubsub, "--json", "--limit", "20")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["messages"] == 1  # the backlog: one message, replayed once
    assert report["outcomes"]["created"] == 1
    # Its task was rejected again while the run was pulling: that dead letter was seen,
    # not replayed, and left for the next replay.
    assert report["arrivedMeanwhile"] == 1
    assert report["arrivedFromThisRun"] == 1
    assert "1 dead letters arrived during the run (1 of them from this run's own replays" in (
        result.stderr
    )
    assert pulled_task_names(pubsub) == [replay_id]


@pytest.fixture
def echo() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback recording each request target exactly as it arrives."""
    targets: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            targets.append(self.path)  # the request line's target, undecoded
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads `targets`

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", targets
    finally:
        server.shutdown()
        server.server_close()


# The dead letter's `path` carries the request target as the handler received it (raw path,
# then ?query if any, percent-encoding untouched); a replay must send exactly that.
TARGETS = ["/orders?tenant=a", "/x%3Fy", "/a%2Fb/%7E?q=%20x&r=1&r=2", "/orders/"]


def test_a_replay_requests_exactly_the_path_and_query_of_the_dead_letter(
    tmp_path: Path,
    pubsub: Child,
    emulator: Child,
    echo: tuple[str, list[str]],
    queue: str,
    subscription: str,
) -> None:
    """Issue 19 item 9, the client's half: nothing between the `path` attribute and the
    request the service gets may decode, split or re-encode it. (The handler's half, that
    the attribute holds the raw target, is tested with the handler.)"""
    url, targets = echo
    entry = {**pipeline_output(queue, url), "deadLetterSubscription": subscription}
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    for n, target in enumerate(TARGETS):
        publish(pubsub, b'{"id": %d}' % n, f"task-{n}", path=target)

    result = cli(outputs, emulator, pubsub, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcomes"]["created"] == len(TARGETS)
    wait_for(lambda: len(targets) >= len(TARGETS) or None, "the replayed tasks to arrive")
    assert sorted(targets) == sorted(TARGETS)
