"""No silent wrong data at the handler's edges, through Flask's test client (no server):
replay keys, claim checks Python can't read or that point elsewhere, first attempts kept
in memory, the task context a processor gets."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from handler import example
from handler.app import create_app
from handler.context import TaskContext, current
from handler.payloads import CLAIM_CHECK_TYPE, ClaimCheck, PayloadReader
from handler.store import Claim, InMemoryStore
from handler.task import PermanentTaskError, TaskRequest
from local.processes import free_port
from taskclient.offload import needs_offload
from taskclient.pipelines import Pipeline
from taskclient.task_builder import TaskSpec
from tests.app.helpers import pipeline_output
from tests.app.test_handler_app import RecordingSink, delivery, post
from tests.app.test_payloads_handler import BODY, CHECK, Stored, check_for

# --- 1: a replay key stands only for a dead-lettered task ---------------------------------


def test_a_replay_naming_a_task_that_was_never_dead_lettered_runs_as_itself() -> None:
    # Issue 27.1: `X-Replay-Of: victim` on the same queue ran its own body under the
    # victim's key; the victim's real delivery was then a duplicate and never ran.
    store, calls = InMemoryStore(), []
    app = create_app(
        lambda task: calls.append((task.name, task.payload)) or None,
        store=store,
        dead_letter=RecordingSink(),
        max_attempts=3,
    )
    test = app.test_client()
    forged = {**delivery("evil"), "X-Replay-Of": "orders/victim"}
    assert post(test, {"who": "evil"}, forged).json == {"status": "done"}
    assert post(test, {"who": "victim"}, delivery("victim")).json == {"status": "done"}
    # The bare form too, and a victim that is only waiting for its retry.
    assert post(test, {"fail": 1}, delivery("later")).status_code == 200
    bare = {**delivery("evil-2"), "X-Replay-Of": "tomorrow"}
    assert post(test, {"who": "evil-2"}, bare).json == {"status": "done"}
    assert post(test, {"who": "tomorrow"}, delivery("tomorrow")).json == {"status": "done"}
    assert calls == [
        ("evil", {"who": "evil"}),
        ("victim", {"who": "victim"}),
        ("later", {"fail": 1}),
        ("evil-2", {"who": "evil-2"}),
        ("tomorrow", {"who": "tomorrow"}),
    ]
    # The forged replay is keyed on its own name: a redelivery of it is its duplicate.
    assert store.claim("orders/evil") is Claim.DONE


def test_a_replay_of_a_task_being_retried_does_not_take_its_key() -> None:
    store = InMemoryStore()
    assert store.claim("orders/victim") is Claim.ACQUIRED
    store.release("orders/victim")  # failed once, Cloud Tasks will retry it
    assert store.claim("orders/victim", replay=True) is Claim.NOT_DEAD_LETTERED
    assert store.claim("orders/victim") is Claim.ACQUIRED


def test_a_replay_must_carry_the_dead_letters_own_target_and_body() -> None:
    """A task naming a truly dead-lettered task in X-Replay-Of, with a body (or target) of its
    own, is not its replay: it runs as itself, and the real replay still runs the victim's
    body once. Before: it ran under the victim's key, and the real replay was a duplicate."""
    store, calls = InMemoryStore(), []

    def processor(task: TaskRequest) -> None:
        calls.append((task.name, task.target, task.payload))
        if task.payload == {"who": "victim"} and task.name == "victim":
            raise PermanentTaskError("victim's first run")

    app = create_app(processor, store=store, dead_letter=RecordingSink(), max_attempts=3)
    test = app.test_client()
    first = post(test, {"who": "victim"}, delivery("victim"), "/a?x=1").json
    assert first is not None and first["status"] == "rejected"
    replay_of = {"X-Replay-Of": "orders/victim"}
    forged_body = {**delivery("evil"), **replay_of}
    forged_target = {**delivery("evil-2"), **replay_of}
    real = {**delivery("replay-1"), **replay_of}
    assert post(test, {"who": "evil"}, forged_body, "/a?x=1").json == {"status": "done"}
    assert post(test, {"who": "victim"}, forged_target, "/a?x=2").json == {"status": "done"}
    assert post(test, {"who": "victim"}, real, "/a?x=1").json == {"status": "done"}
    assert post(test, {"who": "victim"}, real, "/a?x=1").json == {"status": "duplicate"}
    assert calls == [
        ("victim", "/a?x=1", {"who": "victim"}),
        ("evil", "/a?x=1", {"who": "evil"}),
        ("evil-2", "/a?x=2", {"who": "victim"}),
        ("replay-1", "/a?x=1", {"who": "victim"}),
    ]
    assert store.claim("orders/victim", replay=True) is Claim.DONE


def test_the_in_memory_store_keeps_the_first_claims_letter() -> None:
    store = InMemoryStore()
    assert store.claim("orders/t", letter="a") is Claim.ACQUIRED
    store.complete("orders/t", dead_lettered=True)
    assert store.claim("orders/t", replay=True, letter="b") is Claim.NOT_DEAD_LETTERED
    assert store.claim("orders/t", replay=True, letter="a") is Claim.ACQUIRED
    store.release("orders/t")
    assert store.claim("orders/t", replay=True, letter="b") is Claim.NOT_DEAD_LETTERED
    assert store.claim("orders/t", replay=True, letter="a") is Claim.ACQUIRED


# --- 3, 4, 8: claim checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"bucket": "b", "size": ' + b"9" * 5000 + b"}", "claim check: not JSON Python can"),
        (b"[" * 100_000 + b"]" * 100_000, "claim check: not JSON Python can"),
    ],
)
def test_a_reference_python_cannot_read_is_rejected_at_once(body: bytes, reason: str) -> None:
    # Issue 27.3: a 5,000-digit size or 100,000-deep nesting answered 500 on every attempt.
    sink = RecordingSink()
    app = create_app(lambda task: None, dead_letter=sink, max_attempts=None, payloads=Stored(BODY))
    headers = {**delivery(), "Content-Type": CLAIM_CHECK_TYPE}
    response = app.test_client().post("/", data=body, headers=headers)
    assert (response.status_code, response.json) == (200, {"status": "rejected"})
    [(_, written)] = sink.written
    assert reason in written


def test_a_reference_to_a_reference_never_reaches_the_processor() -> None:
    # Issue 27.4: the object held another claim check; the processor got the reference.
    inner = check_for(BODY)
    outer = ClaimCheck(
        CHECK.bucket, CHECK.object, len(inner), hashlib.sha256(inner).hexdigest(), CLAIM_CHECK_TYPE
    ).to_json()
    seen: list[TaskRequest] = []
    sink = RecordingSink()
    app = create_app(
        lambda task: seen.append(task) or None,
        dead_letter=sink,
        max_attempts=3,
        payloads=Stored(inner),
    )
    headers = {**delivery(), "Content-Type": CLAIM_CHECK_TYPE}
    response = app.test_client().post("/", data=outer, headers=headers)
    assert (response.status_code, response.json, seen) == (200, {"status": "rejected"}, [])
    [(_, reason)] = sink.written
    assert "is itself a claim check" in reason


def test_a_reference_to_another_queues_object_is_rejected() -> None:
    # Issue 27.8: the bucket is the stack's; the object must be under this queue's prefix.
    sink, seen = RecordingSink(), []
    app = create_app(
        lambda task: seen.append(task) or None,
        dead_letter=sink,
        max_attempts=3,
        payloads=Stored(BODY),
    )
    for name in ("payments/x", "orders-eu/x", "orders", "x/orders/x"):
        other = ClaimCheck(
            CHECK.bucket, name, len(BODY), hashlib.sha256(BODY).hexdigest(), "text/plain"
        ).to_json()
        headers = {**delivery(f"t-{len(sink.written)}"), "Content-Type": CLAIM_CHECK_TYPE}
        response = app.test_client().post("/", data=other, headers=headers)
        assert response.json == {"status": "rejected"}, name
        assert "not under this queue's prefix orders/" in sink.written[-1][1]
    assert seen == []


# --- 10: the in-memory store keeps first attempts ------------------------------------------


def test_the_in_memory_store_keeps_the_first_attempt_so_duration_counts() -> None:
    # Issue 27.10: attempts reached, retry duration not passed: Cloud Tasks retries, so the
    # handler must hand the task back, not dead-letter it, even on one instance.
    sink = RecordingSink()
    app = create_app(
        example.process,
        dead_letter=sink,
        max_attempts=3,
        max_retry_duration=timedelta(seconds=600),
    )
    test = app.test_client()
    for retry in range(4):
        response = post(test, {"failAlways": True}, delivery("t", retry=retry))
        assert (response.status_code, response.json) == (500, {"status": "failed"}), retry
    assert sink.written == []


def test_the_in_memory_first_attempt_is_what_the_handler_stamped() -> None:
    store = InMemoryStore()
    when = datetime.now(UTC) - timedelta(seconds=30)
    assert store.claim("orders/t", first_attempt_at=when) is Claim.ACQUIRED
    store.release("orders/t")
    assert store.claim("orders/t", first_attempt_at=datetime.now(UTC)) is Claim.ACQUIRED
    assert store.first_attempt("orders/t") == when
    assert store.first_attempt("orders/unknown") is None


def test_a_claim_check_is_never_offloaded_again() -> None:
    # Issue 27.4: `replay` with a 100-byte threshold uploaded the 274-byte reference itself.
    pipeline = Pipeline.model_validate(
        {
            **pipeline_output(
                "projects/p/locations/us-central1/queues/orders", "http://127.0.0.1:1"
            ),
            "payloadBucket": CHECK.bucket,
            "payloadThreshold": 100,
        }
    )
    reference = check_for(BODY * 20)
    assert len(reference) > 100
    letter = TaskSpec(payload=reference, headers={"Content-Type": CLAIM_CHECK_TYPE})
    assert needs_offload(pipeline, letter) is False
    assert needs_offload(pipeline, TaskSpec(payload=BODY * 20)) is True


# --- 6: the payload download keeps to the answer budget ------------------------------------


def test_storage_unreachable_is_a_retry_within_the_answer_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 27.6: the library's own 120 s retry held the answer 84 s, past the deadline,
    # and the task was dead-lettered on its first attempt.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing there
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    sink = RecordingSink()
    app = create_app(
        lambda task: None,
        dead_letter=sink,
        max_attempts=None,
        dispatch_deadline=timedelta(seconds=5),  # a 4 s answer budget
        payloads=PayloadReader(CHECK.bucket),
    )
    headers = {**delivery(), "Content-Type": CLAIM_CHECK_TYPE}
    asked = time.monotonic()
    response = app.test_client().post("/", data=check_for(BODY), headers=headers)
    took = time.monotonic() - asked
    assert (response.status_code, response.json) == (500, {"status": "failed"})
    assert took < 4
    assert sink.written == []


# --- 11: the processor's idempotency key and fencing token ---------------------------------


def test_the_processor_gets_a_stable_key_and_a_growing_fencing_token() -> None:
    seen: list[tuple[str, int | None]] = []
    failing = {"times": 1}

    def process(task: TaskRequest) -> None:
        context = current()
        seen.append((context.idempotency_key, context.fencing_token))
        if failing["times"]:
            failing["times"] -= 1
            raise RuntimeError("downstream busy")

    store = InMemoryStore()
    test = create_app(process, store=store, dead_letter=RecordingSink(), max_attempts=5)
    test = test.test_client()
    assert post(test, {}, delivery("t")).status_code == 500
    assert post(test, {}, delivery("t", retry=1)).json == {"status": "done"}
    assert seen == [("orders/t", 1), ("orders/t", 2)]
    with pytest.raises(LookupError):
        current()
    headers = TaskContext("orders/t", 2).headers()
    assert headers == {"X-Task-Idempotency-Id": "orders/t", "X-Task-Fencing-Generation": "2"}


def test_the_in_memory_store_keeps_a_claim_handed_over_to_another_thread() -> None:
    store = InMemoryStore()
    assert store.claim("q/t") is Claim.ACQUIRED
    worker = threading.Thread(target=lambda: store.release("q/t"))
    worker.start()
    store.hand_over("q/t", worker.ident or 0)
    worker.join(30)
    assert store.claim("q/t") is Claim.ACQUIRED  # released by the thread it went to
    assert store.fencing_token("q/t") == 2
