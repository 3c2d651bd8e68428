"""A pipeline's queue settings validated without running the program
(components/settings/queue.py): Cloud Tasks' bounds and the two rules across keys."""

from __future__ import annotations

from typing import Any

import pytest

from components.durations import Duration
from components.settings import ConfigError, QueueSettings, parse_pipeline

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
ATTEMPTS_HELP = "must be -1 (unlimited) or >= 1 and <= 2147483647"


def queue(**fields: Any) -> QueueSettings:
    return parse_pipeline({"service": {"image": IMAGE}, "queue": fields}).queue


def problems(**fields: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline({"service": {"image": IMAGE}, "queue": fields})
    return caught.value.problems


def test_defaults_are_those_documented() -> None:
    q = queue()
    assert (q.max_dispatches_per_second, q.max_attempts, q.max_doublings) == (10.0, 20, 5)
    assert (q.max_retry_duration, q.min_backoff, q.max_backoff) == (
        Duration.of_seconds(3600),
        Duration.of_seconds(1),
        Duration.of_seconds(300),
    )
    assert (q.logging_sampling_ratio, q.paused) == (1.0, False)


@pytest.mark.parametrize("attempts", [-1, 1, 2, 2**31 - 1])
def test_max_attempts_unlimited_or_an_int32_from_one(attempts: int) -> None:
    assert queue(maxAttempts=attempts).max_attempts == attempts


@pytest.mark.parametrize("attempts", [0, -2, 2**31])
def test_other_max_attempts_are_refused(attempts: int) -> None:
    assert problems(maxAttempts=attempts) == [f"queue.maxAttempts: {ATTEMPTS_HELP}, got {attempts}"]


def test_unlimited_attempts_need_a_retry_duration() -> None:
    assert problems(maxAttempts=-1, maxRetryDuration="0s") == [
        "queue.maxAttempts: -1 (unlimited) needs a maxRetryDuration above 0s, or a failing task"
        " is retried forever, got -1"
    ]
    assert queue(maxAttempts=-1, maxRetryDuration="1s").max_retry_duration == (
        Duration.of_seconds(1)
    )
    assert queue(maxAttempts=3, maxRetryDuration="0s").max_retry_duration == Duration(0)


def test_max_backoff_may_equal_min_backoff_and_not_be_below_it() -> None:
    assert queue(minBackoff="10s", maxBackoff="10s").max_backoff == Duration.of_seconds(10)
    assert problems(minBackoff="10s", maxBackoff="9.5s") == [
        'queue.maxBackoff: must be >= minBackoff (10s), got "9.5s"'
    ]


def test_both_rules_at_once_and_none_on_a_bad_field() -> None:
    assert problems(maxAttempts=-1, maxRetryDuration="0s", minBackoff="2s", maxBackoff="1s") == [
        "queue.maxAttempts: -1 (unlimited) needs a maxRetryDuration above 0s, or a failing task"
        " is retried forever, got -1",
        'queue.maxBackoff: must be >= minBackoff (2s), got "1s"',
    ]
    assert problems(maxAttempts=-1, maxRetryDuration=0, minBackoff="2s", maxBackoff=1) == [
        "queue.maxBackoff: must be a duration string such as '600s', '10m', '1.5h' or"
        " '250ms', got 1",
        "queue.maxRetryDuration: must be a duration string such as '600s', '10m', '1.5h' or"
        " '250ms', got 0",
    ]


def test_the_unlimited_rule_skips_a_bad_attempts_or_duration() -> None:
    assert problems(maxAttempts="-1", maxRetryDuration="0s") == [
        'queue.maxAttempts: must be a whole number, got "-1"'
    ]
    assert problems(maxAttempts=-1, maxRetryDuration="0") == [
        "queue.maxRetryDuration: must be a duration such as '600s', '10m', '1.5h' or '250ms',"
        ' got "0"'
    ]


def test_the_backoff_rule_skips_a_bad_min_backoff() -> None:
    assert problems(minBackoff=1, maxBackoff="0s") == [
        "queue.minBackoff: must be a duration string such as '600s', '10m', '1.5h' or '250ms',"
        " got 1"
    ]
