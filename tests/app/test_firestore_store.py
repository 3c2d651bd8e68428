"""FirestoreStore without a Firestore: where its records live, and the line it writes when
another delivery took a claim over (the claims-lost metric counts that line, and a person
traces the two runs from it). The store's reads and writes are tested against Google's
emulator (tests/app/test_shared_state.py, test_leases.py, test_edges_firestore.py)."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import pytest

from handler.firestore_store import (
    GENERATION,
    HOLDER,
    FirestoreStore,
    _Held,  # pyright: ignore[reportPrivateUsage]
)

MESSAGE = (
    "claim lost: another delivery took this task over; its work is still running here, so it"
    " may run twice (a processor that passes its fencing token to its store is refused there)"
)


def store() -> FirestoreStore:
    return FirestoreStore(project="p", database="tasks", lease=timedelta(seconds=8))


def lost(
    caplog: pytest.LogCaptureFixture, target: FirestoreStore, key: str, held: _Held, record: dict
) -> list[dict[str, object]]:
    """The records the store logs when told that RECORD took HELD's claim of KEY over."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="handler.store"):
        target._lost(key, held, record, "its work is still running here")  # pyright: ignore[reportPrivateUsage]
    assert all(r.levelno == logging.ERROR for r in caplog.records)
    return [r.msg for r in caplog.records]  # pyright: ignore[reportReturnType]


def test_a_lost_claim_is_said_once_naming_both_deliveries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = store()
    held = _Held("owner-token", 0.0, generation=1, holder="t1 retry 0 on a")
    taken = {HOLDER: "t1 retry 3 on b", GENERATION: 2, "state": "claimed"}
    assert lost(caplog, target, "orders/t1", held, taken) == [
        {
            "message": MESSAGE,
            "status": "claim_lost",
            "queue": "orders",
            "taskName": "t1",
            "delivery": "t1 retry 0 on a",
            "claimGeneration": 1,
            "takenBy": "t1 retry 3 on b",
            "takenGeneration": 2,
            "takenState": "claimed",
        }
    ]
    assert target.claims_lost == 1
    # The same claim found lost again (by its renewal, then by its outcome write): once.
    assert lost(caplog, target, "orders/t1", held, taken) == []
    assert target.claims_lost == 1
    # Another claim of this instance lost is counted on.
    other = _Held("token-2", 0.0, generation=4, holder="t2 retry 1 on a")
    [line] = lost(caplog, target, "orders/t2", other, {"state": "processed"})
    assert target.claims_lost == 2
    # A record written without a holder or generation (before they existed) names neither.
    assert (line["takenBy"], line["takenGeneration"], line["takenState"]) == ("", 0, "processed")


def test_the_task_name_is_all_after_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    # A queue id has no '/' (Cloud Tasks allows letters, digits and hyphens); the task name
    # is whatever X-CloudTasks-TaskName said.
    held = _Held("t", 0.0, generation=1)
    [line] = lost(caplog, store(), "orders/a/b", held, {GENERATION: 2})
    assert (line["queue"], line["taskName"]) == ("orders", "a/b")


@pytest.mark.parametrize(
    ("generation", "read"),
    [(7, 7), (1, 1), (True, 0), ("7", 0), (7.0, 0), (None, 0)],
)
def test_only_an_integer_generation_is_one(
    caplog: pytest.LogCaptureFixture, generation: object, read: int
) -> None:
    held = _Held("t", 0.0, generation=1)
    [line] = lost(caplog, store(), "orders/t1", held, {GENERATION: generation})
    assert line["takenGeneration"] == read


def test_records_are_one_document_per_task_in_the_stores_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client is made without credentials or a connection when an emulator is named.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    target = store()
    client = target._db()  # pyright: ignore[reportPrivateUsage]
    assert (client.project, client._database) == ("p", "tasks")  # pyright: ignore[reportPrivateUsage]
    assert target._db() is client  # pyright: ignore[reportPrivateUsage]
    # The id: hex of the key's SHA-256, valid whatever the task name holds.
    ref = target._document("orders/a/b")  # pyright: ignore[reportPrivateUsage]
    assert ref.path == "idempotency/" + hashlib.sha256(b"orders/a/b").hexdigest()
    assert ref._client is client  # pyright: ignore[reportPrivateUsage]


def test_a_store_that_never_claimed_has_lost_nothing_and_closes() -> None:
    target = store()
    assert target.claims_lost == 0
    target.close()  # no renewer started: nothing to wait for
