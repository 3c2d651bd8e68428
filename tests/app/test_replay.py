"""`taskclient.replay` against the Cloud Tasks emulator and a scripted Pub/Sub subscription:
names are deterministic, a message is acknowledged only once its task exists, a dry run
acknowledges nothing, and a message replay can't read is reported and handed back, not lost."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.pubsub_v1 import PubsubMessage, PullResponse, ReceivedMessage, SubscriberAsyncClient

from local.processes import REPO, Child
from taskclient import transport
from taskclient.bulk import BulkRun, Outcome
from taskclient.pipelines import Pipeline
from taskclient.replay import Arrived, Replayed, ReplayRun, decode, replay_task_id
from taskclient.task_builder import task_id
from tests.app.helpers import pipeline_output, run_async

pytestmark = pytest.mark.timeout(120)

SUBSCRIPTION = "projects/test-project/subscriptions/orders-dead-letters"


def dead_letter(
    message_id: str,
    changed: dict[str, str] | None = None,
    body: bytes = b'{"id": 1}',
    published: datetime | None = None,
) -> PubsubMessage:
    """A message as the handler publishes it; `changed` overrides attributes (an empty
    string removes one); `published`: its publish time (none when not given)."""
    base = {
        "taskName": f"task-{message_id}",
        "queue": "orders",
        "retryCount": "4",
        "reason": "payload asked to be rejected",
        "path": "/orders",
        "contentType": "application/json",
        "headers": json.dumps({"X-Tenant": "acme", "X-CloudTasks-TaskName": f"task-{message_id}"}),
    }
    base.update(changed or {})
    return PubsubMessage(
        data=body,
        message_id=message_id,
        attributes={k: v for k, v in base.items() if v != ""},
        publish_time=published,
    )


@dataclass
class Subscription:
    """A Pub/Sub subscription as the replay sees it: pull hands out what is neither
    acknowledged nor leased; acknowledge and modify_ack_deadline as Pub/Sub does them.
    `on_ack` runs before an acknowledge is accepted (to check what exists then)."""

    messages: list[PubsubMessage]
    on_ack: Callable[[list[str]], None] = lambda _ids: None
    fail_acks: bool = False
    acked: list[str] = field(default_factory=list)
    leased: set[str] = field(default_factory=set)
    handed_back: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _acks: int = 0

    def _message(self, ack_id: str) -> str:
        return ack_id.split("#", 1)[0]

    async def pull(self, *, subscription: str, max_messages: int, timeout: float) -> PullResponse:
        assert subscription == SUBSCRIPTION
        self.calls.append("pull")
        ready = [
            m
            for m in self.messages
            if m.message_id not in self.acked and m.message_id not in self.leased
        ][:max_messages]
        received = []
        for message in ready:
            self.leased.add(message.message_id)
            self._acks += 1
            received.append(
                ReceivedMessage(ack_id=f"{message.message_id}#{self._acks}", message=message)
            )
        return PullResponse(received_messages=received)

    async def acknowledge(self, *, subscription: str, ack_ids: list[str], timeout: float) -> None:
        ids = [self._message(a) for a in ack_ids]
        self.calls.append(f"ack {' '.join(ids)}")
        self.on_ack(ids)
        if self.fail_acks:
            raise exceptions.ServiceUnavailable("acknowledge lost")
        self.acked += ids
        self.leased -= set(ids)

    async def modify_ack_deadline(
        self, *, subscription: str, ack_ids: list[str], ack_deadline_seconds: int, timeout: float
    ) -> None:
        ids = [self._message(a) for a in ack_ids]
        self.calls.append(f"deadline {ack_deadline_seconds} {' '.join(ids)}")
        if ack_deadline_seconds == 0:
            self.handed_back += ids
            self.leased -= set(ids)


def pipeline_for(queue: str, handler_url: str = "http://127.0.0.1:9") -> Pipeline:
    output = {**pipeline_output(queue, handler_url), "deadLetterSubscription": SUBSCRIPTION}
    return Pipeline.model_validate(output)


def replay(
    subscription: Subscription,
    pipeline: Pipeline,
    emulator: Child,
    *,
    dry_run: bool = False,
    limit: int | None = None,
) -> list[Replayed]:
    async def run() -> list[Replayed]:
        client = transport.async_client(emulator.address)
        try:
            bulk = BulkRun(
                client, pipeline, concurrency=8, retry_deadline_s=5.0, call_timeout_s=10.0
            )
            subscriber = cast(SubscriberAsyncClient, subscription)
            return await ReplayRun(
                subscriber, SUBSCRIPTION, pipeline, bulk, dry_run=dry_run, limit=limit
            ).run()
        finally:
            await client.transport.close()

    return run_async(run())


def task_names(admin: tasks_v2.CloudTasksClient, queue: str) -> set[str]:
    return {task.name for task in admin.list_tasks(parent=queue)}


def test_replay_names_are_deterministic_and_distinct() -> None:
    assert replay_task_id("abc", "17") == replay_task_id("abc", "17")
    assert replay_task_id("abc", "17") == task_id("replay:abc:17")
    names = {replay_task_id(t, m) for t in ("abc", "abd") for m in ("17", "18")}
    assert len(names) == 4
    # The same task name dead-lettered twice (two messages) replays twice.
    assert replay_task_id("abc", "17") != replay_task_id("abc", "18")


def test_acknowledged_only_once_the_task_exists_and_each_replayed_once(
    emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    """Before (no replay): dead letters were log lines, nothing re-created them."""
    admin.pause_queue(name=queue)  # tasks stay listable
    pipeline = pipeline_for(queue)
    checked: list[str] = []

    def exists_before_ack(ids: list[str]) -> None:
        existing = task_names(admin, queue)
        for message_id in ids:
            assert f"{queue}/tasks/{replay_task_id(f'task-{message_id}', message_id)}" in existing
            checked.append(message_id)

    messages = [dead_letter(str(n)) for n in range(1, 6)]
    subscription = Subscription(messages, on_ack=exists_before_ack)
    results = replay(subscription, pipeline, emulator)
    assert [r.outcome.outcome for r in results] == [Outcome.CREATED] * 5
    assert sorted(subscription.acked) == sorted(checked) == [str(n) for n in range(1, 6)]
    assert subscription.handed_back == []
    # Each message's deadline was extended (retry deadline 5 s + drain 5 s + 60 s) before its task
    # was created, so it is not
    # redelivered to another replayer meanwhile.
    assert subscription.calls[1].startswith("deadline 70 ")
    tasks = list(
        admin.list_tasks(request={"parent": queue, "response_view": tasks_v2.Task.View.FULL})
    )
    assert len(tasks) == 5
    task = next(t for t in tasks if t.name.endswith(replay_task_id("task-1", "1")))
    assert task.http_request.body == b'{"id": 1}'
    assert task.http_request.url.endswith("/orders")
    headers = dict(task.http_request.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Tenant"] == "acme"
    assert headers["X-Replay-Of"] == "orders/task-1"  # the original task, queue/name
    assert not any(name.lower().startswith("x-cloudtasks-") for name in headers)

    # The same messages again (an acknowledgement that never arrived): no second task.
    again = Subscription(messages)
    results = replay(again, pipeline, emulator)
    assert [r.outcome.outcome for r in results] == [Outcome.EXISTED] * 5
    assert sorted(again.acked) == [str(n) for n in range(1, 6)]
    assert len(task_names(admin, queue)) == 5


def test_a_lost_acknowledgement_is_reported_and_the_message_handed_back(
    emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    admin.pause_queue(name=queue)
    subscription = Subscription([dead_letter("1")], fail_acks=True)
    [result] = replay(subscription, pipeline_for(queue), emulator)
    assert result.outcome.outcome is Outcome.FAILED
    assert "exists, but the message was not acknowledged" in (result.outcome.error or "")
    assert subscription.handed_back == ["1"]
    assert len(task_names(admin, queue)) == 1


def test_dry_run_creates_and_acknowledges_nothing_and_hands_every_message_back(
    emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    admin.pause_queue(name=queue)
    pipeline = pipeline_for(queue)
    messages = [dead_letter("1"), dead_letter("2", {"path": ""})]
    subscription = Subscription(messages)
    first, second = replay(subscription, pipeline, emulator, dry_run=True)
    assert first.outcome.outcome is Outcome.NOT_SENT
    assert first.outcome.task_name == f"{queue}/tasks/{replay_task_id('task-1', '1')}"
    assert second.outcome.outcome is Outcome.FAILED
    assert subscription.acked == []
    assert not any(call.startswith("ack") for call in subscription.calls)
    assert sorted(subscription.handed_back) == ["1", "2"]
    assert task_names(admin, queue) == set()


@pytest.mark.parametrize(
    ("attributes", "error"),
    [
        ({"path": ""}, "missing attribute path"),
        ({"taskName": "", "contentType": ""}, "missing attribute taskName, contentType"),
        ({"headers": "{not json"}, "attribute headers: invalid JSON"),
        ({"headers": '["X-A"]'}, "attribute headers: not a JSON object of strings"),
        ({"path": "orders"}, "--path: 'orders' must start with '/'"),
    ],
)
def test_a_message_replay_cannot_read_is_reported_not_acknowledged_not_lost(
    emulator: Child,
    admin: tasks_v2.CloudTasksClient,
    queue: str,
    attributes: dict[str, str],
    error: str,
) -> None:
    admin.pause_queue(name=queue)
    subscription = Subscription([dead_letter("1"), dead_letter("2", attributes)])
    good, bad = replay(subscription, pipeline_for(queue), emulator)
    assert good.outcome.outcome is Outcome.CREATED
    assert bad.outcome.outcome is Outcome.FAILED
    assert error in (bad.outcome.error or "")
    assert subscription.acked == ["1"]
    assert subscription.handed_back == ["2"]  # back in the subscription for the next replay
    assert len(task_names(admin, queue)) == 1


def test_limit_bounds_the_messages_handled(
    emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    admin.pause_queue(name=queue)
    subscription = Subscription([dead_letter(str(n)) for n in range(1, 8)])
    results = replay(subscription, pipeline_for(queue), emulator, limit=3)
    assert len(results) == 3
    assert sorted(subscription.acked) == ["1", "2", "3"]
    assert len(task_names(admin, queue)) == 3


def test_a_missing_queue_aborts_and_every_message_goes_back(emulator: Child) -> None:
    missing = "projects/test-project/locations/us-central1/queues/no-such-queue"
    subscription = Subscription([dead_letter(str(n)) for n in range(1, 4)])
    results = replay(subscription, pipeline_for(missing), emulator)
    assert all(not r.outcome.ok for r in results)
    assert subscription.acked == []
    assert sorted(subscription.handed_back) == ["1", "2", "3"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskclient", "replay", *args],
        capture_output=True, text=True, cwd=REPO, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_a_pipeline_without_a_dead_letter_subscription_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    outputs = tmp_path / "pipelines.json"
    queue = "projects/p/locations/us-central1/queues/orders"
    outputs.write_text(json.dumps({"orders": pipeline_output(queue, "http://127.0.0.1:9")}))
    result = cli("--outputs", str(outputs), "--pipeline", "orders")
    assert result.returncode == 2
    assert result.stderr == (
        "error: --pipeline: pipeline 'orders' has no deadLetterSubscription in its stack output"
        " (deployed before dead letters went to Pub/Sub? run `pulumi up` first)\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--limit", "0"], "error: --limit: 0 must be at least 1\n"),
        (["--concurrency", "0"], "error: --concurrency: 0 must be 1..1000\n"),
        (
            ["--pubsub-emulator", "127.0.0.1:"],
            "error: --pubsub-emulator: '127.0.0.1:' is not HOST:PORT with a port 1..65535"
            " (an IPv6 host in brackets: [::1]:8123)\n",
        ),
    ],
)
def test_bad_arguments_name_themselves(tmp_path: Path, args: list[str], error: str) -> None:
    outputs = tmp_path / "pipelines.json"
    queue = "projects/p/locations/us-central1/queues/orders"
    entry = {**pipeline_output(queue, "http://127.0.0.1:9"), "deadLetterSubscription": SUBSCRIPTION}
    outputs.write_text(json.dumps({"orders": entry}))
    result = cli("--outputs", str(outputs), "--pipeline", "orders", *args)
    assert result.returncode == 2
    assert result.stderr == error


def test_a_malformed_subscription_path_names_the_field(tmp_path: Path) -> None:
    outputs = tmp_path / "pipelines.json"
    queue = "projects/p/locations/us-central1/queues/orders"
    entry = {**pipeline_output(queue, "http://127.0.0.1:9"), "deadLetterSubscription": "orders"}
    outputs.write_text(json.dumps({"orders": entry}))
    result = cli("--outputs", str(outputs), "--pipeline", "orders")
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: --outputs {outputs}: pipeline 'orders', deadLetterSubscription: String should"
    )


def test_a_replay_names_the_original_task_even_when_it_replays_a_replays_dead_letter() -> None:
    # The handler keys a replay's idempotency on X-Replay-Of: the root task, always.
    first = decode(ReceivedMessage(message=dead_letter("1"), ack_id="a"))
    assert first.spec().replay_of == "orders/task-1"  # a letter without originalTask
    changed = {"taskName": "replay-9", "queue": "orders-9z", "originalTask": "orders/task-1"}
    again = decode(ReceivedMessage(message=dead_letter("2", changed)))
    assert again.spec().replay_of == "orders/task-1"
    # A replay's letter written before letters carried originalTask: from its headers.
    headers = json.dumps({"X-Tenant": "acme", "x-replay-of": "orders/task-1"})
    older = decode(ReceivedMessage(message=dead_letter("3", {**changed, "originalTask": "",
                                                            "headers": headers})))  # fmt: skip
    spec = older.spec()
    assert spec.replay_of == "orders/task-1"
    assert [n for n in spec.headers if n.lower() == "x-replay-of"] == []  # sent once, by spec


def test_messages_published_after_the_run_began_are_left_for_the_next_replay(
    emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    admin.pause_queue(name=queue)
    pipeline = pipeline_for(queue)
    old = dead_letter("1", published=datetime.now(UTC) - timedelta(minutes=5))
    new = dead_letter("2", published=datetime.now(UTC) + timedelta(minutes=5))  # during the run
    subscription = Subscription([old, new])

    async def run() -> tuple[list[Replayed], list[Arrived]]:
        client = transport.async_client(emulator.address)
        try:
            bulk = BulkRun(client, pipeline, concurrency=2, retry_deadline_s=5, call_timeout_s=10)
            subscriber = cast(SubscriberAsyncClient, subscription)
            replay_run = ReplayRun(subscriber, SUBSCRIPTION, pipeline, bulk)
            return await replay_run.run(), replay_run.arrived
        finally:
            await client.transport.close()

    results, arrived = run_async(run())
    assert [(r.message_id, r.outcome.outcome) for r in results] == [("1", Outcome.CREATED)]
    assert arrived == [Arrived("2", "task-2", own=False)]
    assert subscription.acked == ["1"]
    assert subscription.handed_back == ["2"]
    assert task_names(admin, queue) == {f"{queue}/tasks/{replay_task_id('task-1', '1')}"}
