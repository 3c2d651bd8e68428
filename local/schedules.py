"""The stack's schedules on this machine: each fires at its cron times, as Cloud Scheduler
would, against the local handler.

A tick here is what Cloud Scheduler sends in the cloud: a POST to the handler's tick
endpoint with the job's name, the tick's schedule time, the pipeline's queue and the
schedule's body (components/schedule.py sets the same on the job). The handler turns it
into the task it would create in the cloud (handler/ticks.py), in the emulator's queue.
Run times come from the same cronsim the settings validate with and the plan prints.
"""

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from components.settings.schedule import body_bytes
from handler.tick_wire import (
    JOB_HEADER,
    QUEUE_HEADER,
    SCHEDULE_TIME_HEADER,
    TICK_PREFIX,
    schedule_time,
)
from local.stack_config import LocalPipeline

# How long one tick may take to be answered: the job's attempt deadline (components/schedule.py).
TICK_TIMEOUT_S = 60.0
# Cloud Scheduler's retry of a tick the handler did not take (components/schedule.py: 5
# retries, backoff doubling from 10 s up to 300 s), shortened to the first and longest wait
# here: locally a tick is retried as long as the loop runs, so none is lost while the
# handler restarts or its emulator catches up.
RETRY_BACKOFF_S = (1.0, 30.0)
# The handler's answers that settle a tick: its task exists.
TAKEN = ("ticked", "duplicate")


@dataclass(frozen=True)
class Fired:
    pipeline: str
    schedule: str
    when: datetime
    status: str
    """The handler's answer (ticked, duplicate...), or the error that kept it from one."""

    def line(self) -> str:
        return f"tick {self.pipeline}.{self.schedule} at {schedule_time(self.when)}: {self.status}"


def tick(handler_url: str, pipeline: LocalPipeline, schedule: str, when: datetime) -> Fired:
    """One tick of SCHEDULE at WHEN, pushed as Cloud Scheduler pushes it."""
    s = pipeline.schedules[schedule]
    headers = {
        JOB_HEADER: pipeline.job(schedule),
        SCHEDULE_TIME_HEADER: schedule_time(when),
        QUEUE_HEADER: pipeline.queue,
    }
    body = b""
    if s.body is not None:
        headers["Content-Type"] = "application/json"
        body = body_bytes(s.body)
    request = urllib.request.Request(
        handler_url.rstrip("/") + TICK_PREFIX + s.path, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TICK_TIMEOUT_S) as response:
            status = str(json.loads(response.read()).get("status"))
    except urllib.error.HTTPError as exc:
        status = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        status = f"failed: {exc}"
    return Fired(pipeline.name, schedule, when, status)


def tick_until_taken(
    handler_url: str,
    pipeline: LocalPipeline,
    schedule: str,
    when: datetime,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    """Pushes the tick again, with backoff, until the handler takes it or STOP is set; every
    attempt's answer is said."""
    backoff = RETRY_BACKOFF_S[0]
    while True:
        fired = tick(handler_url, pipeline, schedule, when)
        taken = fired.status in TAKEN
        say(fired.line() + ("" if taken else f" (retried in {backoff:g} s)"))
        if taken or stop.wait(backoff):
            return
        backoff = min(backoff * 2, RETRY_BACKOFF_S[1])


def _next(pipelines: list[LocalPipeline], after: datetime) -> Iterator[tuple[datetime, str, str]]:
    for p in pipelines:
        for name, s in p.schedules.items():
            if not s.paused:
                yield next(s.runs(after)), p.name, name


def run(
    handler_urls: Mapping[str, str],
    pipelines: list[LocalPipeline],
    stop: threading.Event,
    say: Callable[[str], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    tick_now: list[tuple[str, str]] | None = None,
) -> None:
    """Fires the TICK_NOW schedules (PIPELINE, SCHEDULE) at once, then every unpaused
    schedule at its times, each at its pipeline's handler (HANDLER_URLS by pipeline name),
    until STOP is set; a tick the handler does not take is retried
    meanwhile (its own thread), as Cloud Scheduler retries it."""
    by_name = {p.name: p for p in pipelines}
    after = now()
    retrying: list[threading.Thread] = []

    def fire(pipeline: str, schedule: str, when: datetime) -> None:
        thread = threading.Thread(
            target=tick_until_taken,
            args=(handler_urls[pipeline], by_name[pipeline], schedule, when, stop, say),
            name=f"tick-{pipeline}.{schedule}",
            daemon=True,
        )
        thread.start()
        retrying.append(thread)

    try:
        for pipeline, schedule in tick_now or []:
            fire(pipeline, schedule, after.replace(microsecond=0))
        while not stop.is_set():
            upcoming = sorted(_next(pipelines, after))
            if not upcoming:
                return
            when = upcoming[0][0]
            if stop.wait(max(0.0, (when - now()).total_seconds())):
                return
            for due, pipeline, schedule in upcoming:
                if due == when:
                    fire(pipeline, schedule, due)
            retrying = [t for t in retrying if t.is_alive()]
            after = when
    finally:
        for thread in retrying:
            thread.join(TICK_TIMEOUT_S)


def parse_names(values: list[str], pipelines: list[LocalPipeline]) -> list[tuple[str, str]]:
    """PIPELINE.SCHEDULE arguments of --tick-now, each naming a schedule of the stack."""
    known = {(p.name, s) for p in pipelines for s in p.schedules}
    chosen = []
    for value in values:
        pipeline, dot, schedule = value.partition(".")
        if not dot or (pipeline, schedule) not in known:
            names = ", ".join(sorted(f"{p}.{s}" for p, s in known)) or "none"
            raise ValueError(
                f"--tick-now: {value!r} is not PIPELINE.SCHEDULE of this stack ({names})"
            )
        chosen.append((pipeline, schedule))
    return chosen
