"""Durations: exact decimal seconds in Google's form, never floats, never rounded."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.durations import MAX_SECONDS, NANOS_PER_SECOND, Duration, DurationError

GOOGLE_FORM = re.compile(r"[0-9]+(\.[0-9]{1,9})?s")


@pytest.mark.parametrize(
    ("text", "google"),
    [
        ("720h", "2592000s"),
        ("1.25h", "4500s"),
        ("0.5s", "0.5s"),
        ("0.00001s", "0.00001s"),
        ("600s", "600s"),
        ("10m", "600s"),
        ("250ms", "0.25s"),
        ("0.000001ms", "0.000000001s"),
        ("87660h", "315576000s"),
        ("0s", "0s"),
    ],
)
def test_google_form(text: str, google: str) -> None:
    assert str(Duration.parse(text)) == google
    assert GOOGLE_FORM.fullmatch(google)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0.0000000001s", "more than nanosecond precision"),
        ("0.0000000001ms", "more than nanosecond precision"),
        ("2.592e+06s", "must be a duration"),
        ("1e-05s", "must be a duration"),
        ("-1s", "must be a duration"),
        (" 30m ", "must be a duration"),
        ("10", "must be a duration"),
        ("1d", "must be a duration"),
        ("nans", "must be a duration"),
        (f"{MAX_SECONDS + 1}s", "must be at most 315576000000s"),
    ],
)
def test_refused(text: str, error: str) -> None:
    with pytest.raises(DurationError, match=re.escape(error)):
        Duration.parse(text)


@given(st.integers(min_value=0, max_value=MAX_SECONDS * NANOS_PER_SECOND))
def test_every_duration_prints_in_google_form_and_parses_back_exactly(nanos: int) -> None:
    text = str(Duration(nanos))
    assert GOOGLE_FORM.fullmatch(text), text
    assert Duration.parse(text) == Duration(nanos)


def test_ordering_and_protobuf_fields() -> None:
    small, large = Duration.parse("15s"), Duration.parse("15.000000001s")
    assert small < large and large.seconds == 15 and large.nanos_part == 1
    assert len({small, Duration.parse("0.25m")}) == 1
