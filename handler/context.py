"""What a processor may pass to its own stores so that its effects happen once even when a
task runs twice: the task's idempotency key and the claim's fencing token.

Delivery is at least once, and a claim is a lease: a holder paused (CPU starvation, a long
GC, a store outage) for longer than its lease loses the task to another delivery while its
own work may still finish (docs/guarantees.md). The claim's generation is a fencing token:
every claim of a task gets a number greater than every earlier claim's, so a store that
remembers the highest token it has seen per key can refuse a write from an older holder
(Kleppmann, "How to do distributed locking", 2016).

    from handler.context import current

    def process(task):
        ctx = current()
        # UPDATE orders SET paid = true, fence = :token
        #   WHERE id = :id AND (fence IS NULL OR fence < :token)   -- 0 rows: a newer holder
        db.execute(..., token=ctx.fencing_token, id=ctx.idempotency_key)

Contract:
  idempotency_key  stable for the task across every delivery, retry and replay of it (a
                   replay carries its original's key): `queue id/task name` of the original
  fencing_token    an int >= 1 that grows with every claim of the key (never reused while
                   the claim record lives, i.e. within the stack's idempotency TTL); None
                   when the store keeps no generations (a custom store)
Outside a delivery `current()` raises LookupError. The processor's signature is unchanged:
`process(task)` reads `current()` when it needs them.

The same two values go to a processor that is not Python as HTTP headers (a proxy in front
of another app): the names below. Neither name contains "key" or "token", which the handler
takes for credentials (handler/logs.py redacts them from logs and dead letters): these
values are not secrets, and must stay visible in both. A request arriving with either
header has it replaced, never trusted.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

IDEMPOTENCY_HEADER = "X-Task-Idempotency-Id"
"""The task's idempotency key, as a header (`queue id/task name`)."""
FENCING_HEADER = "X-Task-Fencing-Generation"
"""The claim's fencing token, as a header (decimal digits)."""


@dataclass(frozen=True)
class TaskContext:
    idempotency_key: str
    fencing_token: int | None

    def headers(self) -> dict[str, str]:
        """The two values as headers for a processor behind HTTP."""
        fields = {IDEMPOTENCY_HEADER: self.idempotency_key}
        if self.fencing_token is not None:
            fields[FENCING_HEADER] = str(self.fencing_token)
        return fields


_CURRENT: ContextVar[TaskContext] = ContextVar("task_context")


def current() -> TaskContext:
    """The context of the delivery this processor call serves; LookupError outside one."""
    return _CURRENT.get()


@contextmanager
def serving(context: TaskContext) -> Iterator[None]:
    """Sets the context for the processor call (handler/app.py)."""
    reset = _CURRENT.set(context)
    try:
        yield
    finally:
        _CURRENT.reset(reset)
