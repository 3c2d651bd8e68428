"""How a request that got no success is accounted for: failed only when it provably never
reached Cloud Tasks, unknown (may exist) otherwise."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions

from taskclient.bulk import Outcome, _Flight

REFUSED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: Connection refused"
)


@pytest.mark.parametrize(
    ("errors", "outcome"),
    [
        ([exceptions.ServiceUnavailable(REFUSED)], Outcome.FAILED),
        ([exceptions.ServiceUnavailable(REFUSED)] * 3, Outcome.FAILED),
        ([exceptions.ServiceUnavailable("Socket closed")], Outcome.UNKNOWN),
        ([exceptions.ServiceUnavailable("GOAWAY received")], Outcome.UNKNOWN),
        ([exceptions.DeadlineExceeded("Deadline Exceeded")], Outcome.UNKNOWN),
        (
            [exceptions.DeadlineExceeded("slow"), exceptions.ServiceUnavailable(REFUSED)],
            Outcome.UNKNOWN,  # the first attempt may have created it
        ),
        ([exceptions.InvalidArgument("bad task")], Outcome.FAILED),
        ([exceptions.ResourceExhausted("quota")], Outcome.FAILED),
    ],
)
def test_outcome_after_errors(errors: list[Exception], outcome: Outcome) -> None:
    flight = _Flight(0, time.monotonic)
    flight.errors.extend(errors)
    result = flight.ended("last error")
    assert result.outcome is outcome
    assert result.attempts == len(errors)


def test_cut_short_on_the_wire_is_unknown_and_between_attempts_is_judged_by_errors() -> None:
    flight = _Flight(0, time.monotonic)
    flight.on_the_wire = True
    assert flight.cut_short().outcome is Outcome.UNKNOWN
    waiting = _Flight(1, time.monotonic)
    waiting.errors.append(exceptions.ServiceUnavailable(REFUSED))
    assert waiting.cut_short().outcome is Outcome.FAILED
