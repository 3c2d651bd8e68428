"""Proxy mode end to end: the example Node app (examples/node-app) behind handlers in proxy
mode, on the Cloud Tasks, Firestore and Pub/Sub emulators and fake-gcs-server. What the app
records (GET /runs) is the judge: which deliveries reached it, with which headers and body."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from local.processes import (
    REPO,
    Child,
    running,
    start_firestore_emulator,
    start_handler,
    start_storage_emulator,
)
from soak.node_app import runs, start_node_app
from taskclient.client import TaskClient
from taskclient.pipelines import Pipeline
from taskclient.task_builder import TaskSpec
from tests.app.helpers import (
    HANDLER_PROJECT,
    MAX_ATTEMPTS,
    dead_letter_topic,
    pipeline_output,
    require_gcloud,
    task_lines,
    wait_for,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("proxy")]

require_gcloud("the proxy-mode tests on the Firestore and Pub/Sub emulators")

DATABASE = "tasks-proxy"
BUCKET = "orders-payloads-proxy"
TOPIC = f"projects/{HANDLER_PROJECT}/topics/proxy-dead-letters"
SUBSCRIPTION = f"projects/{HANDLER_PROJECT}/subscriptions/proxy-dead-letters"
BIG = os.urandom(5 * 1024 * 1024)
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def app(logs: Path) -> Iterator[Child]:
    with running(start_node_app(logs / "node-app.log")) as child:
        yield child


@pytest.fixture(scope="module")
def backends(logs: Path, pubsub: Child) -> Iterator[dict[str, str]]:
    """Firestore (claims) and fake-gcs-server (claim checks) for this module, the session's
    Pub/Sub emulator (dead letters): the handlers' environment."""
    with (
        running(start_firestore_emulator(logs / "firestore.log")) as firestore_emulator,
        running(start_storage_emulator(logs / "gcs.log")) as gcs,
    ):
        client = storage.Client(
            project=HANDLER_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"http://{gcs.address}"},
        )
        client.create_bucket(BUCKET)
        yield {
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.address,
            "PUBSUB_EMULATOR_HOST": pubsub.address,
            "STORAGE_EMULATOR_HOST": f"http://{gcs.address}",
        }


def serving(handler: Child) -> bool | None:
    try:
        urllib.request.urlopen(f"http://{handler.address}/health", timeout=10).close()
        return True
    except OSError:
        return None


def start_proxy_handler(log: Path, app: Child, env: Mapping[str, str]) -> Child:
    child = start_handler(
        log,
        env={
            "TASK_APP_URL": f"http://127.0.0.1:{app.port}",
            "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "GOOGLE_CLOUD_PROJECT": HANDLER_PROJECT,
            **env,
        },
    )
    wait_for(lambda: serving(child), f"{child.name}'s worker to answer", 90)
    return child


@pytest.fixture(scope="module")
def handlers(
    logs: Path, app: Child, backends: dict[str, str], pubsub: Child
) -> Iterator[tuple[Child, Child]]:
    """Two instances of one pipeline, as Cloud Run runs them: claims in one Firestore
    database, dead letters to one topic, claim checks from one bucket, one app behind both
    (one downstream, as the app's own store would be)."""
    env = {
        **backends,
        "TASK_FIRESTORE_DATABASE": DATABASE,
        "TASK_DEAD_LETTER_TOPIC": TOPIC,
        "TASK_PAYLOAD_BUCKET": BUCKET,
    }
    with (
        dead_letter_topic(pubsub, TOPIC, SUBSCRIPTION),
        running(start_proxy_handler(logs / "a.log", app, env)) as a,
        running(start_proxy_handler(logs / "b.log", app, env)) as b,
    ):
        yield a, b


def delivery(queue: str, name: str, retry: int = 0, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-CloudTasks-QueueName": queue,
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": str(retry),
        "X-CloudTasks-TaskExecutionCount": str(retry),
        **extra,
    }


def post(handler: Child, headers: Mapping[str, str], target: str = "/orders") -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://{handler.address}{target}", data=b'{"n": 1}', headers=dict(headers)
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())["status"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["status"]


def runs_of(app: Child, key: str) -> list[dict[str, object]]:
    return [run for run in runs(app) if run["idempotencyId"] == key]


def client_for(queue: str, handler: Child, emulator: Child) -> TaskClient:
    entry = {
        **pipeline_output(queue, f"http://{handler.address}"),
        "payloadBucket": BUCKET,
        "deadLetterTopic": TOPIC,
        "deadLetterSubscription": SUBSCRIPTION,
    }
    return TaskClient({"orders": Pipeline.model_validate(entry)}, emulator=emulator.address)


def statuses(handler: Child, task_name: str) -> list[object]:
    return [line["status"] for line in task_lines(handler, task_name)]


def test_two_handlers_on_one_firestore_run_each_task_once_in_the_app(
    app: Child, handlers: tuple[Child, Child]
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    names = [f"task-{i}" for i in range(6)]

    def deliver_until_acknowledged(handler: Child, name: str) -> str:
        # As Cloud Tasks does: the same task again, next retry count, until a 2xx.
        for retry in range(50):
            code, status = post(handler, delivery(queue, name, retry))
            if code == 200:
                return status
        raise AssertionError(f"{name} never acknowledged by {handler.name}")

    with ThreadPoolExecutor(len(names) * 2) as pool:
        answers = list(
            pool.map(
                lambda job: deliver_until_acknowledged(*job),
                [(handler, name) for name in names for handler in handlers],
            )
        )
    # Every copy acknowledged: one of each pair did the work, the other saw it done.
    assert sorted(answers) == sorted(["done", "duplicate"] * len(names))
    for name in names:
        [run] = runs_of(app, f"{queue}/{name}")
        assert run["taskName"] == name


def test_a_permanent_answer_is_dead_lettered_and_its_replay_reaches_the_app(
    tmp_path: Path,
    app: Child,
    handlers: tuple[Child, Child],
    emulator: Child,
    pubsub: Child,
    queue: str,
) -> None:
    handler = handlers[0]
    with client_for(queue, handler, emulator) as client:
        result = client.enqueue("orders", TaskSpec(payload={"sku": "gone"}, path="/permanent"))
    assert result.task_name
    short = result.task_name.rsplit("/", 1)[-1]
    key = f"{queue.rsplit('/', 1)[-1]}/{short}"
    wait_for(lambda: "rejected" in statuses(handler, short) or None, "the rejection")
    [line] = [line for line in task_lines(handler, short) if line["status"] == "rejected"]
    assert "the app answered 422" in str(line["reason"])
    [original] = runs_of(app, key)  # rejected once, never retried

    outputs = tmp_path / "pipelines.json"
    entry = {
        **pipeline_output(queue, f"http://{handler.address}"),
        "deadLetterTopic": TOPIC,
        "deadLetterSubscription": SUBSCRIPTION,
    }
    outputs.write_text(json.dumps({"orders": entry}))
    replay = subprocess.run(
        [
            sys.executable, "-m", "taskclient", "replay", "--outputs", str(outputs),
            "--pipeline", "orders", "--emulator", emulator.address, "--json",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PUBSUB_EMULATOR_HOST": pubsub.address},
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["messages"] == 1
    # The replay carries its original's key: the app sees the same task again, from a new
    # Cloud Tasks task, with the same body.
    replayed = wait_for(
        lambda: [run for run in runs_of(app, key) if run["taskName"] != short] or None,
        "the replay to reach the app",
    )
    [again] = replayed
    assert (again["target"], again["sha256"]) == ("/permanent", original["sha256"])


def test_a_5mb_claim_check_reaches_the_app_byte_for_byte(
    app: Child,
    handlers: tuple[Child, Child],
    backends: dict[str, str],
    emulator: Child,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The enqueuer uploads the body as google-cloud-storage finds the emulator.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", backends["STORAGE_EMULATOR_HOST"])
    with client_for(queue, handlers[0], emulator) as client:
        result = client.enqueue("orders", TaskSpec(payload=BIG, path="/orders/import"))
    assert result.task_name
    key = f"{queue.rsplit('/', 1)[-1]}/{result.task_name.rsplit('/', 1)[-1]}"
    [run] = wait_for(lambda: runs_of(app, key) or None, "the 5 MB task to reach the app", 120)
    assert (run["bytes"], run["sha256"]) == (len(BIG), hashlib.sha256(BIG).hexdigest())
    # The original body's type, never the claim check's reference.
    assert run["contentType"] == "application/octet-stream"


def test_a_5xx_is_retried_then_done(
    app: Child, handlers: tuple[Child, Child], emulator: Child, queue: str
) -> None:
    handler = handlers[0]
    with client_for(queue, handler, emulator) as client:
        result = client.enqueue("orders", TaskSpec(payload={"n": 1}, path="/flaky?failures=1"))
    assert result.task_name
    short = result.task_name.rsplit("/", 1)[-1]
    wait_for(lambda: "done" in statuses(handler, short) or None, "the retry to be done")
    assert statuses(handler, short) == ["failed", "done"]
    seen = runs_of(app, f"{queue.rsplit('/', 1)[-1]}/{short}")
    assert [run["retryCount"] for run in seen] == [0, 1]
    assert seen[0]["target"] == "/flaky?failures=1"


def test_the_app_sees_the_tasks_trace_from_the_handlers_span(
    app: Child, handlers: tuple[Child, Child]
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    traceparent = f"00-{TRACE_ID}-b7ad6b7169203331-01"
    assert post(handlers[0], delivery(queue, "traced", traceparent=traceparent)) == (200, "done")
    [run] = runs_of(app, f"{queue}/traced")
    version, trace_id, span_id, _ = str(run["traceparent"]).split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    assert span_id != "b7ad6b7169203331"


@pytest.fixture(scope="module")
def short(logs: Path, app: Child, backends: dict[str, str]) -> Iterator[Child]:
    """A handler with Cloud Tasks' smallest dispatch deadline, 15 s: the request waits for
    the app for most of its answer budget, then answers that it is still running. The tests'
    apps answer only when told to (or never): nothing depends on timing. (With 4 s, the
    claim's share of the budget ran out on a starved Firestore emulator under contention:
    store_unavailable instead of the hold.)"""
    env = {**backends, "TASK_FIRESTORE_DATABASE": DATABASE, "TASK_DISPATCH_DEADLINE": "15s"}
    with running(start_proxy_handler(logs / "short.log", app, env)) as handler:
        yield handler


def release(app: Child, name: str) -> int:
    url = f"http://{app.address}/release?name={name}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.loads(response.read())["released"])


def held_line(handler: Child, name: str) -> dict[str, object] | None:
    return next((line for line in task_lines(handler, name) if line.get("heldOver")), None)


def test_a_hung_app_is_answered_for_within_the_budget_and_keeps_its_claim(
    app: Child, short: Child
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    # 409: Cloud Tasks heard the answer and retries; the claim is not released, so the
    # retry finds it held (still 409) and never reaches the app while it works.
    assert post(short, delivery(queue, "hung"), "/hang") == (409, "in_progress")
    assert post(short, delivery(queue, "hung", retry=1), "/hang") == (409, "in_progress")
    [run] = runs_of(app, f"{queue}/hung")
    assert run["target"] == "/hang"
    [first, second] = task_lines(short, "hung")
    assert first["appStillRunning"] is True and "appStillRunning" not in second


def test_an_app_outliving_the_budget_runs_the_task_once(app: Child, short: Child) -> None:
    queue, name = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    target = f"/wait?name={name}"
    assert post(short, delivery(queue, "slow"), target) == (409, "in_progress")
    assert post(short, delivery(queue, "slow", retry=1), target) == (409, "in_progress")
    assert release(app, name) == 1  # the app answers 200, long after the request
    line = wait_for(lambda: held_line(short, "slow"), "the held task to be settled")
    assert line["status"] == "done"
    # Settled in Firestore as if it had answered in time: later deliveries are duplicates.
    assert post(short, delivery(queue, "slow", retry=2), target) == (200, "duplicate")
    assert len(runs_of(app, f"{queue}/slow")) == 1


def test_a_held_task_the_app_then_fails_is_released_and_retried(app: Child, short: Child) -> None:
    # The worker releases the claim it was handed (FirestoreStore.hand_over): were it still
    # the request thread's, the release would not be its own and the task would stay held.
    queue, name = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    assert post(short, delivery(queue, "flaky"), f"/wait?name={name}&status=503") == (
        409,
        "in_progress",
    )
    assert release(app, name) == 1
    line = wait_for(lambda: held_line(short, "flaky"), "the held task to be settled")
    assert line["status"] == "failed" and "503" in str(line["error"])
    assert post(short, delivery(queue, "flaky", retry=1), "/orders") == (200, "done")
    generations = [run["fencingGeneration"] for run in runs_of(app, f"{queue}/flaky")]
    assert generations == [1, 2]


# Lower-case escapes, an escaped slash, `+`, and sub-delims RFC 3986 allows unescaped.
VERBATIM = "/a%2fb/~u;v=1,w!$'()*@:?x=%e2%82%ac&y=a+b&z=/?:@"


def test_the_target_reaches_the_node_app_byte_for_byte(
    app: Child, handlers: tuple[Child, Child]
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    assert post(handlers[0], delivery(queue, "exact"), VERBATIM) == (200, "done")
    [run] = runs_of(app, f"{queue}/exact")
    assert run["target"] == VERBATIM
