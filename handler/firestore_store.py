"""The idempotency store shared by every instance: one Firestore document per task.

Document `idempotency/{sha256(queue + "/" + task name)}` (hex: a valid document id whatever
the task name holds), fields:
  state      "claimed" while a delivery processes the task; "released" once a failed attempt
             handed it back; "processed" once it is; "dead_lettered" once its dead letter is
             kept and it is acknowledged (a replay of it, X-Replay-Of, may then claim it once;
             any other delivery is a duplicate). "done", written before the two were told
             apart, is either: a replay may claim it
  owner      a random token per claim: only the claim's own request renews, releases or
             completes it
  leaseUntil Timestamp: a "claimed" record past this is taken over. While the request that
             claimed runs, and until its outcome is written, a renewer thread moves it
             forward a quarter of a lease after it last started (a renewal may take until
             an eighth of the lease is left), so it lapses only once its holder has stopped
             or been cut off for most of a lease (crashed, killed, frozen): work that
             outlives the dispatch deadline (Cloud Tasks then delivers the task again) keeps
             its claim, and the new delivery is told to come back (handler/deadlines.py)
  generation the claim's fencing token: 1 for a task's first claim, one more for each claim
             after (a takeover included); the processor gets it (handler/context.py)
  holder     the delivery holding (or that last held) the claim: task, attempt, host/pid,
             named in the log line of a holder that finds its claim taken over
  deadLettered true on a record a replay took over from "dead_lettered": released, or its
             lease lapsed, the task is still dead-lettered (a duplicate for any delivery but a
             replay). A replay (X-Replay-Of) claims only a dead-lettered record: for any other
             it is a task of its own (handler/app.py), so naming a task can't cancel it
  letter     the digest of the task's request (its target and body) as its first claim got
             it: a replay claims a dead-lettered record only with the same letter, so a task
             naming another in X-Replay-Of with a body of its own can't take its key. Kept by
             every later claim (a record written without one accepts any replay)
  firstAttemptAt Timestamp of the task's first attempt as it reached the handler (null:
             unknown, the record was first written by a retry), kept across releases: Cloud
             Tasks' retry limit counts maxRetryDuration from it (handler/app.py)
  updatedAt  Timestamp of the last write: the stack's TTL policy on this field (with the
             stack's `idempotency.ttl` as its expiration offset, components/idempotency.py)
             deletes the record that long after (typically within 24 h more, per Firestore)
  key        queue/task name, for people reading the database

Every change is a read, then a write on the condition that the document is still as read
(Firestore's update-time precondition, or create-if-absent): two deliveries of one task can't
both acquire it, as one of the two writes fails its precondition and is retried on a fresh
read. No transaction: every call is a plain read or write that takes a deadline (the caller's
answer budget), where the client's transactions begin and commit with its 60 s defaults, and
the emulator's transaction locks abort under load. Times are the instance's clock (Cloud
Run's are synchronised); the lease, at least 1 s, absorbs what skew remains.
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

from google.api_core import exceptions
from google.cloud import firestore

from handler.store import Claim

# Agreed with components/idempotency.py (RECORDS, UPDATED_AT), which sets the TTL policy;
# the image has no `components`, so tests/app/test_handler_settings.py checks they match.
COLLECTION = "idempotency"
TTL_FIELD = "updatedAt"
FIRST_ATTEMPT = "firstAttemptAt"
# Renewals and background completions at once: an instance may hold as many claims as
# requests, up to 1000 (Cloud Run's maximum concurrency), and each is a read and a write
# that may wait most of a lease on a slow store: as many as a busy instance holds claims
# past a quarter of a lease, so that none waits behind another's slow renewal.
RENEW_THREADS = 64
# A claim is renewed once this share of its lease has passed, checked every ROUND of a
# lease; a renewal may take until RENEW_MARGIN of the lease is left (handler/deadlines.py's
# lease is half the dispatch deadline: 7.5 s at the smallest, 15 s).
RENEW_AFTER = 0.25
ROUND = 0.0625
RENEW_MARGIN = 0.125
# The claim's fencing token: 1 for the first claim of a task, one more for each claim after
# (handler/context.py); and the delivery that holds it, for the log of a lost claim.
GENERATION = "generation"
HOLDER = "holder"
LETTER = "letter"
# Errors worth another read and write, within the call's deadline: every write is conditional,
# so trying again is always safe. Aborted is the emulator's "Transaction lock timeout."
TRANSIENT = (
    exceptions.Aborted,
    exceptions.DeadlineExceeded,
    exceptions.InternalServerError,
    exceptions.ServiceUnavailable,
    exceptions.TooManyRequests,
)
# Backoff between those tries: from the first to the second, doubling.
BACKOFF_S = (0.05, 1.0)
# A call given no timeout still ends: the client library's own default.
UNBOUNDED_S = 60.0
T = TypeVar("T")

logger = logging.getLogger("handler.store")

PROCESSED = "processed"
DEAD_LETTERED = "dead_lettered"
# What a delivery that is not a replay takes as settled ("done": records written before
# processed and dead-lettered were told apart).
SETTLED = (PROCESSED, DEAD_LETTERED, "done")
# What a replay (X-Replay-Of) may take over: a task whose dead letter is kept.
REPLAYABLE = (DEAD_LETTERED, "done")
# Kept on a dead-lettered record a replay claims: released, or lapsed, it is still
# dead-lettered (a duplicate for any other delivery, the replay's retry may claim it).
DEAD_LETTER_MARK = "deadLettered"
# A record in one of these states belongs to the same run of attempts: a new claim keeps its
# first attempt. Any other (none, or a dead-lettered one a replay takes over) starts anew.
SAME_ATTEMPTS = ("claimed", "released")


class StoreTimeout(TimeoutError):
    """A store call ran out of the time it was given."""


def document_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _task(key: str) -> dict[str, str]:
    """The task's log fields, as the handler's own lines name them (a field called `key`
    would be redacted as a credential by handler/logs.py)."""
    queue, _, name = key.partition("/")
    return {"queue": queue, "taskName": name}


def _ours(record: dict[str, object], token: str | None) -> bool:
    """The record is the live claim this token was given."""
    return token is not None and (record.get("state"), record.get("owner")) == ("claimed", token)


def _dead_lettered(record: dict[str, object]) -> bool:
    """Its dead letter is kept and nothing processed it since: dead-lettered, or taken over
    by a replay that has not settled it (released, or its lease lapsed)."""
    return record.get("state") in REPLAYABLE or (
        record.get(DEAD_LETTER_MARK) is True and record.get("state") in SAME_ATTEMPTS
    )


def _generation(record: dict[str, object]) -> int:
    value = record.get(GENERATION)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _live(record: dict[str, object], now: datetime) -> bool:
    """Someone's claim whose lease still holds."""
    lease_until = record.get("leaseUntil")
    return (
        record.get("state") == "claimed" and isinstance(lease_until, datetime) and lease_until > now
    )


class _Deadline:
    """What is left of a call's time, for each RPC it makes."""

    def __init__(self, timeout: float | None) -> None:
        self._end = time.monotonic() + (UNBOUNDED_S if timeout is None else timeout)

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise StoreTimeout("the idempotency store did not answer within the time left")
        return left

    def rpc(self) -> dict[str, object]:
        """Arguments for one client call: no retry of its own (the caller reads again, and
        its write is conditional), within what is left."""
        return {"retry": None, "timeout": self.left()}

    def until_done(self, step: "Callable[[], T | None]") -> T:
        """Runs STEP (a read, then a conditional write) until it returns something: None
        means another write came first, a TRANSIENT error that the store stumbled; both are
        tried again until the deadline, then StoreTimeout (with the last error as cause)."""
        backoff = BACKOFF_S[0]
        while True:
            try:
                result = step()
            except TRANSIENT as exc:
                try:
                    time.sleep(min(backoff, self.left()))
                except StoreTimeout as timeout:
                    raise timeout from exc
                backoff = min(backoff * 2, BACKOFF_S[1])
                continue
            if result is not None:
                return result


@dataclass
class _Held:
    token: str
    written: float
    """time.monotonic() from which the claim's lease last ran (before the read that led to
    its last write, acquired or renewed): the lease holds at least until written + lease."""
    generation: int = 0
    """The claim's fencing token (the record's `generation` it wrote)."""
    holder: str = ""
    """The delivery that holds it, as the record names it."""
    outcome: str | None = None
    """For a completion handed to the background: the state still to be written."""
    lost: bool = False
    """Another delivery took the task over (logged and counted once)."""


class FirestoreStore:
    """`lease`: how long a claim holds unless renewed (handler/deadlines.py). How long
    records are kept is the database's TTL policy."""

    def __init__(self, *, project: str | None, database: str, lease: timedelta) -> None:
        self._project, self._database = project, database
        self._lease = lease
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        # (key, thread) -> this claim's owner token. One request is one thread, so the
        # token goes back to the request that claimed, without changing the store protocol
        # (or to the thread it was handed over to: hand_over).
        # Every claim in here is renewed until its request completes or releases it.
        self._owners: dict[tuple[str, int], _Held] = {}
        # key -> a claim whose request answered before its outcome could be written: the
        # renewer keeps writing the outcome (and renewing the claim meanwhile) until it lands.
        self._finishing: dict[str, _Held] = {}
        self._renewer: threading.Thread | None = None
        self._renewing: set[object] = set()  # slots and keys with a renewal under way
        self.claims_lost = 0
        """Claims this instance found taken over while its work ran (each logged)."""
        self._stopping = threading.Event()

    def _db(self) -> firestore.Client:
        with self._lock:
            # Created on first use, in the gunicorn worker: gRPC channels don't survive fork.
            if self._client is None:
                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client

    def _document(self, key: str) -> firestore.DocumentReference:
        return self._db().collection(COLLECTION).document(document_id(key))

    def _read(
        self, ref: firestore.DocumentReference, deadline: _Deadline
    ) -> tuple[firestore.DocumentSnapshot, dict[str, object]]:
        snapshot = ref.get(**deadline.rpc())  # pyright: ignore[reportArgumentType]
        return snapshot, (snapshot.to_dict() or {}) if snapshot.exists else {}

    def _write_if_unchanged(
        self,
        ref: firestore.DocumentReference,
        snapshot: firestore.DocumentSnapshot,
        fields: dict[str, object],
        deadline: _Deadline,
    ) -> bool:
        """Writes FIELDS if the document is still as SNAPSHOT read it; False if another
        write came first (the caller reads again). A write whose answer was lost may have
        landed: the caller's next read, by the owner token, tells."""
        try:
            if snapshot.exists:
                option = self._db().write_option(last_update_time=snapshot.update_time)
                ref.update(fields, option=option, **deadline.rpc())  # pyright: ignore[reportArgumentType]
            else:
                values = {k: v for k, v in fields.items() if v is not firestore.DELETE_FIELD}
                ref.create(values, **deadline.rpc())  # pyright: ignore[reportArgumentType]
        except (exceptions.FailedPrecondition, exceptions.Conflict, exceptions.NotFound):
            return False
        return True

    def claim(
        self,
        key: str,
        *,
        replay: bool = False,
        letter: str = "",
        first_attempt_at: datetime | None = None,
        timeout: float | None = None,
        holder: str = "",
    ) -> Claim:
        deadline = _Deadline(timeout)
        ref = self._document(key)
        token = uuid.uuid4().hex
        settled = (PROCESSED,) if replay else SETTLED
        leased = [time.monotonic()]
        generation = [0]

        def step() -> Claim | None:
            started = time.monotonic()
            snapshot, record = self._read(ref, deadline)
            if _ours(record, token):  # our write landed, its answer was lost
                return Claim.ACQUIRED
            now = datetime.now(UTC)
            if record.get("state") in settled:
                return Claim.DONE
            if _live(record, now):
                return Claim.IN_PROGRESS
            dead = _dead_lettered(record)
            if dead and not replay:
                return Claim.DONE
            kept = record.get(LETTER) or letter
            if replay and (not dead or kept != letter):
                # No dead letter of this task is on record, or not this one: the replay
                # can't stand for it (else any enqueuer could cancel a predictable task by
                # naming it, or run its own body under a dead-lettered task's key).
                return Claim.NOT_DEAD_LETTERED
            if record.get("state") in SAME_ATTEMPTS:
                first_at = record.get(FIRST_ATTEMPT)
            else:
                # The first attempt's arrival, as the handler stamped it before asking: not
                # this write's time, which a slow store puts late (Cloud Tasks counts the
                # retry duration from the attempt).
                first_at = first_attempt_at
            generation[0] = _generation(record) + 1
            fields = {
                "state": "claimed",
                "owner": token,
                "leaseUntil": now + self._lease,
                GENERATION: generation[0],
                HOLDER: holder,
                LETTER: kept,
                DEAD_LETTER_MARK: dead,
                FIRST_ATTEMPT: first_at,
                TTL_FIELD: now,
                "key": key,
            }
            leased[0] = started
            return (
                Claim.ACQUIRED
                if self._write_if_unchanged(ref, snapshot, fields, deadline)
                else None
            )

        claim = deadline.until_done(step)
        if claim is not Claim.ACQUIRED:
            return claim
        # ACQUIRED only while the lease holds, with time to renew it: a write that took a
        # third of the lease is renewed now, and if another delivery took the task over
        # meanwhile, this one comes back later.
        if time.monotonic() - leased[0] >= self._lease.total_seconds() * RENEW_AFTER:
            renewed_from = time.monotonic()
            if self._renew(key, token, deadline) is not None:
                return Claim.IN_PROGRESS
            leased[0] = renewed_from
        # Before the claim is recorded here: if no thread can start, claim() raises, the
        # request answers store_unavailable, and the claim lapses with its first lease
        # instead of staying recorded, and renewed, for a request that is gone.
        self._start_renewer()
        with self._lock:
            self._owners[key, threading.get_ident()] = _Held(
                token, leased[0], generation[0], holder
            )
            # A request of this instance still holding the task (its work, or its outcome
            # write, outlived its lease): the claim just taken is its loss.
            superseded = [
                held
                for slot, held in self._owners.items()
                if slot[0] == key and held.token != token
            ]
            if key in self._finishing:
                superseded.append(self._finishing[key])
        taken = {HOLDER: holder, GENERATION: generation[0], "state": "claimed"}
        for held in superseded:
            self._lost(key, held, taken, "its work or outcome write still runs here")
        return Claim.ACQUIRED

    def fencing_token(self, key: str) -> int | None:
        """The generation of the claim on KEY this request holds; None if it holds none."""
        with self._lock:
            held = self._owners.get((key, threading.get_ident()))
        return None if held is None else held.generation

    def hand_over(self, key: str, thread: int) -> None:
        """Moves this thread's claim on KEY to THREAD: its renewals go on (the renewer takes
        every held claim, whichever thread holds it), and THREAD completes or releases it."""
        with self._lock:
            held = self._owners.pop((key, threading.get_ident()), None)
            if held is not None:
                self._owners[key, thread] = held

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        deadline = _Deadline(timeout)
        _, record = deadline.until_done(lambda: self._read(self._document(key), deadline))
        first = record.get(FIRST_ATTEMPT)
        return first if isinstance(first, datetime) else None

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
        """Renews each claim a quarter of a lease after its lease last started: short tasks,
        most of them, are settled before that and never cost a renewal. A renewal may take
        until shortly before its lease ends, retrying what fails meanwhile (a slow or paused
        store, or a renewal started late because this process was starved of CPU, still
        lands in time), and each is on its own thread, so one slow call holds back its own
        claim only. Completions handed to the background are tried again every round."""
        lease = self._lease.total_seconds()
        with ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="claim-renewal") as pool:
            while not self._stopping.wait(lease * ROUND):
                now = time.monotonic()
                with self._lock:
                    due: list[tuple[object, str, _Held]] = [
                        (slot, slot[0], held)
                        for slot, held in self._owners.items()
                        if now - held.written >= lease * RENEW_AFTER and slot not in self._renewing
                    ]
                    due += [
                        (key, key, held)
                        for key, held in self._finishing.items()
                        if key not in self._renewing
                    ]
                    self._renewing.update(slot for slot, _, _ in due)
                for item in due:
                    try:
                        pool.submit(self._renew_one, *item)
                    except RuntimeError as exc:  # no thread to run it: the next round tries
                        with self._lock:
                            self._renewing.discard(item[0])
                        fields = {**_task(item[1]), "error": repr(exc)}
                        logger.error({"message": "claim not renewed", **fields})

    def _renewal_deadline(self, held: _Held) -> _Deadline:
        """Until shortly before the lease ends (a renewal landing after it may find the task
        taken over); at least a short try when that moment has passed."""
        lease = self._lease.total_seconds()
        left = held.written + lease * (1 - RENEW_MARGIN) - time.monotonic()
        return _Deadline(max(left, lease * RENEW_AFTER / 2))

    def _renew_one(self, slot: object, key: str, held: _Held) -> None:
        started = time.monotonic()
        try:
            if isinstance(slot, str):
                self._finish_later(key, held)
                return
            taken = self._renew(key, held.token, self._renewal_deadline(held))
        except Exception as exc:  # the next round tries again while the lease lasts
            logger.warning({"message": "claim not renewed", **_task(key), "error": repr(exc)})
            return
        finally:
            with self._lock:
                self._renewing.discard(slot)
        with self._lock:
            current = self._owners.get(slot)  # pyright: ignore[reportArgumentType]
            # Not ours any more: settled meanwhile (its record then no longer says "claimed"
            # with our token either), which is no loss.
            if current is None or current.token != held.token:
                return
            if taken is None:
                current.written = started
                return
            if _generation(taken) <= held.generation:
                # No claim since ours: this request settled it meanwhile (its outcome landed
                # between the renewal's read and now), or the record is gone (TTL).
                return
            del self._owners[slot]  # pyright: ignore[reportArgumentType]
        # Its lease lapsed before a renewal landed (the instance was frozen or cut off from
        # Firestore for a whole lease) and another delivery took the task over.
        self._lost(key, held, taken, "its work is still running here")

    def _lost(self, key: str, held: _Held, record: dict[str, object], doing: str) -> None:
        """Says, once per claim, that another delivery took this claim's task over: both
        deliveries and their fencing tokens, so that a second run can be traced and a
        processor's store that checks the token refuses this holder's late writes."""
        with self._lock:
            if held.lost:
                return
            held.lost = True
            self.claims_lost += 1
        logger.error(
            {
                "message": f"claim lost: another delivery took this task over; {doing}, so it"
                " may run twice (a processor that passes its fencing token to its store is"
                " refused there)",
                "status": "claim_lost",
                **_task(key),
                "delivery": held.holder,
                "claimGeneration": held.generation,
                "takenBy": record.get(HOLDER, ""),
                "takenGeneration": _generation(record),
                "takenState": record.get("state"),
            }
        )

    def _finish_later(self, key: str, held: _Held) -> None:
        """One more try at a completion the request had to answer without: the outcome,
        else at least a renewal, so that the claim holds until the outcome lands."""
        with self._lock:
            current = self._finishing.get(key)
        if current is not held or held.outcome is None:
            return
        try:
            self._finish(key, held, held.outcome, self._renewal_deadline(held))
        except Exception as exc:
            logger.warning(
                {"message": "task outcome not written yet", **_task(key), "error": repr(exc)}
            )
            renewed_from = time.monotonic()
            if self._renew(key, held.token, self._renewal_deadline(held)) is None:
                held.written = renewed_from
            return
        with self._lock:
            self._finishing.pop(key, None)
        logger.info({"message": "task outcome written", **_task(key), "state": held.outcome})

    def _renew(self, key: str, token: str, deadline: _Deadline) -> dict[str, object] | None:
        """None once renewed; the record found if the claim is no longer this token's."""
        ref = self._document(key)

        def step() -> tuple[dict[str, object] | None] | None:
            snapshot, record = self._read(ref, deadline)
            if not _ours(record, token):
                return (record,)
            now = datetime.now(UTC)
            fields: dict[str, object] = {"leaseUntil": now + self._lease, TTL_FIELD: now}
            return (None,) if self._write_if_unchanged(ref, snapshot, fields, deadline) else None

        return deadline.until_done(step)[0]

    def _forget(self, key: str) -> str | None:
        """Stops renewing this request's claim of KEY; its owner token, if it held one."""
        with self._lock:
            held = self._owners.pop((key, threading.get_ident()), None)
        return None if held is None else held.token

    def _finish(self, key: str, held: _Held | None, outcome: str, deadline: _Deadline) -> None:
        """Writes the task's outcome, unless it is already written. "processed" goes over
        whatever is there: the task was processed, whoever holds the record now. A dead
        letter never goes over a processed record (after this claim's lease lapsed another
        delivery may have processed the task, and a replay must then be a duplicate), nor
        over another delivery's live claim (its own outcome will be written)."""
        ref = self._document(key)
        token = None if held is None else held.token

        def step() -> bool | None:
            snapshot, record = self._read(ref, deadline)
            now = datetime.now(UTC)
            # Claimed again since ours: another delivery took the task over.
            if held is not None and _generation(record) > held.generation:
                self._lost(key, held, record, f"its work ended here ({outcome})")
            if record.get("state") in (PROCESSED, outcome):
                return True
            if not _ours(record, token) and _live(record, now) and outcome == DEAD_LETTERED:
                return True
            fields = {
                "state": outcome,
                "owner": firestore.DELETE_FIELD,
                "leaseUntil": firestore.DELETE_FIELD,
                TTL_FIELD: now,
                "key": key,
            }
            return True if self._write_if_unchanged(ref, snapshot, fields, deadline) else None

        deadline.until_done(step)

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        """The claim is renewed until the outcome is written. If it can't be written in
        `timeout`, this raises, and the claim is still held: the renewer keeps renewing it
        and writing the outcome until it lands."""
        slot = (key, threading.get_ident())
        with self._lock:
            held = self._owners.get(slot)
        outcome = DEAD_LETTERED if dead_lettered else PROCESSED
        try:
            self._finish(key, held, outcome, _Deadline(timeout))
        except Exception:
            with self._lock:
                held = self._owners.pop(slot, None)
                if held is not None:
                    earlier = self._finishing.get(key)
                    # Two requests here writing one task's outcome (the later took it over):
                    # one write goes on, and "processed" wins, as it does in the record.
                    processed = earlier is not None and earlier.outcome == PROCESSED
                    held.outcome = PROCESSED if processed else outcome
                    self._finishing[key] = held
            raise
        self._forget(key)

    def release(self, key: str, *, timeout: float | None = None) -> None:
        token = self._forget(key)
        deadline = _Deadline(timeout)
        ref = self._document(key)

        def step() -> bool | None:
            snapshot, record = self._read(ref, deadline)
            # Only our own claim: after our lease lapsed another delivery may hold it.
            if not _ours(record, token):
                return True
            now = datetime.now(UTC)
            fields = {
                "state": "released",
                "owner": firestore.DELETE_FIELD,
                "leaseUntil": firestore.DELETE_FIELD,
                TTL_FIELD: now,
            }
            return True if self._write_if_unchanged(ref, snapshot, fields, deadline) else None

        deadline.until_done(step)
