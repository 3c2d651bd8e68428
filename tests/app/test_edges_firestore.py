"""No silent wrong data at the store's edges, on the Firestore emulator: replay keys stand
only for dead-lettered tasks, a slow first claim stamps the attempt's arrival."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore

from handler.firestore_store import COLLECTION, document_id
from handler.store import Claim
from tests.app.helpers import require_gcloud
from tests.app.test_shared_state import (
    RecordingSink,
    answer,
    db,  # noqa: F401 (fixture)
    delivery,
    emulators,  # noqa: F401 (fixture)
    store_and_record,
    store_app,
)

pytestmark = pytest.mark.timeout(300)

require_gcloud("the store's edge tests on the Firestore emulator")


def test_a_replay_naming_a_task_with_no_dead_letter_runs_as_itself(
    emulators: dict[str, str],  # noqa: F811
) -> None:
    # Issue 27.1: the victim's key was taken by a task naming it in X-Replay-Of.
    calls: list[str] = []
    queue = f"q-{uuid.uuid4().hex[:8]}"
    store, test = store_app(5, RecordingSink(), calls)
    try:
        forged = {**delivery(queue, "evil"), "X-Replay-Of": f"{queue}/victim"}
        first = test.post("/work", data=b"{}", headers=forged)
        retried = {**forged, "X-CloudTasks-TaskRetryCount": "1"}
        again = test.post("/work", data=b"{}", headers=retried)
        real = test.post("/work", data=b"{}", headers=delivery(queue, "victim"))
    finally:
        store.close()
    assert (first.json, again.json, real.json) == (
        {"status": "done"},
        {"status": "duplicate"},
        {"status": "done"},
    )
    assert calls == ["evil", "victim"]


def test_a_dead_lettered_task_stays_dead_lettered_while_its_replay_is_retried(
    emulators: dict[str, str],  # noqa: F811
    db: firestore.Client,  # noqa: F811
) -> None:
    with store_and_record(db, lease_s=5) as (store, key, ref):
        assert store.claim(key, replay=True) is Claim.NOT_DEAD_LETTERED
        assert ref.get().exists is False  # asking wrote nothing
        assert store.claim(key) is Claim.ACQUIRED
        store.release(key)
        assert store.claim(key, replay=True) is Claim.NOT_DEAD_LETTERED
        assert store.claim(key) is Claim.ACQUIRED
        store.complete(key, dead_lettered=True)
        assert store.claim(key, replay=True) is Claim.ACQUIRED
        store.release(key)  # the replay failed: Cloud Tasks retries the replay
        assert store.claim(key) is Claim.DONE  # the original's redelivery: still a duplicate
        assert store.claim(key, replay=True) is Claim.ACQUIRED
        store.complete(key)
        assert store.claim(key, replay=True) is Claim.DONE


def test_a_replay_with_another_letter_does_not_take_a_dead_lettered_task(
    emulators: dict[str, str],  # noqa: F811
    db: firestore.Client,  # noqa: F811
) -> None:
    with store_and_record(db, lease_s=5) as (store, key, ref):
        assert store.claim(key, letter="original") is Claim.ACQUIRED
        store.complete(key, dead_lettered=True)
        assert store.claim(key, replay=True, letter="forged") is Claim.NOT_DEAD_LETTERED
        assert ref.get().get("state") == "dead_lettered"  # asking wrote nothing
        assert store.claim(key, replay=True, letter="original") is Claim.ACQUIRED
        assert ref.get().get("letter") == "original"
        store.release(key)
        assert store.claim(key, replay=True, letter="forged") is Claim.NOT_DEAD_LETTERED
        assert store.claim(key, replay=True, letter="original") is Claim.ACQUIRED
        store.complete(key)
        assert store.claim(key, replay=True, letter="original") is Claim.DONE


def test_a_slow_first_claim_stamps_the_attempts_arrival_not_the_write(
    emulators: dict[str, str],  # noqa: F811
    db: firestore.Client,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 27.2: Firestore slow for 4 s during the first claim put firstAttemptAt 4 s late,
    # so the attempt Cloud Tasks makes last was taken for one more retry.
    queue = f"q-{uuid.uuid4().hex[:8]}"
    store, test = store_app(5, RecordingSink(), [], dispatch_deadline=timedelta(seconds=30))
    original: Callable[..., object] = getattr(firestore.DocumentReference, "get")  # noqa: B009

    def slow_get(*args: object, **kwargs: object) -> object:
        time.sleep(4)
        return original(*args, **kwargs)

    try:
        monkeypatch.setattr(firestore.DocumentReference, "get", slow_get)
        sent = datetime.now(UTC)
        assert answer(test, queue, "t") == "200 done"
        monkeypatch.undo()
    finally:
        store.close()
    ref = db.collection(COLLECTION).document(document_id(f"{queue}/t"))
    record = ref.get().to_dict() or {}
    first = record["firstAttemptAt"]
    assert isinstance(first, datetime)
    assert sent <= first < sent + timedelta(seconds=3)  # not after the 4 s read
