"""Where a pipeline's queue, service URL and invoker account come from.

Always from what Pulumi created, never hand-typed: the stack output `pipelines`
(read with the Pulumi CLI, or from a JSON file of that output), or the same JSON in
the environment variable TASKS_PIPELINES for code running on Cloud Run.
"""

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from taskclient.errors import UsageError
from taskclient.shared import MAX_DISPATCH_DEADLINE, MIN_DISPATCH_DEADLINE, Duration

PIPELINES_ENV = "TASKS_PIPELINES"


def _deadline(value: Duration) -> Duration:
    if not MIN_DISPATCH_DEADLINE <= value <= MAX_DISPATCH_DEADLINE:
        raise ValueError(f"must be >= {MIN_DISPATCH_DEADLINE} and <= {MAX_DISPATCH_DEADLINE}")
    return value


class Schedule(BaseModel):
    """One schedule of a pipeline, as the stack output `pipelines.P.schedules.S` has it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job: str = Field(pattern=r"^projects/[^/]+/locations/[^/]+/jobs/[A-Za-z0-9_-]+$")
    path: str = Field("/", pattern=r"^/")
    body: str | None = None
    """The JSON body every tick sends, as text; None: no body."""


class Pipeline(BaseModel):
    """One entry of the stack output `pipelines` (camelCase keys, as Pulumi exports them)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    queue: str = Field(pattern=r"^projects/[^/]+/locations/[^/]+/queues/[^/]+$")
    queue_name: str
    location: str
    service_name: str
    service_url: str = Field(pattern=r"^https?://[^/?#]+$")
    invoker_service_account: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    runtime_service_account: str | None = None
    dispatch_deadline: Annotated[Duration, AfterValidator(_deadline)] = Duration.of_seconds(600)
    # Where the handler publishes dead letters and where `replay` pulls them from. Optional:
    # stacks deployed before dead letters went to Pub/Sub have neither.
    dead_letter_topic: str | None = Field(None, pattern=r"^projects/[^/]+/topics/[^/]+$")
    dead_letter_subscription: str | None = Field(
        None, pattern=r"^projects/[^/]+/subscriptions/[^/]+$"
    )
    firestore_database: str | None = None
    # What `taskclient tick` fires: absent for pipelines without schedules.
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    # Claim checks (taskclient/offload.py): the pipeline's payload bucket when payloads are
    # enabled, and the body size above which a body goes there (None: when the task would
    # not fit Cloud Tasks' size limit otherwise).
    payload_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
    payload_threshold: int | None = Field(None, ge=0)


def parse_pipelines(raw: object, *, source: str) -> dict[str, Pipeline]:
    """Validates the decoded `pipelines` map; errors name the source and the bad field."""
    if not isinstance(raw, Mapping) or not raw:
        raise UsageError(f"{source}: expected a non-empty JSON object of pipeline name -> outputs")
    pipelines: dict[str, Pipeline] = {}
    for name, value in raw.items():
        try:
            pipelines[str(name)] = Pipeline.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(entry)"
            raise UsageError(f"{source}: pipeline {name!r}, {field}: {first['msg']}") from None
    return pipelines


def _decode(text: str, *, source: str) -> dict[str, Pipeline]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_pipelines(raw, source=source)


def load_file(path: Path) -> dict[str, Pipeline]:
    """Reads a file written by `pulumi stack output pipelines --json > FILE`."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UsageError(f"--outputs: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--outputs: {path} is not UTF-8 (byte {exc.start})") from None
    return _decode(text, source=f"--outputs {path}")


def load_stack(stack: str) -> dict[str, Pipeline]:
    """Asks the Pulumi CLI for the stack output (needs `pulumi login` to the state backend)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError(
            f"--stack {stack}: the pulumi CLI is not on PATH; pass --outputs FILE "
            f"(from `pulumi stack output pipelines --json`) or set {PIPELINES_ENV}"
        )
    command = [pulumi, "stack", "output", "pipelines", "--json", "--stack", stack]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UsageError(
            f"--stack {stack}: `pulumi stack output` failed: {detail}; {_stacks(pulumi)}"
        )
    return _decode(result.stdout, source=f"--stack {stack}")


def _stacks(pulumi: str) -> str:
    """The stacks the current backend holds, for an error about a stack it does not."""
    listing = subprocess.run(
        [pulumi, "stack", "ls", "--json"], capture_output=True, text=True, check=False
    )
    try:
        names = sorted(str(entry["name"]) for entry in json.loads(listing.stdout))
    except (ValueError, TypeError, KeyError):
        return "`pulumi stack ls` did not list the stacks"
    return f"stacks: {', '.join(names) or 'none'}"


def load_env(environ: Mapping[str, str] = os.environ) -> dict[str, Pipeline]:
    """Reads TASKS_PIPELINES: the stack output's JSON, set on the enqueuing service."""
    text = environ.get(PIPELINES_ENV)
    if not text:
        raise UsageError(
            f"no pipelines: pass --stack NAME or --outputs FILE, or set {PIPELINES_ENV}"
        )
    return _decode(text, source=PIPELINES_ENV)


def select(pipelines: Mapping[str, Pipeline], name: str) -> Pipeline:
    """Returns one pipeline; the error lists the names that do exist."""
    try:
        return pipelines[name]
    except KeyError:
        known = ", ".join(sorted(pipelines)) or "none"
        raise UsageError(f"--pipeline: no pipeline {name!r}; this stack has: {known}") from None
