"""What a schedule's Cloud Scheduler job sends the handler, and what the handler makes of it.

Shared by the handler's tick endpoint (handler/ticks.py), the local loop
(local/schedules.py) and `taskclient tick`: no dependencies. The job's side
(components/schedule.py) takes TICK_PREFIX and QUEUE_HEADER from components/ticks.py, as
the installed components have no `handler`; tests/infra/test_schedules.py checks the jobs
against the values here.
"""

import hashlib
from datetime import UTC, datetime

# Ticks arrive at this prefix; the rest of the path is the path of the task they create.
TICK_PREFIX = "/_tick"
# The queue the tick's task goes to, set by the job. Not trusted for authority: the
# runtime account may create tasks in its own pipeline's queue only (cloudtasks.enqueuer
# on that queue), so a forged header names a queue it can't write to.
QUEUE_HEADER = "X-Tick-Queue"
# Set by Cloud Scheduler on every attempt (scheduler/docs/creating: "X-CloudScheduler",
# "X-CloudScheduler-JobName", "X-CloudScheduler-ScheduleTime"); a retry of a tick keeps
# its schedule time.
JOB_HEADER = "X-CloudScheduler-JobName"
SCHEDULE_TIME_HEADER = "X-CloudScheduler-ScheduleTime"


def tick_task_id(job: str, schedule_time: str) -> str:
    """The task id of one tick: every delivery of the same tick of the same job names the
    same task, so Cloud Tasks creates it once (ALREADY_EXISTS for the others). Hashed, as
    Cloud Tasks allows only [A-Za-z0-9_-] in ids and timestamp-like ids slow its index."""
    return hashlib.sha256(f"{job}\n{schedule_time}".encode()).hexdigest()


# The handler's setting naming the service's schedules: a JSON object of Cloud Scheduler
# job id -> the schedule's task path (components/pipeline.py, local/__main__.py set it).
SCHEDULES_ENV = "TASK_SCHEDULES"


def schedule_time(when: datetime) -> str:
    """One instant's one spelling, as the tick's task is named from it: RFC 3339 in UTC,
    `Z`, fractional seconds only when there are any (a cron time has none)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_schedule_time(raw: str) -> datetime | None:
    """X-CloudScheduler-ScheduleTime as an instant; None unless it is a date and time with
    a UTC offset (`Z`, `+01:00`): the same instant, however written, is the same tick."""
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if "T" not in raw.upper() or when.utcoffset() is None:
        return None
    return when
