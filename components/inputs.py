"""What a consumer passes to the package's components: plain data, as TypedDicts.

TypedDicts because the component provider's analyzer reads them (class-style args are not
supported, pulumi/pulumi#18526): the same types are the Python route's typed args and the
schema other languages get. Field docstrings become the schema's descriptions.

Keys are snake_case here and camelCase in the schema and in stack files; `validate` turns
them into the settings models of components/settings/, so a component built directly gets
exactly the checks a stack file gets, and the same error lines.

No `from __future__ import annotations`: the analyzer reads annotations as objects.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NotRequired, TypedDict, TypeVar

import pulumi
from pydantic import Field

from .settings.stack import LabelKey, LabelValue, ProjectId, label_count_problems
from .settings.validation import ConfigError, Problem, Settings, nested, validated

M = TypeVar("M", bound=Settings)


class StartupProbeInputs(TypedDict):
    """When the app counts as started (`service.app.startupProbe`)."""

    path: NotRequired[str]
    """HTTP GET path such as /healthz; unset: a TCP connection to the app's port."""
    initial_delay_seconds: NotRequired[int]
    """0..240 (default 0)."""
    period_seconds: NotRequired[int]
    """1..240, at least timeoutSeconds (default 1)."""
    timeout_seconds: NotRequired[int]
    """1..3600, at most periodSeconds (default 1)."""
    failure_threshold: NotRequired[int]
    """>= 1, times periodSeconds at most 240 s (default 60)."""


class AppInputs(TypedDict):
    """The team's own container behind the handler (`service.app`), in any language."""

    image: pulumi.Input[str]
    """Container image, REGISTRY/PATH[:TAG][@sha256:DIGEST]; an Output too."""
    port: NotRequired[int]
    """Where the app listens on localhost, 1..65535, not 8080 (default 8081)."""
    cpu: NotRequired[str]
    """vCPUs as service.cpu; with the handler's at most 8 (default "1")."""
    memory: NotRequired[str]
    """Memory as service.memory; with the handler's at most 32Gi (default 512Mi)."""
    env: NotRequired[dict[str, str]]
    """The app's environment variables (plain text in state), not PORT nor K_*."""
    secrets: NotRequired[dict[str, str]]
    """ENV: "SECRET:VERSION" from Secret Manager in the same project."""
    startup_probe: NotRequired[StartupProbeInputs]
    """Default: TCP on port, every second, 60 tries."""
    local_command: NotRequired[list[str]]
    """What `make local` runs instead of the image, from the repository's root."""


class ServiceInputs(TypedDict):
    """The pipeline's private Cloud Run service (README "Config reference", `service.*`)."""

    image: pulumi.Input[str]
    """Container image, REGISTRY/PATH[:TAG][@sha256:DIGEST]; an Output too, such as a
    built image's reference."""
    ingress: NotRequired[str]
    """internal (default), internal-and-cloud-load-balancing or all."""
    timeout: NotRequired[str]
    """Request timeout, a duration such as 900s; at least dispatchDeadline (its default)."""
    concurrency: NotRequired[int]
    """Requests per instance, 1..1000 (default 80)."""
    min_instances: NotRequired[int]
    """0..1000, at most maxInstances (default 0)."""
    max_instances: NotRequired[int]
    """1..1000 (default 10)."""
    cpu: NotRequired[str]
    """vCPUs: 0.08..1 or 1, 2, 4, 6, 8 (default "1")."""
    memory: NotRequired[str]
    """Memory such as 512Mi, within what the cpu allows (default 512Mi)."""
    env: NotRequired[dict[str, str]]
    """Environment variables (plain text in state)."""
    secrets: NotRequired[dict[str, str]]
    """ENV: "SECRET:VERSION" from Secret Manager in the same project."""
    app: NotRequired[AppInputs]
    """The team's container behind the handler, which forwards each task to it."""


class QueueInputs(TypedDict):
    """Rate and retry limits of the pipeline's Cloud Tasks queue (`queue.*`)."""

    max_dispatches_per_second: NotRequired[float]
    """> 0 and <= 500 (default 10)."""
    max_concurrent_dispatches: NotRequired[int]
    """1..5000, at most maxInstances x concurrency (the default, capped at 5000)."""
    max_attempts: NotRequired[int]
    """-1 (unlimited) or 1..2147483647 (default 20)."""
    max_retry_duration: NotRequired[str]
    """A duration; 0s = no time limit (default 3600s)."""
    min_backoff: NotRequired[str]
    """A duration (default 1s)."""
    max_backoff: NotRequired[str]
    """A duration, at least minBackoff (default 300s)."""
    max_doublings: NotRequired[int]
    """0..2147483647 (default 5)."""
    logging_sampling_ratio: NotRequired[float]
    """0..1 (default 1.0)."""
    paused: NotRequired[bool]
    """true pauses dispatch; tasks are still accepted (default false)."""


class BacklogAlertInputs(TypedDict):
    """The backlog alert: queue depth above a threshold."""

    threshold: NotRequired[int]
    """Tasks waiting; default ten minutes of work at maxDispatchesPerSecond."""
    duration: NotRequired[str]
    """How long above it, whole minutes 60s..24h (default 300s)."""


class FailingAttemptsAlertInputs(TypedDict):
    """The failing-attempts alert: share of non-OK attempts."""

    ratio: NotRequired[float]
    """In (0, 1] (default 0.1)."""
    window: NotRequired[str]
    """Whole minutes 60s..24h (default 600s)."""
    duration: NotRequired[str]
    """Whole minutes 60s..24h (default 300s)."""


class CapacityAlertInputs(TypedDict):
    """The capacity alert: at maxInstances, or too many 5xx."""

    duration: NotRequired[str]
    """At maxInstances this long, whole minutes 60s..24h (default 900s)."""
    error_ratio: NotRequired[float]
    """5xx share in (0, 1] (default 0.05)."""
    error_window: NotRequired[str]
    """Whole minutes 60s..24h (default 300s)."""


class ClaimsLostAlertInputs(TypedDict):
    """The claims-lost alert: a delivery lost its claim, so a task may have run twice."""

    window: NotRequired[str]
    """How long one lost claim keeps it firing, whole minutes 60s..24h (default 900s)."""


class AlertsInputs(TypedDict):
    """The pipeline's alert policies (`alerts.*`)."""

    enabled: NotRequired[bool]
    """false keeps the policies but disables them (default true)."""
    backlog: NotRequired[BacklogAlertInputs]
    """Backlog alert settings."""
    failing_attempts: NotRequired[FailingAttemptsAlertInputs]
    """Failing-attempts alert settings."""
    capacity: NotRequired[CapacityAlertInputs]
    """Capacity alert settings."""
    claims_lost: NotRequired[ClaimsLostAlertInputs]
    """Claims-lost alert settings."""


class ScheduleInputs(TypedDict):
    """One Cloud Scheduler job: every tick becomes one task in the pipeline's queue."""

    cron: str
    """5 unix-cron fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *";
    no seconds field, no L, LW or # (Cloud Scheduler takes none of them)."""
    time_zone: NotRequired[str]
    """A name of the IANA tz database, e.g. Europe/Berlin (default UTC)."""
    body: NotRequired[Any]
    """Any JSON value, sent as the tick's task body (application/json), at most 983616
    bytes as compact JSON; none: no body."""
    path: NotRequired[str]
    """URL path of the tick's task, starting with "/", not under /_tick (default "/")."""
    paused: NotRequired[bool]
    """true keeps the job, paused (default false)."""


class PayloadInputs(TypedDict):
    """Claim checks: bodies too big for a task go through a payload bucket (`payloads.*`)."""

    enabled: NotRequired[bool]
    """true gives the pipeline a payload bucket (default false)."""
    threshold: NotRequired[int]
    """Offload bodies over this many bytes, 1..1000000 (needs enabled); default: only
    when the task would not fit 1 MB with its headers."""


class PipelineInputs(TypedDict):
    """One queue -> service pipeline, as a stack file's `cloudrun-tasks:pipelines.NAME`."""

    service: ServiceInputs
    """The Cloud Run service."""
    location: NotRequired[str]
    """Region of the queue and the service; defaults to the stack's gcp:region."""
    dispatch_deadline: NotRequired[str]
    """15s..1800s (default 600s); the service's timeout must be at least this."""
    queue: NotRequired[QueueInputs]
    """The Cloud Tasks queue."""
    enqueuers: NotRequired[Sequence[pulumi.Input[str]]]
    """IAM members that may create tasks (serviceAccount:, user:, group:, principal:...),
    Outputs too (e.g. an account's `member`): a member from an Output is granted by its
    place in the list (reordering replaces its grants) and must be listed once."""
    replayers: NotRequired[Sequence[pulumi.Input[str]]]
    """IAM members that may replay the pipeline's dead letters; Outputs as enqueuers."""
    alerts: NotRequired[AlertsInputs]
    """Alert policy settings."""
    schedules: NotRequired[dict[str, ScheduleInputs]]
    """Periodic work, by schedule name (1..477 of A-Za-z0-9_-): each tick becomes a task
    in this pipeline's queue. Needs TaskPipeline.cloudschedulerAgentMember."""
    payloads: NotRequired[PayloadInputs]
    """Claim checks for big bodies."""


def config_keys(model: type[Settings], values: Mapping[str, Any]) -> dict[str, Any]:
    """VALUES with each field's Python name spelled as its stack-file key (its alias),
    nested settings too; map keys (env names, labels) and unknown keys stay as given, so
    an unknown key is reported by the model like a stack file's."""
    keys: dict[str, Any] = {}
    for key, value in values.items():
        field = model.model_fields.get(key)
        if field is None:
            keys[key] = value
            continue
        inner, mapped = nested(field.annotation)
        if inner is not None and isinstance(value, Mapping):
            value = (
                {
                    k: config_keys(inner, v) if isinstance(v, Mapping) else v
                    for k, v in value.items()
                }
                if mapped
                else config_keys(inner, value)
            )
        keys[field.alias or key] = value
    return keys


class CommonArgs(Settings):
    """Args several components take, checked as a stack's gcp:project and labels are."""

    project: ProjectId
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        yield from label_count_problems(view.labels)


def validate(
    model: type[M],
    values: Mapping[str, Any],
    what: str,
    prefix: str,
    common: Mapping[str, Any] | None = None,
) -> M:
    """VALUES checked as MODEL is in a stack file, and COMMON (project, labels) as CommonArgs:
    every problem at once, one line each, named by its key under PREFIX (the arg it came
    in), in a ConfigError saying WHAT."""
    problems: list[str] = []
    try:
        if common is not None:
            validated(CommonArgs, common)
    except ConfigError as error:
        problems += [f"args.{line}" for line in error.problems]
    settings: M | None = None
    try:
        settings = validated(model, config_keys(model, values))
    except ConfigError as error:
        problems += [f"{prefix}.{line}" for line in error.problems]
    if problems or settings is None:
        raise ArgsError(what, sorted(problems))
    return settings


def required(what: str, args: Mapping[str, Any], *keys: str) -> None:
    """Every one of KEYS given, or an ArgsError naming each missing one."""
    missing = [f"args.{camel(key)}: required" for key in keys if args.get(key) is None]
    if missing:
        raise ArgsError(what, missing)


def camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


class ArgsError(ConfigError):
    """Invalid args given to a component directly; printed without a traceback."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
        pulumi.RunError.__init__(
            self, f"invalid args of {what} ({count}):\n" + "\n".join(f"  {p}" for p in problems)
        )


def pipeline_inputs(settings: Settings) -> PipelineInputs:
    """Validated settings back as a component's args (a stack-file program's pipelines)."""
    return settings.model_dump(exclude_none=True)  # type: ignore[return-value]
