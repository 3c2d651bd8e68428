"""Everything a stack file configures: project, region, protection, labels, pipelines."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr

from ..name_rules import LABEL_KEY, LABEL_VALUE, schedule_problems
from .alerts import StackAlerts
from .idempotency import (
    IdempotencySettings,
    database_for_stack,
    default_location,
    location_problem,
    retry_window,
)
from .pipeline import PipelineName, PipelineSettings, Region
from .validation import (
    INVALID,
    NAMESPACE,
    Problem,
    Settings,
    fail,
    known,
    matching,
)

# Label rules: components.name_rules (LABEL_KEY, LABEL_VALUE); at most 64 labels per
# resource (resource-manager/docs/creating-managing-labels#requirements).
MAX_LABELS = 64
# Labels the project sets on every service: `pipeline` (TaskPipeline) and the provider's
# attribution label (pulumi-gcp >= 8 adds goog-pulumi-provisioned to every labelled
# resource unless gcp:addPulumiAttributionLabel is false; it counts toward the 64).
PROJECT_LABELS = ("pipeline", "goog-pulumi-provisioned")


def _label_key(key: str) -> str:
    if LABEL_KEY.problem(key) is not None:
        raise fail(f"must be a label key: {LABEL_KEY.allowed}")
    if key in PROJECT_LABELS:
        raise fail(
            f"is set by the project itself (reserved label keys: {', '.join(PROJECT_LABELS)})"
        )
    return key


def _label_value(value: str) -> str:
    if LABEL_VALUE.problem(value) is not None:
        raise fail(f"must be a label value: {LABEL_VALUE.allowed}")
    return value


def label_count_problems(labels: Any) -> Iterator[Problem]:
    """Too many labels for Cloud Run once the project's own are added (LABELS rule)."""
    if labels is not INVALID and len(labels) > MAX_LABELS - len(PROJECT_LABELS):
        yield (
            ("labels",),
            f"has {len(labels)} labels: at most {MAX_LABELS - len(PROJECT_LABELS)}, since"
            f" Cloud Run takes {MAX_LABELS} and the project adds {', '.join(PROJECT_LABELS)}",
            None,
        )


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
ProjectId = Annotated[
    str,
    matching(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a project id (6..30 lowercase letters, digits, hyphens)"
    ),
]


class StackSettings(Settings):
    """Everything a stack file configures for this project."""

    project: ProjectId = Field(alias="gcp:project")
    """The project every resource is created in (`gcp:project`): 6..30 lowercase letters, digits
    and hyphens."""
    region: Region | None = Field(None, alias="gcp:region")
    """Default location of every pipeline (`gcp:region`), such as `us-central1`; required unless
    every pipeline sets `location`."""
    protect: bool = False
    """`true`: Pulumi `protect` on queues, services and the idempotency database, Cloud Run
    deletion protection and Firestore delete protection on (prod)."""
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """GCP labels on every resource that takes them (Google's syntax, international characters
    allowed); at most 62, as the project adds `pipeline: NAME` and the provider
    `goog-pulumi-provisioned` to every Cloud Run service, and those two keys are refused."""
    pipelines: dict[PipelineName, PipelineSettings] = Field(min_length=1)
    """At least one pipeline, by name: 1..22 of `a-z 0-9 -`, starting with a letter and not ending
    with a hyphen (`NAME-invoker`/`NAME-runtime` must fit a 30-character account id); every id
    Google will see for it follows its field's rule, so `google-ads` is refused (Pub/Sub ids
    must not start with `goog`)."""
    alerts: StackAlerts = Field(default_factory=lambda: StackAlerts.model_validate({}))
    """Where the stack's alerts go. A stack named `prod` (or `production`) must name a channel or
    an email."""
    idempotency: IdempotencySettings = Field(
        default_factory=lambda: IdempotencySettings.model_validate({})
    )
    """The stack's Firestore database for the handler's idempotency records."""
    _secret_keys: frozenset[str] = PrivateAttr(default=frozenset())
    _stack: str = PrivateAttr(default="")

    def mark_secret(self, keys: Collection[str]) -> None:
        """Record which config keys Pulumi holds as secrets (`pulumi config set --secret`)."""
        self._secret_keys = frozenset(keys)

    @property
    def secret_env(self) -> bool:
        """Whether env values are secrets. Pulumi marks a whole top-level key secret, also
        for `--secret --path pipelines.P.service.env.NAME`, so the program can't tell which
        value was hidden: every env value of every pipeline is then a secret."""
        return f"{NAMESPACE}:pipelines" in self._secret_keys

    @property
    def secret_labels(self) -> bool:
        return f"{NAMESPACE}:labels" in self._secret_keys

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        yield from label_count_problems(view.labels)
        if view.pipelines is INVALID:
            return
        if view.region is None:
            for name, pipeline in view.pipelines.items():
                if pipeline is not INVALID and pipeline.location is None:
                    yield (
                        ("pipelines", name, "location"),
                        "is required when gcp:region is not set",
                        None,
                    )
        if view.idempotency is not INVALID:
            yield from _idempotency_rules(view)
        yield from _schedule_text_rules(view)

    def resolve(self) -> None:
        for pipeline in self.pipelines.values():
            if pipeline.location is None:
                pipeline.location = self.region
            pipeline.resolve()
        if self.idempotency.location is None:
            self.idempotency.location = default_location(
                [p.resolved_location for p in self.pipelines.values()], self.region
            )

    def name_stack(self, stack: str) -> None:
        """Record the stack's name: the database id defaults to `tasks-<stack>`."""
        self._stack = stack

    @property
    def database_id(self) -> str:
        """The idempotency database's id: idempotency.database, or `tasks-<stack>`."""
        return self.idempotency.database or database_for_stack(self._stack)

    @property
    def database_location(self) -> str:
        if self.idempotency.location is None:
            raise RuntimeError("idempotency.location is resolved by StackSettings validation")
        return self.idempotency.location

    @property
    def uses_secrets(self) -> bool:
        return any(
            p.service.secrets or (p.service.app is not None and p.service.app.secrets)
            for p in self.pipelines.values()
        )

    @property
    def uses_schedules(self) -> bool:
        return any(p.schedules for p in self.pipelines.values())


def _schedule_text_rules(view: Any) -> Iterator[Problem]:
    """Texts made of a pipeline's and a schedule's names (job description, alert display
    name, condition, subject) within Google's limits (components.name_rules): each name
    passes its own rule, and together they may not."""
    for name, pipeline in sorted(view.pipelines.items()):
        if pipeline is INVALID or not known(pipeline.schedules):
            continue
        for schedule in sorted(pipeline.schedules):
            for problem in schedule_problems(name, schedule):
                yield (("pipelines", name, "schedules", schedule), problem, None)


def _idempotency_rules(view: Any) -> Iterator[Problem]:
    """The database's location suits the pipelines, and its records outlive every retry."""
    idempotency = view.idempotency
    pipelines = {n: p for n, p in view.pipelines.items() if p is not INVALID}
    regions = {
        name: p.location if p.location is not None else view.region
        for name, p in pipelines.items()
        if known(p.location) and (p.location is not None or known(view.region))
    }
    if (
        known(idempotency.location)
        and len(regions) == len(view.pipelines)
        and None not in regions.values()
    ):
        problem = location_problem(idempotency.location, regions, view.region)
        if problem is not None:
            yield (("idempotency", "location"), problem, idempotency.location)
    if not known(idempotency.ttl):
        return
    for name, p in sorted(pipelines.items()):
        queue = p.queue
        if not known(queue, p.dispatch_deadline):
            continue
        limits = (queue.max_attempts, queue.max_retry_duration, queue.max_backoff)
        if not known(*limits):
            continue
        window = retry_window(*limits, p.dispatch_deadline)
        if idempotency.ttl < window:
            yield (
                ("idempotency", "ttl"),
                f"must be >= {window}: pipeline {name!r} can redeliver a task that long after"
                " its first attempt (the longer of maxRetryDuration + dispatchDeadline and"
                " maxAttempts x dispatchDeadline + (maxAttempts - 1) x maxBackoff), and a"
                " record deleted before that lets a redelivery run twice",
                str(idempotency.ttl),
            )
