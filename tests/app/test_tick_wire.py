"""How a tick's schedule time is read and written (handler/tick_wire.py): the instant, not
its spelling, names the tick's task, whatever the instance's own time zone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from handler.tick_wire import parse_schedule_time, schedule_time, tick_task_id


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone set to one that is never UTC (UTC-10, no DST)."""
    monkeypatch.setenv("TZ", "Pacific/Honolulu")
    time.tzset()
    assert time.timezone == 10 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ("2026-12-03T03:00:00Z", "2026-12-03T03:00:00Z"),
        ("2026-12-03T03:00:00.000Z", "2026-12-03T03:00:00Z"),
        ("2026-12-03T04:00:00+01:00", "2026-12-03T03:00:00Z"),
        ("2026-12-02T17:00:00-10:00", "2026-12-03T03:00:00Z"),
        ("2026-12-03t03:00:00Z", "2026-12-03T03:00:00Z"),
        ("2026-12-03T03:00:00.5Z", "2026-12-03T03:00:00.500000Z"),
    ],
)
def test_one_instant_has_one_spelling_whatever_the_local_zone(
    far_from_utc: None, raw: str, written: str
) -> None:
    when = parse_schedule_time(raw)
    assert when is not None
    assert when.utcoffset() is not None
    assert schedule_time(when) == written


def test_the_spelling_is_rfc_3339_utc_with_z() -> None:
    instant = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    assert schedule_time(instant) == "2026-12-03T03:00:00Z"
    assert schedule_time(instant.astimezone(timezone(timedelta(hours=5, minutes=30)))) == (
        "2026-12-03T03:00:00Z"
    )
    # The spelling reads back as the same instant.
    assert datetime.fromisoformat(schedule_time(instant)) == instant


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not-a-time",
        "1e9",
        "2026-12-03",  # a date: no time of day
        "2026-12-03T03:00:00",  # no offset: which instant is unknown
        "2026-12-03 03:00:00Z",  # Python reads it, but it is not what Cloud Scheduler sends
        "2026-12-03x03:00:00+01:00",
    ],
)
def test_what_is_not_a_date_and_time_with_an_offset_is_no_instant(raw: str) -> None:
    assert parse_schedule_time(raw) is None


def test_the_task_id_is_one_per_job_and_instant_and_a_valid_task_id() -> None:
    first = tick_task_id("projects/p/locations/l/jobs/nightly", "2026-12-03T03:00:00Z")
    assert first == tick_task_id("projects/p/locations/l/jobs/nightly", "2026-12-03T03:00:00Z")
    assert first != tick_task_id("projects/p/locations/l/jobs/nightly", "2026-12-04T03:00:00Z")
    assert first != tick_task_id("projects/p/locations/l/jobs/weekly", "2026-12-03T03:00:00Z")
    assert len(first) == 64 and set(first) <= set("0123456789abcdef")
