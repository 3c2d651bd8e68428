"""The idempotency store shared by every instance: one Firestore document per task.

Document `idempotency/{sha256(queue + "/" + task name)}` (hex: a valid document id whatever
the task name holds), fields:
  state      "claimed" while a delivery processes the task, "processed" once it is,
             "dead_lettered" once its dead letter is kept and it is acknowledged (a replay
             of it, X-Replay-Of, may then claim it once; any other delivery is a duplicate).
             "done", written before the two were told apart, is either: a replay may claim it
  owner      a random token per claim: only the claim's own request releases or renews it
  leaseUntil Timestamp: a "claimed" record past this is taken over. While the request that
             claimed runs, a renewer thread moves it forward every third of the lease, so
             it lapses only once its holder has stopped (crashed, killed, frozen): work that
             outlives the dispatch deadline (Cloud Tasks then delivers the task again) keeps
             its claim, and the new delivery is told to come back (handler/deadlines.py)
  updatedAt  Timestamp of the last write: the stack's TTL policy on this field (with the
             stack's `idempotency.ttl` as its expiration offset, components/idempotency.py)
             deletes the record that long after (typically within 24 h more, per Firestore)
  key        queue/task name, for people reading the database

claim() reads and writes in one transaction, so two deliveries of one task can't both
acquire it: Firestore fails one of two transactions that touch the same document (the client
retries it, and the retry then sees the other's claim). Times are the instance's clock
(Cloud Run's are synchronised); the lease, at least 1 s, absorbs what skew remains.
"""

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.cloud import firestore

from handler.store import Claim

# Agreed with components/idempotency.py (RECORDS, UPDATED_AT), which sets the TTL policy;
# the image has no `components`, so tests/app/test_handler_settings.py checks they match.
COLLECTION = "idempotency"
TTL_FIELD = "updatedAt"
# The client's default is 5; two handlers racing on every task (the integration test) need
# a few more before one sees the other's claim.
TRANSACTION_ATTEMPTS = 10
# Renewals at once: an instance may hold as many claims as requests, up to 1000 (Cloud Run's
# maximum concurrency), and one renewal is a transaction's round trips.
RENEW_THREADS = 8

logger = logging.getLogger("handler.store")
T = TypeVar("T")

PROCESSED = "processed"
# What a delivery that is not a replay takes as settled ("done": records written before
# processed and dead-lettered were told apart).
SETTLED = (PROCESSED, "dead_lettered", "done")


def document_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _task(key: str) -> dict[str, str]:
    """The task's log fields, as the handler's own lines name them (a field called `key`
    would be redacted as a credential by handler/logs.py)."""
    queue, _, name = key.partition("/")
    return {"queue": queue, "taskName": name}


def _read(
    ref: firestore.DocumentReference,
    transaction: firestore.Transaction,
    timeout: float | None = None,
) -> dict[str, object]:
    """The document's fields inside the transaction; {} when there is none."""
    snapshot = ref.get(transaction=transaction, timeout=timeout)
    return (snapshot.to_dict() or {}) if snapshot.exists else {}


def _ours(record: dict[str, object], token: str | None) -> bool:
    """The record is the live claim this token was given."""
    return (record.get("state"), record.get("owner")) == ("claimed", token)


@dataclass
class _Held:
    token: str
    written: float
    """time.monotonic() of the claim's last write (acquired or renewed)."""


class FirestoreStore:
    """`lease`: how long a claim holds unless renewed (handler/deadlines.py). How long
    records are kept is the database's TTL policy."""

    def __init__(self, *, project: str | None, database: str, lease: timedelta) -> None:
        self._project, self._database = project, database
        self._lease = lease
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        # (key, thread) -> this claim's owner token. One request is one thread, so the
        # token goes back to the request that claimed, without changing the store protocol.
        # Every claim in here is renewed until its request completes or releases it.
        self._owners: dict[tuple[str, int], _Held] = {}
        self._renewer: threading.Thread | None = None
        self._renewing: set[tuple[str, int]] = set()  # slots with a renewal under way
        self._stopping = threading.Event()

    def _db(self) -> firestore.Client:
        with self._lock:
            # Created on first use, in the gunicorn worker: gRPC channels don't survive fork.
            if self._client is None:
                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client

    def _document(self, key: str) -> firestore.DocumentReference:
        return self._db().collection(COLLECTION).document(document_id(key))

    def _transact(self, run: Callable[[firestore.Transaction], T]) -> T:
        """Runs RUN (read, then write) in a transaction, retried when another touched the
        same document."""
        return firestore.transactional(run)(
            self._db().transaction(max_attempts=TRANSACTION_ATTEMPTS)
        )

    def claim(self, key: str, *, replay: bool = False) -> Claim:
        ref = self._document(key)
        token = uuid.uuid4().hex
        settled = (PROCESSED,) if replay else SETTLED

        def run(transaction: firestore.Transaction) -> Claim:
            record = _read(ref, transaction)
            now = datetime.now(UTC)
            if record.get("state") in settled:
                return Claim.DONE
            if record.get("state") == "claimed":
                lease_until = record.get("leaseUntil")
                if isinstance(lease_until, datetime) and lease_until > now:
                    return Claim.IN_PROGRESS
            transaction.set(
                ref,
                {
                    "state": "claimed",
                    "owner": token,
                    "leaseUntil": now + self._lease,
                    TTL_FIELD: now,
                    "key": key,
                },
            )
            return Claim.ACQUIRED

        written = time.monotonic()
        claim = self._transact(run)
        if claim is Claim.ACQUIRED:
            # Before the claim is recorded here: if no thread can start, claim() raises, the
            # request answers store_unavailable, and the claim lapses with its first lease
            # instead of staying recorded, and renewed, for a request that is gone.
            self._start_renewer()
            with self._lock:
                self._owners[key, threading.get_ident()] = _Held(token, written)
        return claim

    def close(self) -> None:
        """Stops renewing (the claims still held then lapse with their lease)."""
        self._stopping.set()
        if self._renewer is not None:
            self._renewer.join()

    def _start_renewer(self) -> None:
        with self._lock:
            # Started on the first claim, in the gunicorn worker: threads don't survive fork.
            if self._renewer is None or not self._renewer.is_alive():
                renewer = threading.Thread(
                    target=self._renew_while_held, name="claim-renewer", daemon=True
                )
                renewer.start()
                self._renewer = renewer

    def _renew_while_held(self) -> None:
        """Renews each claim a third of a lease after its last write: short tasks, most of
        them, are settled before that and never cost a renewal. Each renewal is on its own,
        with no round to wait for: one slow call holds back its own claim only."""
        every = self._lease.total_seconds() / 3
        with ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="claim-renewal") as pool:
            while not self._stopping.wait(every / 2):
                now = time.monotonic()
                with self._lock:
                    due = [
                        (slot, held.token)
                        for slot, held in self._owners.items()
                        if now - held.written >= every and slot not in self._renewing
                    ]
                    self._renewing.update(slot for slot, _ in due)
                for item in due:
                    try:
                        pool.submit(self._renew_one, item)
                    except RuntimeError as exc:  # no thread to run it: the next round tries
                        with self._lock:
                            self._renewing.discard(item[0])
                        fields = {**_task(item[0][0]), "error": repr(exc)}
                        logger.error({"message": "claim not renewed", **fields})

    def _renew_one(self, due: tuple[tuple[str, int], str]) -> None:
        slot, token = due
        key = slot[0]
        written = time.monotonic()
        try:
            renewed = self._renew(key, token)
        except Exception as exc:  # the next round tries again, well within the lease
            logger.warning({"message": "claim not renewed", **_task(key), "error": repr(exc)})
            return
        finally:
            with self._lock:
                self._renewing.discard(slot)
        with self._lock:
            held = self._owners.get(slot)
            # Not ours any more: settled meanwhile (its record then no longer says "claimed"
            # with our token either), which is no loss.
            if held is None or held.token != token:
                return
            if renewed:
                held.written = written
                return
            del self._owners[slot]
        # Its lease lapsed before a renewal landed (the instance was frozen or cut off from
        # Firestore for a whole lease) and another delivery took the task over.
        logger.error(
            {
                "message": "claim lost: another delivery took this task over while its work"
                " was running here; it may run twice",
                **_task(key),
            }
        )

    def _renew(self, key: str, token: str) -> bool:
        ref = self._document(key)

        def run(transaction: firestore.Transaction) -> bool:
            if not _ours(_read(ref, transaction, timeout=self._lease.total_seconds() / 3), token):
                return False
            now = datetime.now(UTC)
            transaction.update(ref, {"leaseUntil": now + self._lease, TTL_FIELD: now})
            return True

        return self._transact(run)

    def _forget(self, key: str) -> str | None:
        """Stops renewing this request's claim of KEY; its owner token, if it held one."""
        with self._lock:
            held = self._owners.pop((key, threading.get_ident()), None)
        return None if held is None else held.token

    def complete(self, key: str, *, dead_lettered: bool = False) -> None:
        self._forget(key)
        ref = self._document(key)
        if not dead_lettered:
            # Unconditional: the task is processed, whoever holds the record now.
            ref.set({"state": PROCESSED, TTL_FIELD: datetime.now(UTC), "key": key})
            return

        def run(transaction: firestore.Transaction) -> None:
            # Never over a "processed" record: after this claim's lease lapsed another
            # delivery may have processed the task, and a replay must then be a duplicate.
            if _read(ref, transaction).get("state") == PROCESSED:
                return
            record = {"state": "dead_lettered", TTL_FIELD: datetime.now(UTC), "key": key}
            transaction.set(ref, record)

        self._transact(run)

    def release(self, key: str) -> None:
        token = self._forget(key)
        ref = self._document(key)

        def run(transaction: firestore.Transaction) -> None:
            # Only our own claim: after our lease lapsed another delivery may hold it.
            if _ours(_read(ref, transaction), token):
                transaction.delete(ref)

        self._transact(run)
