"""Idempotency per task: delivery is at-least-once, so the same task name can arrive again.

The interface is three calls. An implementation backed by a shared database (Firestore,
Redis, Cloud SQL) makes it hold across instances; the in-memory default only de-duplicates
within one instance, which covers the common case of a retry after a lost 200 response.
A shared store must hold an ACQUIRED claim for as long as its request runs, which can be
past the dispatch deadline (Cloud Tasks then delivers the task again), and let it lapse soon
after its holder stops, so that a crashed instance's claim doesn't block the task for good:
FirestoreStore renews a short lease while the request runs, and until the task's outcome is
written: completion is part of the claim.

Every call takes `timeout`, the seconds the caller can still spend (what is left of the
delivery's answer budget; None: no bound): a store that can't answer in time raises instead of
holding the answer past the moment Cloud Tasks stops listening.
"""

import threading
from collections import OrderedDict
from datetime import datetime
from enum import Enum
from typing import Protocol


class Claim(Enum):
    ACQUIRED = "acquired"
    """Nobody has processed this task: go ahead, then call complete() or release()."""
    DONE = "done"
    """Already processed (or, for a delivery that isn't a replay, dead-lettered): acknowledge
    without doing the work again."""
    IN_PROGRESS = "in_progress"
    """Another delivery of this task is being processed right now: ask to be retried later."""
    NOT_DEAD_LETTERED = "not_dead_lettered"
    """For a replay only: the task it names has no dead-lettered record (never dead-lettered,
    still being retried, or its record expired), so the replay may not stand for it: it is
    a task of its own (handler/app.py claims it under its own key)."""


class IdempotencyStore(Protocol):
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
        """`replay`: a replay of the dead-lettered task `key` (X-Replay-Of) may take over a
        dead-lettered record, and only such a record: a processed one answers DONE, a live
        claim IN_PROGRESS, anything else NOT_DEAD_LETTERED. `letter`: the delivery's digest
        (TaskRequest.letter: its target and body), kept by the task's first claim; a replay
        whose letter differs is not a replay of that task (NOT_DEAD_LETTERED), or anyone
        allowed to enqueue could run their own body under a dead-lettered task's key, so
        that the task's real replay is a duplicate and never runs. `first_attempt_at`: given on
        the task's first attempt (retry count 0), when that attempt reached the handler; a
        record created now keeps it as the first attempt (Cloud Tasks counts the retry
        duration from it), a record that exists keeps its own. None: unknown. `holder`:
        the delivery asking, named in the log if another one takes its claim over."""
        ...

    def fencing_token(self, key: str) -> int | None:
        """The generation of the claim on `key` this request (thread) holds: larger than
        every earlier claim's of the key (handler/context.py); None if it holds none."""
        ...

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        """When the task's first attempt claimed it; None when unknown."""
        ...

    def hand_over(self, key: str, thread: int) -> None:
        """Moves the claim on `key` this request (thread) holds to the thread `thread`
        (threading.get_ident()), which from then on holds it as its own: it stays held and
        renewed, and that thread's fencing_token, complete and release are the claim's.
        Proxy mode's worker takes over a task whose app outlived the request
        (handler/proxy.py). A store that doesn't tie claims to threads does nothing."""
        ...

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        """Marks the task settled: processed, or `dead_lettered` (its dead letter is kept,
        and a replay of it may claim it once; never over a processed record). Later
        deliveries' claims return DONE. If it raises, the claim is still held."""
        ...

    def release(self, key: str, *, timeout: float | None = None) -> None:
        """Gives up an ACQUIRED claim after a failure, so a retry can claim it again."""
        ...


class InMemoryStore:
    """Thread-safe, per process; remembers the most recent `capacity` settled tasks, and the
    first attempt of the tasks it saw first (another instance may have taken a task's first
    attempt: its first attempt is then unknown, and the handler errs toward dead-lettering).
    Every call answers at once (`timeout` is never reached)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._settled: OrderedDict[str, bool] = OrderedDict()  # key -> dead-lettered
        self._running: set[str] = set()
        # Dead-lettered tasks a replay took over and has not settled: still dead-lettered
        # for every delivery but a replay, released or not.
        self._replaying: set[str] = set()
        # key -> its first attempt, for tasks not settled yet (released ones included).
        self._first: OrderedDict[str, datetime] = OrderedDict()
        # key -> its last claim's generation (the fencing token), for the `capacity` most
        # recently claimed tasks.
        self._generations: OrderedDict[str, int] = OrderedDict()
        # key -> the letter its first claim gave, as long as its generation is kept.
        self._letters: dict[str, str] = {}
        self._lock = threading.Lock()

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
        with self._lock:
            if key in self._running:
                return Claim.IN_PROGRESS
            dead = self._settled.get(key) is True or key in self._replaying
            if self._settled.get(key) is False or (dead and not replay):
                return Claim.DONE
            # A record with no letter (claimed without one) accepts any replay, as Firestore's.
            if replay and (not dead or (self._letters.get(key) or letter) != letter):
                return Claim.NOT_DEAD_LETTERED
            if key in self._settled:  # a replay takes a dead-lettered task over: anew
                # (complete() forgot its first attempt already)
                del self._settled[key]
                self._replaying.add(key)
            if first_attempt_at is not None:
                self._first.setdefault(key, first_attempt_at)
                while len(self._first) > self._capacity:
                    self._first.popitem(last=False)
            self._running.add(key)
            self._generations[key] = self._generations.get(key, 0) + 1
            self._generations.move_to_end(key)
            self._letters.setdefault(key, letter)
            while len(self._generations) > self._capacity:
                # Every key claimed has its letter (setdefault above): it goes with its generation.
                del self._letters[self._generations.popitem(last=False)[0]]
            return Claim.ACQUIRED

    def fencing_token(self, key: str) -> int | None:
        with self._lock:
            return self._generations.get(key) if key in self._running else None

    def first_attempt(self, key: str, *, timeout: float | None = None) -> datetime | None:
        with self._lock:
            return self._first.get(key)

    def hand_over(self, key: str, thread: int) -> None:
        """Claims here are the process's, not a thread's: nothing to move."""

    def complete(
        self, key: str, *, dead_lettered: bool = False, timeout: float | None = None
    ) -> None:
        with self._lock:
            self._running.discard(key)
            self._first.pop(key, None)
            self._replaying.discard(key)
            # Never over "processed": a replay of a task processed meanwhile is a duplicate.
            self._settled[key] = dead_lettered and self._settled.get(key, True)
            # Cloud Tasks de-duplicates task names for about an hour; older entries matter
            # only for very late redeliveries, so the oldest go first when full.
            while len(self._settled) > self._capacity:
                self._settled.popitem(last=False)

    def release(self, key: str, *, timeout: float | None = None) -> None:
        with self._lock:
            self._running.discard(key)
