"""The idempotency store shared by every instance: one Firestore document per task.

Document `idempotency/{sha256(queue + "/" + task name)}` (hex: a valid document id whatever
the task name holds), fields:
  state      "claimed" while a delivery processes the task, "done" once it is finished
             (processed, or dead-lettered and acknowledged)
  owner      a random token per claim: only the claim's own request releases it
  leaseUntil Timestamp: a "claimed" record past this is taken over (its holder crashed or
             was killed; by then Cloud Tasks has given up on that attempt anyway)
  updatedAt  Timestamp of the last write: the stack's TTL policy on this field (with the
             stack's `idempotency.ttl` as its expiration offset, components/idempotency.py)
             deletes the record that long after (typically within 24 h more, per Firestore)
  key        queue/task name, for people reading the database

claim() reads and writes in one transaction, so two deliveries of one task can't both
acquire it: Firestore fails one of two transactions that touch the same document (the client
retries it, and the retry then sees the other's claim). Times are the instance's clock
(Cloud Run's are synchronised); the lease margin absorbs what skew remains.
"""

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

from google.cloud import firestore

from handler.store import Claim

# Agreed with components/idempotency.py (RECORDS, UPDATED_AT), which sets the TTL policy;
# the image has no `components`, so tests/app/test_handler_settings.py checks they match.
COLLECTION = "idempotency"
TTL_FIELD = "updatedAt"
# The client's default is 5; two handlers racing on every task (the integration test) need
# a few more before one sees the other's claim.
TRANSACTION_ATTEMPTS = 10


def document_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class FirestoreStore:
    """`lease`: how long a claim holds without being completed or released (the dispatch
    deadline plus a margin). How long records are kept is the database's TTL policy."""

    def __init__(self, *, project: str | None, database: str, lease: timedelta) -> None:
        self._project, self._database = project, database
        self._lease = lease
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        # (key, thread) -> this claim's owner token. One request is one thread, so the
        # token goes back to the request that claimed, without changing the store protocol.
        self._owners: dict[tuple[str, int], str] = {}

    def _db(self) -> firestore.Client:
        with self._lock:
            # Created on first use, in the gunicorn worker: gRPC channels don't survive fork.
            if self._client is None:
                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client

    def _document(self, key: str) -> firestore.DocumentReference:
        return self._db().collection(COLLECTION).document(document_id(key))

    def claim(self, key: str) -> Claim:
        ref = self._document(key)
        token = uuid.uuid4().hex

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Claim:
            snapshot = ref.get(transaction=transaction)
            record = snapshot.to_dict() if snapshot.exists else None
            now = datetime.now(UTC)
            if record is not None and record.get("state") == "done":
                return Claim.DONE
            if record is not None and record.get("state") == "claimed":
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

        claim = run(self._db().transaction(max_attempts=TRANSACTION_ATTEMPTS))
        if claim is Claim.ACQUIRED:
            with self._lock:
                self._owners[key, threading.get_ident()] = token
        return claim

    def _token(self, key: str) -> str | None:
        with self._lock:
            return self._owners.pop((key, threading.get_ident()), None)

    def complete(self, key: str) -> None:
        self._token(key)
        now = datetime.now(UTC)
        # Unconditional: the task is done whoever holds the record now.
        self._document(key).set({"state": "done", TTL_FIELD: now, "key": key})

    def release(self, key: str) -> None:
        token = self._token(key)
        ref = self._document(key)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            record = snapshot.to_dict() if snapshot.exists else None
            # Only our own claim: after our lease lapsed another delivery may hold it.
            if record is not None and (record.get("state"), record.get("owner")) == (
                "claimed",
                token,
            ):
                transaction.delete(ref)

        run(self._db().transaction(max_attempts=TRANSACTION_ATTEMPTS))
