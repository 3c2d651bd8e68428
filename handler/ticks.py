"""Schedule ticks: Cloud Scheduler's push, turned into one task in the pipeline's own queue.

A tick (POST TICK_PREFIX + path, with Cloud Scheduler's job name and schedule time) is
not processed here: it becomes a task named from the job and the schedule time, created
in the queue the job names, at the path after the prefix, with the tick's body. That
task then comes back through the queue like any other (rate limits, retries, the claim,
dead letters, replay). Every delivery of one tick names the same task: Cloud Tasks
creates it once (ALREADY_EXISTS for the others, answered 200 here), and should it create
it again after its de-duplication window, the claim on the task's name (handler/app.py)
still runs it once.

The task is named from the job and the tick's instant (the schedule time parsed and
written one way, handler/tick_wire.py): `…Z`, `….000Z` and `+01:00` spellings of one instant
are one task. Only the service's own schedules tick (TASK_SCHEDULES, job id -> path): a tick
naming another job, or its job with another path, is refused.

Answers (Cloud Scheduler retries anything that isn't 2xx, up to the job's retryCount):
  200 ticked            the tick's task was created
  200 duplicate         it existed already: this tick was delivered before
  400 not_a_tick        no job name, schedule time that is an instant, or queue: not sent
                        by a schedule's job
  400 unknown_schedule  no schedule of this service has that job and path
  500 tick_failed       the task could not be created (the error is logged): retried
"""

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Protocol
from urllib.parse import unquote

from flask import Flask, Response, jsonify, request
from google.api_core.exceptions import AlreadyExists
from google.cloud import tasks_v2
from google.protobuf import duration_pb2

from handler.tick_wire import (
    JOB_HEADER,
    QUEUE_HEADER,
    SCHEDULE_TIME_HEADER,
    TICK_PREFIX,
    parse_schedule_time,
    schedule_time,
    tick_task_id,
)
from handler.tracing import trace_headers

logger = logging.getLogger("handler.ticks")

# Set by the local run and tests: the Cloud Tasks emulator's HOST:PORT (plain gRPC).
EMULATOR_ENV = "TASKS_EMULATOR_HOST"
_QUEUE = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/queues/[A-Za-z0-9-]+")
_JOB = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/jobs/[A-Za-z0-9_-]+")
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


class TaskCreator(Protocol):
    def create_task(self, *, parent: str, task: tasks_v2.Task) -> tasks_v2.Task: ...


def cloud_tasks() -> TaskCreator:
    """Cloud Tasks as the service's runtime account, or the emulator named by EMULATOR_ENV."""
    emulator = os.environ.get(EMULATOR_ENV)
    if emulator:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import (
            CloudTasksGrpcTransport,
        )

        channel = grpc.insecure_channel(emulator)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return tasks_v2.CloudTasksClient()


def tick_task(
    queue: str,
    job: str,
    schedule_time: str,
    url: str,
    body: bytes,
    content_type: str | None,
    dispatch_deadline: timedelta | None,
    trace: Mapping[str, str],
) -> tasks_v2.Task:
    """The one task a tick becomes. No OIDC token of its own: the pipeline's queue routes
    every task to its service with the invoker's token (uri_override, ALWAYS), so the
    creator needs no actAs on the invoker. `url` matters locally, where nothing rewrites it.
    `trace`: the tick request's valid trace context, so the task's delivery joins its trace."""
    deadline = None
    if dispatch_deadline is not None:
        seconds = int(dispatch_deadline.total_seconds())
        deadline = duration_pb2.Duration(seconds=seconds)
    return tasks_v2.Task(
        name=f"{queue}/tasks/{tick_task_id(job, schedule_time)}",
        http_request=tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=url,
            headers={**({"Content-Type": content_type} if content_type else {}), **trace},
            body=body,
        ),
        dispatch_deadline=deadline,
    )


def register_ticks(
    app: Flask,
    fallback: Callable[[str], tuple[Response, int]],
    *,
    tasks: Callable[[], TaskCreator] = cloud_tasks,
    dispatch_deadline: timedelta | None = None,
    schedules: Mapping[str, str] | None = None,
) -> None:
    """Adds the tick endpoint to APP. A request there that Cloud Tasks delivered (an
    enqueuer's task at a /_tick path) is a task like any other: FALLBACK handles it.
    `schedules`: job id -> task path of the service's schedules; None or empty: none, and
    every tick is refused."""
    client: list[TaskCreator] = []
    known = dict(schedules or {})

    def creator() -> TaskCreator:
        # Created on first tick, in the serving process (gRPC channels don't survive fork).
        if not client:
            client.append(tasks())
        return client[0]

    @app.route(TICK_PREFIX + "/", defaults={"path": ""}, methods=["POST"])
    @app.route(TICK_PREFIX + "/<path:path>", methods=["POST"])
    def tick(path: str) -> tuple[Response, int]:
        started = time.monotonic()
        if "X-CloudTasks-QueueName" in request.headers:
            return fallback(TICK_PREFIX.removeprefix("/") + "/" + path)
        job = request.headers.get(JOB_HEADER, "").strip()
        when = request.headers.get(SCHEDULE_TIME_HEADER, "").strip()
        queue = request.headers.get(QUEUE_HEADER, "").strip()
        line: dict[str, object] = {"job": job, "scheduleTime": when, "path": "/" + path}
        instant = parse_schedule_time(when)
        if not job or instant is None or not _QUEUE.fullmatch(queue):
            logger.warning({"message": "tick not_a_tick", "status": "not_a_tick", **line})
            return jsonify(status="not_a_tick"), 400
        # The job's full name or its id alone: either names one job of this project.
        job_id = job.rpartition("/jobs/")[2] if "/jobs/" in job else job
        if not _JOB.fullmatch(job) and not _JOB_ID.fullmatch(job_id):
            job_id = ""
        if known.get(job_id) != "/" + unquote(path):
            line["reason"] = (
                "no schedule of this service has that job and path"
                f" (its schedules: {', '.join(sorted(known)) or 'none'})"
            )
            logger.error({"message": "tick refused", "status": "unknown_schedule", **line})
            return jsonify(status="unknown_schedule"), 400
        task = tick_task(
            queue,
            job,
            schedule_time(instant),
            request.host_url.rstrip("/") + "/" + path,
            request.get_data(),
            request.headers.get("Content-Type"),
            dispatch_deadline,
            trace_headers({name.lower(): value for name, value in request.headers.items()}),
        )
        line["taskName"] = task.name.rsplit("/", 1)[-1]
        try:
            creator().create_task(parent=queue, task=task)
            status, code = "ticked", 200
        except AlreadyExists:
            status, code = "duplicate", 200
        except Exception as exc:
            status, code = "tick_failed", 500
            line["error"] = repr(exc)
        line["durationMs"] = round((time.monotonic() - started) * 1000, 1)
        level = logging.ERROR if code == 500 else logging.INFO
        logger.log(level, {"message": f"tick {status}", "status": f"tick_{status}", **line})
        return jsonify(status=status, task=task.name), code
