"""The handler's guarantees across instances, against Google's own emulators: idempotency
records in the Firestore emulator, dead letters on the Pub/Sub emulator.

Deliveries are POSTed straight to the handlers with the X-CloudTasks headers, as Cloud Tasks
sends them, so that both handlers get the same task at the same moment (the Cloud Tasks
emulator would deliver each task once, to one URL).
"""

from __future__ import annotations

import base64
import json
import logging.config
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from google.api_core import exceptions
from google.cloud import firestore, pubsub_v1

from handler import example
from handler.app import create_app
from handler.firestore_store import COLLECTION, RENEW_AFTER, FirestoreStore, document_id
from handler.logs import logging_config
from handler.store import Claim
from handler.task import TaskRequest
from local.processes import (
    Child,
    free_port,
    running,
    start_firestore_emulator,
    start_handler,
    start_pubsub_emulator,
)
from tests.app.helpers import require_gcloud, wait_for

pytestmark = pytest.mark.timeout(300)

require_gcloud("the handler's Firestore and Pub/Sub tests")

PROJECT = "test-project"
DATABASE = "tasks-test"


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both emulators, and the test process's clients pointed at them."""
    logs = tmp_path_factory.mktemp("gcloud-emulators")
    with (
        running(start_firestore_emulator(logs / "firestore.log")) as firestore_emulator,
        running(start_pubsub_emulator(logs / "pubsub.log")) as pubsub_emulator,
        pytest.MonkeyPatch.context() as patch,
    ):
        env = {
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.address,
            "PUBSUB_EMULATOR_HOST": pubsub_emulator.address,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }
        for name, value in env.items():
            patch.setenv(name, value)
        FIRESTORE_GROUP.append(firestore_emulator.process.pid)
        yield env


FIRESTORE_GROUP: list[int] = []
"""The Firestore emulator's process group, to freeze it (SIGSTOP) and thaw it (SIGCONT)."""


@pytest.fixture
def firestore_group(emulators: dict[str, str]) -> int:
    return FIRESTORE_GROUP[-1]


@pytest.fixture
def db(emulators: dict[str, str]) -> firestore.Client:
    return firestore.Client(project=PROJECT, database=DATABASE)


def delivery(queue: str, name: str, retry: int = 0, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-CloudTasks-QueueName": queue,
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": str(retry),
        "X-CloudTasks-TaskExecutionCount": str(retry),
        **extra,
    }


def post(
    handler: Child, headers: Mapping[str, str], body: bytes, target: str = "/work"
) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://{handler.address}{target}", data=body, headers=dict(headers), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())["status"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["status"]


def handler_env(emulators: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**emulators, "TASK_FIRESTORE_DATABASE": DATABASE, "TASK_MAX_ATTEMPTS": "3", **extra}


@contextmanager
def two_handlers(
    emulators: Mapping[str, str], logs: Path, **extra: str
) -> Iterator[tuple[Child, Child, str]]:
    """Two handler instances on the same Firestore, as two Cloud Run instances are, and a
    fresh queue name for the test's tasks."""
    env = handler_env(emulators, **extra)
    with (
        running(start_handler(logs / "a.log", env=env)) as a,
        running(start_handler(logs / "b.log", env=env)) as b,
    ):
        for handler in (a, b):
            wait_for(lambda h=handler: serving(h), f"{handler.name}'s worker to answer", 90)
        yield a, b, f"q-{uuid.uuid4().hex[:8]}"


def serving(handler: Child) -> bool | None:
    """Whether the handler's gunicorn worker answers. The handler announces its port once
    gunicorn listens; the worker that imports the app and its Firestore client comes up
    after that (many seconds on a loaded machine), and a test timing a lease from its first
    request must not count that."""
    try:
        urllib.request.urlopen(f"http://{handler.address}/", timeout=10).close()
    except urllib.error.HTTPError:
        return True  # answered (GET is not a task route): the worker is up
    except OSError:
        return None
    return True


def runs(handler: Child, name: str) -> int:
    """How often the example processor started this task (it logs `working` first)."""
    return sum(
        1
        for line in handler.log_lines()
        if line.get("message") == "working" and line.get("taskName") == name
    )


# --- Firestore: exactly once across instances ------------------------------------------------


def test_two_handlers_given_every_task_at_once_process_each_exactly_once(
    emulators: dict[str, str], tmp_path: Path, db: firestore.Client
) -> None:
    names = [f"task-{n}" for n in range(40)]
    body = json.dumps({"sleepSeconds": 0.3}).encode()
    with two_handlers(emulators, tmp_path) as (a, b, queue):
        assert "firestore database 'tasks-test'" in json.dumps(a.log_lines())

        def until_acknowledged(handler: Child, name: str) -> list[str]:
            # Like Cloud Tasks: a non-2xx answer is delivered again, with the next retry count.
            answers = []
            for retry in range(40):
                code, status = post(handler, delivery(queue, name, retry), body)
                answers.append(status)
                if code == 200:
                    return answers
                time.sleep(0.2)
            pytest.fail(f"{name} never acknowledged by {handler.name}: {answers}")

        with ThreadPoolExecutor(max_workers=2 * len(names)) as pool:
            futures = {
                (name, h.log.name): pool.submit(until_acknowledged, h, name)
                for name in names
                for h in (a, b)
            }
            answers = {key: future.result() for key, future in futures.items()}
        started = {name: runs(a, name) + runs(b, name) for name in names}
    assert started == dict.fromkeys(names, 1)
    for name in names:
        finals = sorted(answers[name, log][-1] for log in ("a.log", "b.log"))
        assert finals == ["done", "duplicate"], (name, answers[name, "a.log"])
    # The other delivery did arrive while the first was at work, and was told to come back.
    assert any("in_progress" in sequence for sequence in answers.values())
    record = db.collection(COLLECTION).document(document_id(f"{queue}/task-0")).get().to_dict()
    assert record is not None and record["state"] == "processed"
    # The TTL policy deletes a record the stack's idempotency.ttl after its last write.
    written_ago = datetime.now(UTC) - record["updatedAt"]
    assert timedelta(0) <= written_ago < timedelta(minutes=5)


# A 6 s dispatch deadline: claims leased for 3 s and renewed once 1 s old (2 s of slack on
# a loaded machine), answers heard for 5 s (handler/deadlines.py).
SHORT_DEADLINE = {"TASK_DISPATCH_DEADLINE": "6s"}
LEASE_S = 3.0
# Unlimited attempts besides: every redelivery is told to come back at once, none waits.
NO_LAST_ATTEMPT = {**SHORT_DEADLINE, "TASK_MAX_ATTEMPTS": "-1"}


def start_and_kill(handler: Child, queue: str) -> float:
    """Has HANDLER start task `t` (a minute's work), SIGKILLs it mid-task; when it was sent."""
    sent = time.time()

    def killed_mid_task() -> None:
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            post(handler, delivery(queue, "t"), json.dumps({"sleepSeconds": 60}).encode())

    first = threading.Thread(target=killed_mid_task, daemon=True)
    first.start()
    wait_for(lambda: runs(handler, "t") or None, f"{handler.name} to start the task")
    os.killpg(handler.process.pid, signal.SIGKILL)
    first.join(10)
    return sent


def test_a_killed_handlers_claim_blocks_the_task_until_its_lease_ends_and_no_longer(
    emulators: dict[str, str], tmp_path: Path
) -> None:
    with two_handlers(emulators, tmp_path, **NO_LAST_ATTEMPT) as (a, b, queue):
        sent = start_and_kill(a, queue)
        # The redelivery carries no sleep, so that the test doesn't wait for it: only the
        # queue and task name identify a task.
        answers: list[tuple[float, int, str]] = []
        for retry in range(1, 100):
            code, status = post(b, delivery(queue, "t", retry), b"{}")
            answers.append((time.time(), code, status))
            if code == 200:
                break
            time.sleep(0.1)
    statuses = [status for _, _, status in answers]
    assert statuses[-1] == "done" and set(statuses[:-1]) == {"in_progress"}
    assert len(statuses) > 5  # answered in_progress for a while after the kill
    # Free once the lease has run from its last renewal, before the kill.
    acknowledged = answers[-1][0]
    assert sent + LEASE_S <= acknowledged < sent + LEASE_S + 3.0
    done = [line for line in b.log_lines() if line.get("status") == "done"]
    assert len(done) == 1


def test_work_that_outlives_its_lease_and_deadline_keeps_its_claim(
    emulators: dict[str, str], tmp_path: Path
) -> None:
    # 10 s of work: three leases, and past the 5 s in which its answer is heard. Cloud Tasks
    # delivers the task again meanwhile; before claims were renewed, a redelivery took the
    # lapsed claim over and ran the task a second time.
    with two_handlers(emulators, tmp_path, **NO_LAST_ATTEMPT) as (a, b, queue):
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(
                post, a, delivery(queue, "t"), json.dumps({"sleepSeconds": 10}).encode()
            )
            wait_for(lambda: runs(a, "t") or None, "handler a to start the task")
            redeliveries = []
            while not first.done():
                redeliveries.append(post(b, delivery(queue, "t", 1), b"{}"))
                time.sleep(0.2)
            assert first.result() == (200, "done")
        after = post(b, delivery(queue, "t", 2), b"{}")
        done = [line for h in (a, b) for line in h.log_lines() if line.get("status") == "done"]
        lost = [line for line in a.log_lines() if "claim lost" in str(line.get("message"))]
    assert [line["retryCount"] for line in done] == [0]  # a's, once
    # in_progress while a works; a redelivery sent between a's finishing and its answer
    # arriving here is already a duplicate. Never a second run.
    held = redeliveries.count((409, "in_progress"))
    assert held > 10
    assert redeliveries == [(409, "in_progress")] * held + [(200, "duplicate")] * (
        len(redeliveries) - held
    )
    assert after == (200, "duplicate")
    assert lost == []


def test_the_last_attempt_outlasts_a_killed_holders_claim_and_does_the_task(
    emulators: dict[str, str], tmp_path: Path
) -> None:
    # Cloud Tasks drops a task after its last attempt: answered 409 there, a task whose holder
    # died would be lost. The last attempt waits while it is heard (5 s), the lease is 3 s.
    # 3 attempts (handler_env): retry count 2 is the last.
    with two_handlers(emulators, tmp_path, **SHORT_DEADLINE) as (a, b, queue):
        start_and_kill(a, queue)
        asked = time.time()
        answer = post(b, delivery(queue, "t", 2), b"{}")
        waited = time.time() - asked
    assert answer == (200, "done")
    assert 1.0 < waited < 5.0  # it did wait for the lease, and answered while heard
    assert runs(b, "t") == 0  # the redelivery carries no sleep: its "done" line is the proof
    assert [line["retryCount"] for line in b.log_lines() if line.get("status") == "done"] == [2]


def test_store_calls_against_the_emulator(emulators: dict[str, str]) -> None:
    key = f"q-{uuid.uuid4().hex[:8]}/t"
    with two_stores(lease_s=2) as (store, other):
        assert store.claim(key) is Claim.ACQUIRED
        assert other.claim(key) is Claim.IN_PROGRESS
        time.sleep(5)  # two and a half leases: renewed meanwhile
        assert other.claim(key) is Claim.IN_PROGRESS
        store.close()  # its holder stops, as when its instance dies
        time.sleep(2.5)
        assert other.claim(key) is Claim.ACQUIRED  # the first claim's lease has run out
        store.release(key)  # not its claim any more: changes nothing
        assert store.claim(key) is Claim.IN_PROGRESS
        other.release(key)
        assert store.claim(key) is Claim.ACQUIRED
        store.complete(key)
        assert other.claim(key) is Claim.DONE


@contextmanager
def two_stores(lease_s: float) -> Iterator[tuple[FirestoreStore, FirestoreStore]]:
    """Two instances' stores on one database; their renewers stopped after."""
    lease = timedelta(seconds=lease_s)
    store = FirestoreStore(project=PROJECT, database=DATABASE, lease=lease)
    other = FirestoreStore(project=PROJECT, database=DATABASE, lease=lease)
    try:
        yield store, other
    finally:
        store.close()
        other.close()


@contextmanager
def store_and_record(
    db: firestore.Client, lease_s: float
) -> Iterator[tuple[FirestoreStore, str, firestore.DocumentReference]]:
    """A store, a fresh task key and its record's document; the store's renewer stopped after."""
    store = FirestoreStore(project=PROJECT, database=DATABASE, lease=timedelta(seconds=lease_s))
    key = f"q-{uuid.uuid4().hex[:8]}/t"
    try:
        yield store, key, db.collection(COLLECTION).document(document_id(key))
    finally:
        store.close()


def test_a_dead_lettered_record_is_claimed_by_one_replay_and_by_no_redelivery(
    emulators: dict[str, str], db: firestore.Client
) -> None:
    with store_and_record(db, lease_s=5) as (store, key, ref):
        assert store.claim(key) is Claim.ACQUIRED
        store.complete(key, dead_lettered=True)
        assert (ref.get().to_dict() or {})["state"] == "dead_lettered"
        assert store.claim(key) is Claim.DONE  # a redelivery of the original
        assert store.claim(key, replay=True) is Claim.ACQUIRED
        assert store.claim(key, replay=True) is Claim.IN_PROGRESS  # a second replay, meanwhile
        store.complete(key)
        assert (ref.get().to_dict() or {})["state"] == "processed"
        assert store.claim(key, replay=True) is Claim.DONE  # the second replay, later
        # A claim that lapsed and then failed past its deadline doesn't undo the processing
        # another delivery did meanwhile: its replay stays a duplicate.
        store.complete(key, dead_lettered=True)
        assert (ref.get().to_dict() or {})["state"] == "processed"
        # Records written before processed and dead-lettered were told apart say "done":
        # a replay may claim one (it may be a dead letter's), a redelivery may not.
        old = f"q-{uuid.uuid4().hex[:8]}/t"
        db.collection(COLLECTION).document(document_id(old)).set({"state": "done", "key": old})
        assert store.claim(old) is Claim.DONE
        assert store.claim(old, replay=True) is Claim.ACQUIRED


def test_a_claim_is_renewed_only_once_its_share_of_the_lease_has_passed(
    emulators: dict[str, str], db: firestore.Client
) -> None:
    # Most tasks are settled sooner and never cost a renewal. Both lease ends are stamped
    # by the store (the time after its read + the lease), so their difference is when the
    # renewal ran after the claim, whatever the machine's load made of this test's waits;
    # the claim's lease runs from before its read, which took at most the whole call.
    lease = timedelta(seconds=3)
    with store_and_record(db, lease_s=3) as (store, key, ref):
        asked = time.monotonic()
        assert store.claim(key) is Claim.ACQUIRED
        claim_call = timedelta(seconds=time.monotonic() - asked)
        claimed = (ref.get().to_dict() or {})["leaseUntil"]

        def renewed_until() -> datetime | None:
            until = (ref.get().to_dict() or {})["leaseUntil"]
            return until if until != claimed else None

        renewed = wait_for(renewed_until, "the renewal", timeout_s=10)
        # Never before its share of the lease has passed; always before the lease ends.
        assert claimed + lease * RENEW_AFTER - claim_call <= renewed < claimed + lease


def test_a_claim_taken_over_while_held_is_reported_lost_and_no_longer_renewed(
    emulators: dict[str, str], db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # Through the handler's real logging configuration, whose redaction would blank a field
    # named like a credential ("key").
    logging.config.dictConfig(logging_config())
    try:
        with store_and_record(db, lease_s=1) as (store, key, ref):
            assert store.claim(key) is Claim.ACQUIRED
            # What a takeover leaves: the record claimed by another delivery's token.
            ref.update({"owner": "another-delivery", "generation": 2})

            def lost_lines() -> list[dict[str, object]] | None:
                lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
                return [line for line in lines if "claim lost" in str(line.get("message"))] or None

            [lost] = wait_for(lost_lines, "the renewer to notice")
            assert (lost["queue"], lost["taskName"], lost["severity"]) == (
                key.split("/")[0],
                "t",
                "ERROR",
            )
            until = (ref.get().to_dict() or {})["leaseUntil"]
            time.sleep(1.0)  # three renewal rounds: none touches the other delivery's claim
            assert (ref.get().to_dict() or {})["leaseUntil"] == until
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_one_slow_renewal_does_not_hold_back_the_others(
    emulators: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    with two_stores(lease_s=2) as (store, other):
        renew = store._renew  # the seam under test

        def stalled(key: str, token: str, deadline: object) -> dict[str, object] | None:
            if key.endswith("/slow"):
                time.sleep(6)  # a call that hangs for three leases
            return renew(key, token, deadline)  # pyright: ignore[reportArgumentType]

        monkeypatch.setattr(store, "_renew", stalled)
        assert store.claim(f"{queue}/slow") is Claim.ACQUIRED
        assert store.claim(f"{queue}/fast") is Claim.ACQUIRED
        time.sleep(5)
        # Before renewals ran on their own, the whole round waited for the slow one, and the
        # fast claim lapsed with it.
        assert other.claim(f"{queue}/fast") is Claim.IN_PROGRESS
        assert other.claim(f"{queue}/slow") is Claim.ACQUIRED  # its own renewal hung


def test_a_claim_whose_renewer_cannot_start_is_not_left_behind(
    emulators: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"q-{uuid.uuid4().hex[:8]}/t"

    def no_thread() -> None:
        raise RuntimeError("can't start new thread")

    with two_stores(lease_s=1) as (store, other):
        monkeypatch.setattr(store, "_start_renewer", no_thread)
        with pytest.raises(RuntimeError):
            store.claim(key)  # the handler answers store_unavailable
        monkeypatch.undo()
        assert store.claim(f"{key}-next") is Claim.ACQUIRED  # a renewer runs from now on
        time.sleep(1.5)
        # The failed claim was not recorded, so nobody renews it: it lapsed with its lease.
        assert other.claim(key) is Claim.ACQUIRED


# --- Issue 19: completion is part of the claim, the retry rule, the answer budget ------------


class RecordingSink:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def write(self, task: TaskRequest, reason: str, *, timeout: float | None = None) -> None:
        self.reasons.append(reason)


@contextmanager
def failing_writes(
    monkeypatch: pytest.MonkeyPatch, state: str, times: int | None, error: Exception
) -> Iterator[dict[str, int]]:
    """Every client write that sets `state` (whichever call the store makes: set, create,
    update, or a transaction's set) raises ERROR, `times` times (None: until the block
    ends), as the emulator's lock timeouts do under load."""
    left = {"failures": 0, "remaining": -1 if times is None else times}

    def failing(original: Callable[..., object], data_at: int) -> Callable[..., object]:
        def write(*args: object, **kwargs: object) -> object:
            data = args[data_at] if len(args) > data_at else None
            if isinstance(data, dict) and data.get("state") == state and left["remaining"]:
                left["remaining"] -= 1
                left["failures"] += 1
                raise error
            return original(*args, **kwargs)

        return write

    for name in ("set", "create", "update"):
        monkeypatch.setattr(
            firestore.DocumentReference,
            name,
            failing(getattr(firestore.DocumentReference, name), 1),
        )
    monkeypatch.setattr(firestore.Transaction, "set", failing(firestore.Transaction.set, 2))
    try:
        yield left
    finally:
        monkeypatch.undo()


def store_app(
    lease_s: float, sink: RecordingSink, calls: list[str], **options: object
) -> tuple[FirestoreStore, FlaskClient]:
    """An instance in this process: the app on a FirestoreStore of the emulator, running
    the example processor, which CALLS records."""

    def process(task: TaskRequest) -> dict[str, object]:
        calls.append(task.name)
        return example.process(task)

    store = FirestoreStore(project=PROJECT, database=DATABASE, lease=timedelta(seconds=lease_s))
    app = create_app(process, store=store, dead_letter=sink, **options)  # pyright: ignore[reportArgumentType]
    return store, app.test_client()


def answer(test: FlaskClient, queue: str, name: str, retry: int = 0, body: bytes = b"{}") -> str:
    response = test.post("/work", data=body, headers=delivery(queue, name, retry))
    return f"{response.status_code} {(response.json or {}).get('status')}"


def test_an_aborted_processed_write_is_retried_so_the_task_never_runs_twice(
    emulators: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 19.1: Aborted('Transaction lock timeout.') on the one `processed` write was not
    # retried; the answer was `200 done` and the claim lapsed, so a redelivery ran it again.
    calls: list[str] = []
    queue = f"q-{uuid.uuid4().hex[:8]}"
    a, test_a = store_app(2, RecordingSink(), calls, dispatch_deadline=timedelta(seconds=30))
    b, test_b = store_app(2, RecordingSink(), calls, dispatch_deadline=timedelta(seconds=30))
    try:
        aborted = exceptions.Aborted("Transaction lock timeout.")
        with failing_writes(monkeypatch, "processed", 3, aborted) as failures:
            first = answer(test_a, queue, "t")
        time.sleep(3)  # past the lease: a lapsed claim would be taken over now
        second = answer(test_b, queue, "t", 1)
    finally:
        a.close()
        b.close()
    assert (first, second, calls) == ("200 done", "200 duplicate", ["t"])
    assert failures["failures"] == 3  # the write was tried again until it landed


def test_an_outcome_not_written_within_the_budget_keeps_the_claim_and_lands_later(
    emulators: dict[str, str], db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 19.1: the claim must not lapse while its holder lives, written or not. A 6 s
    # deadline: 5 s of answer budget, a 3 s lease.
    calls: list[str] = []
    queue = f"q-{uuid.uuid4().hex[:8]}"
    sink = RecordingSink()
    options = {"dispatch_deadline": timedelta(seconds=6), "max_attempts": 3}
    a, test_a = store_app(3, sink, calls, **options)
    b, test_b = store_app(3, RecordingSink(), calls, **options)
    try:
        unavailable = exceptions.ServiceUnavailable("firestore frozen")
        with failing_writes(monkeypatch, "processed", None, unavailable):
            asked = time.monotonic()
            # Processed, but nobody could learn it: kept as a dead letter, within the budget.
            assert answer(test_a, queue, "t") == "200 dead_lettered"
            assert time.monotonic() - asked < 5
            time.sleep(4)  # more than a lease: the claim is still renewed
            assert answer(test_b, queue, "t", 1) == "409 in_progress"
        ref = db.collection(COLLECTION).document(document_id(f"{queue}/t"))
        wait_for(
            lambda: (ref.get().to_dict() or {}).get("state") == "processed" or None,
            "the outcome to land once Firestore writes again",
            timeout_s=10,
        )
        assert answer(test_b, queue, "t", 2) == "200 duplicate"
    finally:
        a.close()
        b.close()
    assert calls == ["t"]
    [reason] = sink.reasons
    assert reason.startswith("processed, but its record could not be written in time")


def test_a_claim_is_acquired_only_while_its_lease_still_holds(
    emulators: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 19.1: a claim whose write took longer than its lease came back ACQUIRED with its
    # lease already over, for any other delivery to take.
    slow_write = 1.6

    def slowed(original: Callable[..., object], data_at: int = 1) -> Callable[..., object]:
        def write(*args: object, **kwargs: object) -> object:
            data = args[data_at] if len(args) > data_at else None
            if isinstance(data, dict) and data.get("state") == "claimed":
                time.sleep(slow_write)
            return original(*args, **kwargs)

        return write

    key = f"q-{uuid.uuid4().hex[:8]}/t"
    with two_stores(lease_s=1.5) as (store, other):
        for name in ("create", "update"):
            original = getattr(firestore.DocumentReference, name)
            monkeypatch.setattr(firestore.DocumentReference, name, slowed(original))
        monkeypatch.setattr(firestore.Transaction, "set", slowed(firestore.Transaction.set, 2))
        # No background renewal to race with: what claim() itself returns is under test.
        monkeypatch.setattr(store, "_start_renewer", lambda: None)
        claimed = store.claim(key)
        monkeypatch.undo()
        # Another delivery, right after: the claim it finds must still hold.
        assert (claimed, other.claim(key)) == (Claim.ACQUIRED, Claim.IN_PROGRESS)


@pytest.mark.parametrize(
    ("attempts", "first_retries"),
    [
        (2, 3),  # maxAttempts 2 with an 8 s maxRetryDuration: attempts 1-3 fail and retry
        (None, 3),  # maxAttempts -1: the same, and no count ends it
    ],
)
def test_the_last_attempt_needs_the_attempts_and_the_retry_duration_since_the_first(
    emulators: dict[str, str], attempts: int | None, first_retries: int
) -> None:
    # Issue 19.3: dead-lettered at attempt 2 though Cloud Tasks would retry for 4 s; or, with
    # -1, never dead-lettered, and Cloud Tasks deleted the task once 4 s had passed.
    sink = RecordingSink()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    # Long enough that the first attempts fit in it on a loaded machine (they take well
    # under a second on a quiet one).
    duration_s = 8
    retry_limits = {"max_attempts": attempts, "max_retry_duration": timedelta(seconds=duration_s)}
    store, test = store_app(5, sink, [], **retry_limits)
    failing = json.dumps({"failAlways": True}).encode()
    try:
        started = time.monotonic()
        answers = [answer(test, queue, "t", retry, failing) for retry in range(first_retries)]
        assert time.monotonic() - started < duration_s - 1
        assert answers == ["500 failed"] * first_retries
        time.sleep(duration_s - (time.monotonic() - started) + 0.2)
        assert answer(test, queue, "t", first_retries, failing) == "200 dead_lettered"
        # A retry whose record is gone (or was never written): its first attempt is
        # unknown, and the handler errs toward dead-lettering.
        assert answer(test, queue, "lost", first_retries, failing) == "200 dead_lettered"
    finally:
        store.close()
    assert len(sink.reasons) == 2


def test_a_frozen_firestore_gets_its_answer_within_the_budget(
    emulators: dict[str, str], tmp_path: Path, firestore_group: int
) -> None:
    # Issue 19.6: with Firestore frozen and a 15 s deadline (13.5 s budget) the handler
    # answered after 60 s (the client's defaults), unheard by Cloud Tasks.
    env = handler_env(emulators, TASK_DISPATCH_DEADLINE="15s")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    with running(start_handler(tmp_path / "h.log", env=env)) as handler:
        assert post(handler, delivery(queue, "warm-up"), b"{}") == (200, "done")
        os.killpg(firestore_group, signal.SIGSTOP)
        try:
            asked = time.monotonic()
            assert post(handler, delivery(queue, "t"), b"{}") == (500, "store_unavailable")
            took = time.monotonic() - asked
        finally:
            os.killpg(firestore_group, signal.SIGCONT)
        assert 10 < took < 14
        [line] = [line for line in handler.log_lines() if line.get("taskName") == "t"]
    assert "StoreTimeout" in str(line["error"])


def test_a_replay_naming_another_queues_task_cannot_cancel_it(
    emulators: dict[str, str],
) -> None:
    # Issue 19.2: every pipeline shares the database; a task on orders naming payments'
    # task in X-Replay-Of ran under its key, and the real payments task became a duplicate.
    calls: list[str] = []
    sink = RecordingSink()
    suffix = uuid.uuid4().hex[:8]
    orders, payments = f"orders-{suffix}", f"payments-{suffix}"
    store, test = store_app(5, sink, calls)
    try:
        forged = {**delivery(orders, "evil"), "X-Replay-Of": f"{payments}/order-42"}
        first = test.post("/work", data=b"{}", headers=forged)
        real = test.post("/work", data=b"{}", headers=delivery(payments, "order-42"))
    finally:
        store.close()
    assert (first.json, real.json) == ({"status": "rejected"}, {"status": "done"})
    assert calls == ["order-42"]
    [reason] = sink.reasons
    assert f"names queue '{payments}', not this task's queue '{orders}'" in reason


# --- Pub/Sub: dead letters whole, and nothing lost when it is down ---------------------------


def subscription(emulators: dict[str, str]) -> tuple[str, str]:
    topic = f"projects/{PROJECT}/topics/dead-{uuid.uuid4().hex[:8]}"
    sub = f"projects/{PROJECT}/subscriptions/replay-{uuid.uuid4().hex[:8]}"
    pubsub_v1.PublisherClient().create_topic(name=topic)
    pubsub_v1.SubscriberClient().create_subscription(name=sub, topic=topic)
    return topic, sub


def test_a_rejected_task_of_several_hundred_kb_reaches_the_subscription_byte_for_byte(
    emulators: dict[str, str], tmp_path: Path
) -> None:
    topic, sub = subscription(emulators)
    env = handler_env(emulators, TASK_DEAD_LETTER_TOPIC=topic)
    blob = base64.b64encode(os.urandom(300_000)).decode()
    body = json.dumps({"reject": True, "blob": blob, "note": "dé jà ✓"}, ensure_ascii=False)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    credentials = {"Authorization": "Bearer secret-token-1", "X-Api-Key": "secret-key-123"}
    headers = {**delivery(queue, "big"), **credentials, "X-Tenant": "acme"}
    with running(start_handler(tmp_path / "h.log", env=env)) as handler:
        assert post(handler, headers, body.encode()) == (200, "rejected")
        log = handler.log.read_text()
    response = pubsub_v1.SubscriberClient().pull(subscription=sub, max_messages=10, timeout=30)
    [received] = response.received_messages
    assert len(body.encode()) > 400_000
    assert received.message.data == body.encode()
    assert dict(received.message.attributes) == {
        "taskName": "big",
        "queue": queue,
        "originalTask": f"{queue}/big",
        "retryCount": "0",
        "reason": "payload asked to be rejected",
        "path": "/work",
        "contentType": "application/json",
        "headers": '{"x-tenant": "acme"}',
    }
    assert "secret-token-1" not in log and "secret-key-123" not in log
    assert '"deadLetter": true' not in log  # kept by Pub/Sub: not repeated in the log


@pytest.mark.parametrize("target", ["/orders?tenant=a", "/x%3Fy", "/a%2Fb/c%20d?q=%20&r"])
def test_the_dead_letter_path_is_the_request_target_as_gunicorn_received_it(
    emulators: dict[str, str], tmp_path: Path, target: str
) -> None:
    # Issue 19.9: `/orders?tenant=a` came back as `/orders`, `/x%3Fy` as `/x` with query `y`.
    topic, sub = subscription(emulators)
    env = handler_env(emulators, TASK_DEAD_LETTER_TOPIC=topic)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"reject": True}).encode()
    with running(start_handler(tmp_path / "h.log", env=env)) as handler:
        assert post(handler, delivery(queue, "t"), body, target) == (200, "rejected")
    response = pubsub_v1.SubscriberClient().pull(subscription=sub, max_messages=10, timeout=30)
    [received] = response.received_messages
    assert received.message.attributes["path"] == target


def test_pub_sub_unavailable_answers_5xx_and_the_last_attempt_is_logged_whole(
    emulators: dict[str, str], tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    env = handler_env(
        emulators,
        PUBSUB_EMULATOR_HOST=nowhere,
        TASK_DEAD_LETTER_TOPIC=f"projects/{PROJECT}/topics/dead-letters",
        TASK_DISPATCH_DEADLINE="6s",  # publish timeout: 2 s
    )
    queue = f"q-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"reject": True, "blob": "x" * 200_000}).encode()
    with running(start_handler(tmp_path / "h.log", env=env)) as handler:
        for retry in (0, 1):
            assert post(handler, delivery(queue, "t", retry), body) == (500, "dead_letter_failed")
        assert not [line for line in handler.log_lines() if line.get("deadLetter")]
        # The last attempt: Cloud Tasks will drop the task after this answer.
        assert post(handler, delivery(queue, "t", 2), body) == (500, "dead_letter_failed")
        parts = [line for line in handler.log_lines() if line.get("deadLetter")]
    assert [p["part"] for p in parts] == [1, 2, 3, 4]  # 64 KiB each
    assert b"".join(base64.b64decode(str(p["bodyBase64"])) for p in parts) == body
    assert {(p["taskName"], p["queue"], p["retryCount"]) for p in parts} == {("t", queue, 2)}
