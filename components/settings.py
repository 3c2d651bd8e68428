"""Typed stack settings: every config key is declared, defaulted and validated here.

The models mirror the stack config files key for key (camelCase aliases), so a
validation error's location is the key path the user typed. Cross-field rules
live beside the model that holds both fields and report on the field to change.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

NAMESPACE = "cloudrun-tasks"

# Cloud Tasks HTTP targets: dispatchDeadline is 15 s..30 min.
MIN_DISPATCH_DEADLINE = 15
MAX_DISPATCH_DEADLINE = 1800
# Cloud Run request timeout: at most 60 min.
MAX_REQUEST_TIMEOUT = 3600
# Cloud Tasks RateLimits.
MAX_DISPATCHES_PER_SECOND = 500
MAX_CONCURRENT_DISPATCHES = 5000
# Service-account ids are 6..30 chars; "-invoker"/"-runtime" are appended to the pipeline name.
MAX_PIPELINE_NAME = 22
# Set by Cloud Run, or by TaskService from the queue's settings (the handler's last-attempt check).
RESERVED_ENV = frozenset(
    {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "TASK_MAX_ATTEMPTS"}
)
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", "{message}", {"message": message})


# --- durations -----------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _parse_duration(value: Any) -> float:
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise _fail("must be a duration such as '600s', '10m' or '1h'")


def format_duration(seconds: float) -> str:
    """Google duration string, the form Cloud Tasks and Cloud Run expect: 600.0 -> '600s'."""
    return f"{seconds:g}s"


def _seconds_within(low: float, high: float | None = None) -> AfterValidator:
    allowed = f">= {format_duration(low)}" + (
        f" and <= {format_duration(high)}" if high is not None else ""
    )

    def check(seconds: float) -> float:
        if seconds < low or (high is not None and seconds > high):
            raise _fail(f"must be {allowed}")
        return seconds

    return AfterValidator(check)


Seconds = Annotated[float, BeforeValidator(_parse_duration)]


# --- bounded numbers and patterns --------------------------------------------------


def _within(low: float, high: float, *, low_open: bool = False) -> AfterValidator:
    allowed = f"{'>' if low_open else '>='} {low:g} and <= {high:g}"

    def check(value: float) -> float:
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            raise _fail(f"must be {allowed}")
        return value

    return AfterValidator(check)


def _matching(pattern: str, allowed: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _fail(f"must be {allowed}")
        return value

    return AfterValidator(check)


def _enqueuer(member: str) -> str:
    if member in PUBLIC_MEMBERS:
        raise _fail("public members (allUsers, allAuthenticatedUsers) may not enqueue tasks")
    if not re.fullmatch(r"(serviceAccount|user|group|principal|principalSet):\S+", member):
        raise _fail(
            "must be an IAM member such as 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com'"
            " (prefixes: serviceAccount, user, group, principal, principalSet)"
        )
    return member


PipelineName = Annotated[
    str,
    _matching(
        rf"[a-z](?:[a-z0-9-]{{0,{MAX_PIPELINE_NAME - 2}}}[a-z0-9])?",
        f"1..{MAX_PIPELINE_NAME} lowercase letters, digits and hyphens, starting with a letter"
        " and not ending with a hyphen",
    ),
]
Region = Annotated[
    str,
    _matching(
        r"[a-z]+-[a-z]+[0-9]+", "a region such as 'us-central1' (not a zone or multi-region)"
    ),
]
EnvName = Annotated[
    str,
    _matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
]
LabelKey = Annotated[
    str, _matching(r"[a-z][a-z0-9_-]{0,62}", "a label key ([a-z][a-z0-9_-]{0,62})")
]
LabelValue = Annotated[str, _matching(r"[a-z0-9_-]{0,63}", "a label value ([a-z0-9_-]{0,63})")]
Enqueuer = Annotated[str, AfterValidator(_enqueuer)]


class _Model(BaseModel):
    # strict: no silent coercion of "10" to 10 or "true" to True in stack files.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


def _errors(title: str, problems: list[tuple[tuple[str | int, ...], str, Any]]) -> ValidationError:
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=_fail(message), loc=loc, input=value)
            for loc, message, value in problems
        ],
    )


# --- the models ----------------------------------------------------------------


class ServiceSettings(_Model):
    """The Cloud Run service that handles the pipeline's tasks."""

    image: Annotated[str, _matching(r"\S+", "a container image reference without spaces")]
    ingress: Literal["internal", "internal-and-cloud-load-balancing", "all"] = "internal"
    # Defaults to the pipeline's dispatchDeadline (resolved by PipelineSettings).
    timeout: Annotated[Seconds, _seconds_within(1, MAX_REQUEST_TIMEOUT)] | None = None
    concurrency: Annotated[int, _within(1, 1000)] = 80
    min_instances: Annotated[int, _within(0, 1000)] = Field(0, alias="minInstances")
    max_instances: Annotated[int, _within(1, 1000)] = Field(10, alias="maxInstances")
    cpu: Literal["1", "2", "4", "6", "8"] = "1"
    memory: Annotated[
        str, _matching(r"(?:[1-9][0-9]*Mi|[1-9][0-9]?Gi)", "a size such as '512Mi' or '2Gi'")
    ] = "512Mi"
    env: dict[EnvName, str] = Field(default_factory=dict)
    secrets: dict[
        EnvName,
        Annotated[
            str,
            _matching(
                r"[A-Za-z0-9_-]{1,255}:(?:latest|[1-9][0-9]*)",
                "'SECRET:VERSION' with VERSION 'latest' or a number, e.g. 'api-key:latest'",
            ),
        ],
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        if self.min_instances > self.max_instances:
            problems.append(
                (
                    ("minInstances",),
                    f"must be <= maxInstances ({self.max_instances})",
                    self.min_instances,
                )
            )
        for section, names in (("env", self.env), ("secrets", self.secrets)):
            for name in sorted(RESERVED_ENV.intersection(names)):
                problems.append(
                    (
                        (section, name),
                        "is set by Cloud Run or by the pipeline and may not be overridden",
                        name,
                    )
                )
        for name in sorted(set(self.env).intersection(self.secrets)):
            problems.append((("secrets", name), "is also set in env: pick one", name))
        if problems:
            raise _errors("ServiceSettings", problems)
        return self

    @property
    def resolved_timeout(self) -> float:
        if self.timeout is None:
            raise RuntimeError("timeout is resolved by PipelineSettings validation")
        return self.timeout

    @property
    def capacity(self) -> int:
        """Requests the service can take at once at full scale."""
        return self.max_instances * self.concurrency


class QueueSettings(_Model):
    """Rate and retry limits of the pipeline's Cloud Tasks queue."""

    max_dispatches_per_second: Annotated[
        float, _within(0, MAX_DISPATCHES_PER_SECOND, low_open=True)
    ] = Field(10.0, alias="maxDispatchesPerSecond")
    # Defaults to the service's capacity, capped at 5000 (resolved by PipelineSettings).
    max_concurrent_dispatches: Annotated[int, _within(1, MAX_CONCURRENT_DISPATCHES)] | None = Field(
        None, alias="maxConcurrentDispatches"
    )
    max_attempts: int = Field(20, alias="maxAttempts")
    # 0s means no time limit: retries then stop on maxAttempts alone.
    max_retry_duration: Annotated[Seconds, _seconds_within(0)] = Field(
        3600.0, alias="maxRetryDuration"
    )
    min_backoff: Annotated[Seconds, _seconds_within(0)] = Field(1.0, alias="minBackoff")
    max_backoff: Annotated[Seconds, _seconds_within(0)] = Field(300.0, alias="maxBackoff")
    max_doublings: Annotated[int, _within(0, 100)] = Field(5, alias="maxDoublings")
    logging_sampling_ratio: Annotated[float, _within(0, 1)] = Field(
        1.0, alias="loggingSamplingRatio"
    )
    paused: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> QueueSettings:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        if self.max_attempts == 0 or self.max_attempts < -1:
            problems.append((("maxAttempts",), "must be -1 (unlimited) or >= 1", self.max_attempts))
        elif self.max_attempts == -1 and self.max_retry_duration == 0:
            problems.append(
                (
                    ("maxAttempts",),
                    "-1 (unlimited) needs a maxRetryDuration above 0s,"
                    " or a failing task is retried forever",
                    self.max_attempts,
                )
            )
        if self.max_backoff < self.min_backoff:
            problems.append(
                (
                    ("maxBackoff",),
                    f"must be >= minBackoff ({format_duration(self.min_backoff)})",
                    format_duration(self.max_backoff),
                )
            )
        if problems:
            raise _errors("QueueSettings", problems)
        return self


class PipelineSettings(_Model):
    """One queue -> service pipeline. After validation every default is resolved."""

    # Defaults to gcp:region (resolved by StackSettings); queue AND service live here.
    location: Region | None = None
    dispatch_deadline: Annotated[
        Seconds, _seconds_within(MIN_DISPATCH_DEADLINE, MAX_DISPATCH_DEADLINE)
    ] = Field(600.0, alias="dispatchDeadline")
    service: ServiceSettings
    queue: QueueSettings = Field(default_factory=lambda: QueueSettings.model_validate({}))
    enqueuers: list[Enqueuer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSettings:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        deadline = format_duration(self.dispatch_deadline)
        if self.service.timeout is None:
            self.service.timeout = self.dispatch_deadline
        elif self.service.timeout < self.dispatch_deadline:
            # A service that gives up first makes Cloud Tasks retry work that is still running.
            problems.append(
                (
                    ("service", "timeout"),
                    f"must be >= dispatchDeadline ({deadline})",
                    format_duration(self.service.timeout),
                )
            )
        capacity = self.service.capacity
        if self.queue.max_concurrent_dispatches is None:
            self.queue.max_concurrent_dispatches = min(capacity, MAX_CONCURRENT_DISPATCHES)
        elif self.queue.max_concurrent_dispatches > capacity:
            problems.append(
                (
                    ("queue", "maxConcurrentDispatches"),
                    f"must be <= service capacity maxInstances x concurrency ({capacity})",
                    self.queue.max_concurrent_dispatches,
                )
            )
        for index, member in enumerate(self.enqueuers):
            if member in self.enqueuers[:index]:
                problems.append((("enqueuers", index), "is listed twice", member))
        if problems:
            raise _errors("PipelineSettings", problems)
        return self

    @property
    def resolved_location(self) -> str:
        if self.location is None:
            raise RuntimeError("location is resolved by StackSettings validation")
        return self.location


class StackSettings(_Model):
    """Everything a stack file configures for this project."""

    project: Annotated[
        str,
        _matching(
            r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
            "a project id (6..30 lowercase letters, digits, hyphens)",
        ),
    ] = Field(alias="gcp:project")
    region: Region | None = Field(None, alias="gcp:region")
    protect: bool = False
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    pipelines: dict[PipelineName, PipelineSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _locations(self) -> StackSettings:
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for name, pipeline in self.pipelines.items():
            if pipeline.location is None:
                if self.region is None:
                    problems.append(
                        (
                            ("pipelines", name, "location"),
                            "is required when gcp:region is not set",
                            None,
                        )
                    )
                pipeline.location = self.region
        if problems:
            raise _errors("StackSettings", problems)
        return self

    @property
    def uses_secrets(self) -> bool:
        return any(p.service.secrets for p in self.pipelines.values())


# --- turning config into settings, or into one clear error -----------------------


class ConfigError(pulumi.RunError):
    """Invalid stack config. Pulumi prints a RunError's message without a traceback."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"invalid stack config ({len(problems)} problem{'s' * (len(problems) != 1)}):\n"
            + "\n".join(f"  {p}" for p in problems)
        )


_TYPE_NAMES = {
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The settings model at a key path, so an unknown key's error can list the allowed ones."""
    model: Any = StackSettings
    parts = list(loc)
    while parts:
        key = parts.pop(0)
        field = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
        if field is None:
            return None
        model = field.annotation
        if typing.get_origin(model) is dict:
            if not parts:
                return None
            parts.pop(0)  # a map key, e.g. the pipeline name
            model = typing.get_args(model)[1]
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


def _allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items())


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(part for part in error["loc"] if part != "[key]")
    path = ".".join(str(part) for part in loc) or "config"
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        return f"{path}: is required"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed keys: {_allowed_keys(model)}" if model else ""
        return f"{path}: unknown key{allowed}"
    if kind in _TYPE_NAMES:
        return f"{path}: must be {_TYPE_NAMES[kind]}, got {json.dumps(given)}"
    if kind == "literal_error":
        return f"{path}: must be one of {error['ctx']['expected']}, got {json.dumps(given)}"
    if kind == "too_short" and path == "pipelines":
        return f"{path}: must declare at least one pipeline"
    message = error["msg"]
    got = f", got {json.dumps(given)}" if given is not None and kind == "invalid" else ""
    return f"{path}: {message}{got}"


def parse_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate a whole stack config at once; every problem becomes one line of a ConfigError."""
    try:
        return StackSettings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([_describe(e) for e in error.errors()]) from None


def _decode(value: str) -> Any:
    """Structured config arrives as JSON text; plain strings stay strings."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def raw_stack_config() -> dict[str, Any]:
    """This stack's config as the user wrote it: gcp:project, gcp:region and every project key."""
    from pulumi.runtime import config as runtime_config

    everything = {**(runtime_config.get_config_env() or {}), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for key in ("gcp:project", "gcp:region"):
        value = runtime_config.get_config(key)
        if value is not None:
            raw[key] = value
    prefix = f"{NAMESPACE}:"
    for key, value in everything.items():
        if key.startswith(prefix):
            raw[key.removeprefix(prefix)] = _decode(value) if isinstance(value, str) else value
    return raw


def load_settings() -> StackSettings:
    return parse_settings(raw_stack_config())
