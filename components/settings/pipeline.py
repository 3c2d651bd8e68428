"""One queue -> service pipeline: where it runs, its deadline, and who may enqueue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..durations import MAX_DISPATCH_DEADLINE, MIN_DISPATCH_DEADLINE, Duration
from ..name_rules import pipeline_problems
from .alerts import PipelineAlerts
from .payloads import PayloadSettings
from .queue import MAX_CONCURRENT_DISPATCHES, QueueSettings
from .schedule import ScheduleName, ScheduleSettings
from .service import ServiceSettings
from .validation import (
    Problem,
    Settings,
    duration_within,
    fail,
    known,
    matching,
)

DEFAULT_DISPATCH_DEADLINE = Duration.of_seconds(600)
# Service-account ids are 6..30 chars; "-invoker"/"-runtime"/"-ticker" are appended to the
# pipeline name.
MAX_PIPELINE_NAME = 22
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
MEMBER_PREFIXES = ("serviceAccount", "user", "group", "principal", "principalSet")


def iam_member(may: str) -> AfterValidator:
    """An IAM member from config, never a public one; MAY says what it would be allowed."""

    def check(member: str) -> str:
        if member in PUBLIC_MEMBERS:
            raise fail(f"public members (allUsers, allAuthenticatedUsers) may not {may}")
        if not re.fullmatch(rf"(?:{'|'.join(MEMBER_PREFIXES)}):\S+", member):
            raise fail(
                "must be an IAM member such as"
                " 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com'"
                f" (prefixes: {', '.join(MEMBER_PREFIXES)})"
            )
        return member

    return AfterValidator(check)


def _google_accepts(name: str) -> str:
    """Every id Google will see for this pipeline follows Google's rule for it."""
    problems = pipeline_problems(name)
    if problems:
        raise fail("; ".join(problems))
    return name


PipelineName = Annotated[
    str,
    matching(
        rf"[a-z](?:[a-z0-9-]{{0,{MAX_PIPELINE_NAME - 2}}}[a-z0-9])?",
        f"1..{MAX_PIPELINE_NAME} lowercase letters, digits and hyphens, starting with a letter"
        " and not ending with a hyphen",
    ),
    AfterValidator(_google_accepts),
]
Region = Annotated[
    str,
    matching(r"[a-z]+-[a-z]+[0-9]+", "a region such as 'us-central1' (not a zone or multi-region)"),
]
Enqueuer = Annotated[str, iam_member("enqueue tasks")]
Replayer = Annotated[str, iam_member("replay dead letters")]


class PipelineSettings(Settings):
    """One queue -> service pipeline. After validation every default is resolved."""

    # Defaults to gcp:region (resolved by StackSettings); queue AND service live here.
    location: Region | None = None
    """Region of the pipeline's queue **and** service; defaults to `gcp:region`."""
    dispatch_deadline: Annotated[
        Duration, duration_within(MIN_DISPATCH_DEADLINE, MAX_DISPATCH_DEADLINE)
    ] = Field(DEFAULT_DISPATCH_DEADLINE, alias="dispatchDeadline")
    """How long Cloud Tasks waits for an answer per attempt: `15s`..`1800s` (Cloud Tasks HTTP
    limits)."""
    service: ServiceSettings
    """The pipeline's private Cloud Run service."""
    queue: QueueSettings = Field(default_factory=lambda: QueueSettings.model_validate({}))
    """Rate and retry limits of the pipeline's Cloud Tasks queue."""
    enqueuers: list[Enqueuer] = Field(default_factory=list)
    """IAM members allowed to create tasks (`serviceAccount:`, `user:`, `group:`, `principal:`,
    `principalSet:`); never `allUsers`/`allAuthenticatedUsers`."""
    # Who may pull this pipeline's dead letters and re-create them as tasks: they consume
    # from its dead-letter subscription and, like enqueuers, create tasks in its queue.
    replayers: list[Replayer] = Field(default_factory=list)
    """Same syntax and checks as `enqueuers`: may pull the pipeline's dead letters and re-create
    them as tasks."""
    alerts: PipelineAlerts = Field(default_factory=lambda: PipelineAlerts.model_validate({}))
    """The pipeline's alert policies (see Operations)."""
    # Periodic work: each schedule's ticks become tasks in this pipeline's queue.
    schedules: dict[ScheduleName, ScheduleSettings] = Field(default_factory=dict)
    """Periodic tasks, by schedule name: 1..477 of `A-Za-z0-9_-` (the job id `PIPELINE_NAME` is at
    most 500 such characters: Cloud Scheduler `Job.name`)."""
    # Bodies too big for a task go through a payload bucket (claim checks).
    payloads: PayloadSettings = Field(default_factory=lambda: PayloadSettings.model_validate({}))
    """Claim checks: bodies too big for a task go through a payload bucket."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        for key, members in (("enqueuers", view.enqueuers), ("replayers", view.replayers)):
            if known(members):
                for index, member in enumerate(members):
                    if member in members[:index]:
                        yield ((key, index), "is listed twice", member)
        service, queue, deadline = view.service, view.queue, view.dispatch_deadline
        if not known(service):
            return
        # A service that gives up first makes Cloud Tasks retry work that is still running.
        timeout = service.timeout
        if known(timeout, deadline) and timeout is not None and timeout < deadline:
            yield (
                ("service", "timeout"),
                f"must be >= dispatchDeadline ({deadline})",
                str(timeout),
            )
        if not known(queue):
            return
        dispatches = queue.max_concurrent_dispatches
        if known(service.max_instances, service.concurrency, dispatches) and dispatches:
            capacity = service.max_instances * service.concurrency
            if dispatches > capacity:
                yield (
                    ("queue", "maxConcurrentDispatches"),
                    f"must be <= service capacity maxInstances x concurrency ({capacity})",
                    dispatches,
                )

    def resolve(self) -> None:
        if self.service.timeout is None:
            self.service.timeout = self.dispatch_deadline
        if self.queue.max_concurrent_dispatches is None:
            self.queue.max_concurrent_dispatches = min(
                self.service.capacity, MAX_CONCURRENT_DISPATCHES
            )
        self.alerts.resolve_backlog(self.queue.max_dispatches_per_second)

    @property
    def task_creators(self) -> list[str]:
        """Everyone who creates tasks in the queue: enqueuers, then replayers not among them."""
        return list(dict.fromkeys([*self.enqueuers, *self.replayers]))

    @property
    def resolved_location(self) -> str:
        if self.location is None:
            raise RuntimeError("location is resolved by StackSettings validation")
        return self.location
