"""A pipeline's claim checks: whether big bodies go through a payload bucket, and from what
size (taskclient/offload.py, handler/payloads.py, components/payloads.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any

from ..durations import MAX_SCHEDULE_AHEAD, Duration
from ..task_size import MAX_TASK_BYTES
from .idempotency import DEAD_LETTER_RETENTION, retry_window
from .queue import QueueSettings
from .validation import Problem, Settings, known, within

DAY = 24 * 3600


class PayloadSettings(Settings):
    """`payloads: {enabled: true, threshold: N}`. Without a threshold a body is offloaded
    when its task would not fit MAX_TASK_BYTES with its headers; with one, when the body is
    over N bytes (1..MAX_TASK_BYTES: a lower one keeps tasks small, at two Cloud Storage
    operations per offloaded task)."""

    enabled: bool = False
    """`true`: a payload bucket for bodies that would not fit a task (see Concepts: Payloads)."""
    threshold: Annotated[int, within(1, MAX_TASK_BYTES)] | None = None
    """1..1000000 bytes of body above which a body is offloaded; unset: when the task would not fit
    1 MB with its headers. Needs `enabled: true`."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        # A threshold without a bucket would be ignored: say so instead.
        # `is False`: an `enabled` that failed on its own (INVALID) says nothing either way.
        if view.enabled is False and known(view.threshold) and view.threshold is not None:
            yield (("threshold",), "needs payloads.enabled: true", view.threshold)


def object_age_days(queue: QueueSettings, dispatch_deadline: Duration) -> int:
    """Days after which the lifecycle rule deletes an object: the task may wait 30 days
    for its schedule time, retry for its window, be kept as a dead letter for 31 days,
    and be replayed and retried for a window again; rounded up to whole days (the rule's
    `age` is in days). The window is the one the idempotency records outlive
    (idempotency.retry_window)."""
    window = retry_window(
        queue.max_attempts, queue.max_retry_duration, queue.max_backoff, dispatch_deadline
    )
    total = MAX_SCHEDULE_AHEAD.nanos + 2 * window.nanos + DEAD_LETTER_RETENTION.nanos
    return math.ceil(total / (DAY * 10**9))
