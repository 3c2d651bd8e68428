"""Rate and retry limits of a pipeline's Cloud Tasks queue, within the API's bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..durations import Duration
from .validation import (
    INT32_MAX,
    Problem,
    Settings,
    duration_within,
    fail,
    known,
    within,
)

# Cloud Tasks RateLimits: maxDispatchesPerSecond <= 500, maxConcurrentDispatches <= 5000
# (cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues#ratelimits).
# maxBurstSize is output-only and not accepted.
MAX_DISPATCHES_PER_SECOND = 500
MAX_CONCURRENT_DISPATCHES = 5000
ZERO = Duration(0)


def _attempts(value: int) -> int:
    # RetryConfig.maxAttempts is an int32; -1 means unlimited, 0 is not allowed.
    if value != -1 and not 1 <= value <= INT32_MAX:
        raise fail(f"must be -1 (unlimited) or >= 1 and <= {INT32_MAX}")
    return value


class QueueSettings(Settings):
    """Rate and retry limits of the pipeline's Cloud Tasks queue."""

    max_dispatches_per_second: Annotated[
        float, within(0, MAX_DISPATCHES_PER_SECOND, low_open=True)
    ] = Field(10.0, alias="maxDispatchesPerSecond")
    """`> 0` and `<= 500` (Cloud Tasks `RateLimits`; `maxBurstSize` is output-only and not
    accepted)."""
    # Defaults to the service's capacity, capped at 5000 (resolved by PipelineSettings).
    max_concurrent_dispatches: Annotated[int, within(1, MAX_CONCURRENT_DISPATCHES)] | None = Field(
        None, alias="maxConcurrentDispatches"
    )
    """1..5000 and at most `maxInstances x concurrency`; defaults to that product, capped at
    5000."""
    max_attempts: Annotated[int, AfterValidator(_attempts)] = Field(20, alias="maxAttempts")
    """`-1` (unlimited, needs `maxRetryDuration > 0s`) or 1..2147483647 (int32). Retries stop only
    when both this and `maxRetryDuration` are exhausted."""
    # 0s means no time limit: retries then stop on maxAttempts alone.
    max_retry_duration: Annotated[Duration, duration_within(ZERO)] = Field(
        Duration.of_seconds(3600), alias="maxRetryDuration"
    )
    """`>= 0s`; `0s` = no time limit."""
    min_backoff: Annotated[Duration, duration_within(ZERO)] = Field(
        Duration.of_seconds(1), alias="minBackoff"
    )
    """`>= 0s`."""
    max_backoff: Annotated[Duration, duration_within(ZERO)] = Field(
        Duration.of_seconds(300), alias="maxBackoff"
    )
    """`>= minBackoff`."""
    # RetryConfig.maxDoublings is an int32 >= 0.
    max_doublings: Annotated[int, within(0, INT32_MAX)] = Field(5, alias="maxDoublings")
    """0..2147483647 (int32)."""
    logging_sampling_ratio: Annotated[float, within(0, 1)] = Field(
        1.0, alias="loggingSamplingRatio"
    )
    """0..1: the share of task operations Cloud Tasks logs."""
    paused: bool = False
    """`true` pauses dispatch (tasks are still accepted)."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        # INVALID, a field that failed on its own, equals neither.
        if view.max_attempts == -1 and view.max_retry_duration == ZERO:
            yield (
                ("maxAttempts",),
                "-1 (unlimited) needs a maxRetryDuration above 0s,"
                " or a failing task is retried forever",
                view.max_attempts,
            )
        if known(view.min_backoff, view.max_backoff) and view.max_backoff < view.min_backoff:
            yield (
                ("maxBackoff",),
                f"must be >= minBackoff ({view.min_backoff})",
                str(view.max_backoff),
            )
