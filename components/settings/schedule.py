"""A pipeline's schedules: periodic ticks, each becoming one task in the pipeline's queue.

Checked here, like every other key: the cron expression by cronsim (a parser we did not
write) plus the extensions Cloud Scheduler refuses, the time zone against the IANA
database (zoneinfo, with tzdata as its fallback), the body as JSON within the task size
limit, and the schedule's name as part of a Cloud Scheduler job id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, Field, JsonValue

from ..task_size import MAX_TASK_BYTES
from ..ticks import TICK_PREFIX
from .validation import Settings, fail, matching

# A job's name is projects/P/locations/L/jobs/JOB_ID; "JOB_ID can contain only letters
# ([A-Za-z]), numbers ([0-9]), hyphens (-), or underscores (_). The maximum length is 500
# characters." (google.cloud.scheduler.v1.Job.name). The job id is PIPELINE_SCHEDULE
# (components.names.schedule_job): a pipeline name is at most 22 characters and has no `_`.
MAX_JOB_ID = 500
MAX_SCHEDULE_NAME = MAX_JOB_ID - 22 - 1
# Cloud Scheduler's cron format (scheduler/docs/configuring/cron-job-schedules): five
# unix-cron fields, ranges, steps, lists, month and weekday names, 7 for Sunday; "Cloud
# Scheduler doesn't support L to mean the last day of the month". cronsim also takes
# L and LW (last day, last weekday of the month) and 5L or 5#2 (last or nth weekday):
# refused here, or the stack would fail late, at the job's creation.
UNSUPPORTED_CRON = "L, LW or # (last day, last weekday, nth weekday)"
# The body travels whole in the job (at most 1 MB, google.cloud.scheduler.v1.Job: "The
# maximum allowed size for a job is 1MB") and in every tick's task (MAX_TASK_BYTES). A
# margin of ours, not Google's, keeps room in both for the rest: URL, headers, names.
ENVELOPE_BYTES = 16 * 1024
MAX_BODY_BYTES = MAX_TASK_BYTES - ENVELOPE_BYTES
DEFAULT_TIME_ZONE = "UTC"


def _cron(expression: str) -> str:
    # cronsim also takes a sixth (seconds) field: Cloud Scheduler takes exactly five.
    fields = expression.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        # Vixie cron's macros (@daily, @hourly, @reboot...): not in Cloud Scheduler's format.
        raise fail(
            f"{fields[0]} and the other @ macros are not supported: write the 5 unix-cron"
            " fields (minute hour day-of-month month day-of-week), e.g. '0 0 * * *' for daily"
        )
    if len(fields) != 5:
        raise fail(
            "must be a unix-cron schedule of 5 fields (minute hour day-of-month month"
            f" day-of-week), e.g. '0 3 * * *'; got {len(fields)} field(s)"
        )
    try:
        parsed = CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise fail(f"is not a valid unix-cron schedule: {exc}") from None
    # Judged on what cronsim parsed, not on the text: its extensions are the special
    # values of its day sets (a weekday with L or # is a tuple).
    if parsed.days & {CronSim.LAST, CronSim.LAST_WEEKDAY} or any(
        isinstance(day, tuple) for day in parsed.weekdays
    ):
        raise fail(f"uses {UNSUPPORTED_CRON}, which Cloud Scheduler does not support")
    return expression


def _time_zone(name: str) -> str:
    # ZoneInfo alone would also take a file path relative to the tz directory ("../x").
    if name not in available_timezones():
        raise fail(
            "must be an IANA time zone name such as 'UTC' or 'Europe/Berlin'"
            " (the tz database, as Cloud Scheduler takes it)"
        )
    return name


def body_text(body: JsonValue) -> str:
    """The body as the job sends it and the tick's task carries it: compact JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def body_bytes(body: JsonValue) -> bytes:
    return body_text(body).encode()


def _body(body: JsonValue) -> JsonValue:
    size = len(body_bytes(body))
    if size > MAX_BODY_BYTES:
        raise fail(
            f"is {size} bytes as JSON: at most {MAX_BODY_BYTES} (Cloud Tasks' task size of"
            f" {MAX_TASK_BYTES} bytes, less {ENVELOPE_BYTES} for the rest of the task)"
        )
    return body


def _path(path: str) -> str:
    if not path.startswith("/") or any(ch.isspace() or ch in "?#" for ch in path):
        raise fail("must be a URL path starting with '/', without spaces, '?' or '#'")
    # Ticks arrive there: a task at that path would read as a tick to the handler.
    if path == TICK_PREFIX or path.startswith(TICK_PREFIX + "/"):
        raise fail(f"must not start with {TICK_PREFIX} (reserved for the ticks themselves)")
    return path


ScheduleName = Annotated[
    str,
    matching(
        rf"[A-Za-z0-9_-]{{1,{MAX_SCHEDULE_NAME}}}",
        f"1..{MAX_SCHEDULE_NAME} letters, digits, '-' or '_' (it is part of the Cloud"
        " Scheduler job id PIPELINE_SCHEDULE, at most 500 of those characters)",
    ),
]
Cron = Annotated[str, AfterValidator(_cron)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
Body = Annotated[JsonValue, AfterValidator(_body)]
TaskPath = Annotated[str, AfterValidator(_path)]


class ScheduleSettings(Settings):
    """One Cloud Scheduler job: every tick becomes one task in the pipeline's queue."""

    cron: Cron
    """5 unix-cron fields (minute hour day-of-month month day-of-week: ranges, steps, lists,
    `JAN`..`DEC`, `SUN`..`SAT`, 7 = Sunday), parsed by cronsim; no seconds field, no
    `@daily`-style macros, no `L`, `LW` or `#` (Cloud Scheduler's "Cron job format")."""
    time_zone: TimeZone = Field(DEFAULT_TIME_ZONE, alias="timeZone")
    """A name of the IANA tz database, such as `Europe/Berlin`."""
    # None sends no body; anything else is sent as JSON (Content-Type application/json).
    body: Body = None
    """Any JSON value sent as the task body, at most 983,616 bytes as compact JSON (Cloud Tasks' 1
    MB task less 16 KiB for the rest of the task and job); unset: no body."""
    path: TaskPath = "/"
    """The task's URL path; not under `/_tick` (where ticks arrive)."""
    paused: bool = False
    """`true` keeps the job, paused."""

    def runs(self, after: datetime) -> Iterator[datetime]:
        """Every tick time after AFTER (timezone-aware), in the schedule's zone: the plan
        shows the next few, the local loop fires them. cronsim follows Debian cron across
        DST changes; Cloud Scheduler's own DST rule is not published as code."""
        return iter(CronSim(self.cron, after.astimezone(ZoneInfo(self.time_zone))))

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        return list(islice(self.runs(after), count))
