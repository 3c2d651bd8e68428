"""`taskclient tick`: fire one schedule by hand, as its Cloud Scheduler job would.

Creates the very task a tick at the given time becomes (handler/ticks.py builds it for
both): in the pipeline's queue, named from the job and the time, with the schedule's body
and path. Firing the same schedule at the same time twice creates one task; the queue's
retries, the handler's claim and dead letters apply as to any task. Needs what enqueuers
have: roles/cloudtasks.enqueuer on the queue.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from google.api_core.exceptions import AlreadyExists, GoogleAPICallError
from google.cloud import tasks_v2

from handler.tick_wire import schedule_time
from handler.ticks import tick_task
from taskclient import tracing
from taskclient.errors import EnqueueError, UsageError
from taskclient.pipelines import Pipeline


@dataclass(frozen=True)
class Fired:
    task_name: str
    created: bool
    """False: a task for this tick existed already (fired before)."""


def fire(client: tasks_v2.CloudTasksClient, pipeline: Pipeline, name: str, when: datetime) -> Fired:
    try:
        schedule = pipeline.schedules[name]
    except KeyError:
        known = ", ".join(sorted(pipeline.schedules)) or "none"
        raise UsageError(f"--schedule: no schedule {name!r}; this pipeline has: {known}") from None
    if when.tzinfo is None:
        raise UsageError("--at: needs a timezone, e.g. 2030-01-01T03:00:00Z")
    body = schedule.body.encode() if schedule.body is not None else b""
    task = tick_task(
        pipeline.queue,
        schedule.job,
        schedule_time(when),
        pipeline.service_url.rstrip("/") + schedule.path,
        body,
        "application/json" if schedule.body is not None else None,
        timedelta(seconds=pipeline.dispatch_deadline.seconds),
        # As every task the client makes: the current span's trace, else a new one.
        tracing.current() or tracing.new_trace(),
    )
    try:
        client.create_task(parent=pipeline.queue, task=task)
    except AlreadyExists:
        return Fired(task.name, created=False)
    except GoogleAPICallError as exc:
        raise EnqueueError(f"{task.name}: {exc}") from None
    return Fired(task.name, created=True)
