"""Typed, validated bootstrap config: one clear error naming each bad key, before any
resource is registered."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

NAMESPACE = "cloudrun-tasks-bootstrap"
# Short enough for "pulumi-previewer-<environment>" to fit a 30-character account id.
MAX_ENVIRONMENT = 13

ProjectId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
ProjectNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,20}$")]
Environment = Annotated[
    str, StringConstraints(pattern=rf"^[a-z][a-z0-9]{{1,{MAX_ENVIRONMENT - 1}}}$")
]
Repository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")]

# What each key accepts, in words, for the error message.
ALLOWED = {
    "gcp:project": "a project id (6..30 lowercase letters, digits, hyphens)",
    "projectNumber": "the project's number as a string of digits, e.g. '123456789012'",
    "environment": f"2..{MAX_ENVIRONMENT} lowercase letters and digits, e.g. 'dev', 'prod'",
    "githubRepository": "'OWNER/REPOSITORY' exactly as GitHub spells it",
    "location": "a region such as 'us-central1' (bucket and KMS key ring live there)",
    "stateBucket": "a bucket name: 3..63 lowercase letters, digits, '-' or '_'",
    "restrictToEnvironment": "true or false",
    "protect": "true or false",
    "stateVersionsKept": "a whole number from 1 to 1000",
    "buildsImages": "true or false",
    "imagePullers": "a list of project numbers as strings, e.g. ['210987654321']",
}


class BootstrapSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    project: ProjectId = Field(alias="gcp:project")
    project_number: ProjectNumber = Field(alias="projectNumber")
    environment: Environment
    github_repository: Repository = Field(alias="githubRepository")
    location: Region
    state_bucket: BucketName | None = Field(None, alias="stateBucket")
    """Defaults to '<project>-pulumi-<environment>'."""
    restrict_to_environment: bool | None = Field(None, alias="restrictToEnvironment")
    """Provider accepts only this environment's jobs; defaults to true for 'prod'."""
    protect: bool = True
    state_versions_kept: int = Field(100, alias="stateVersionsKept", ge=1, le=1000)
    builds_images: bool | None = Field(None, alias="buildsImages")
    """The handler image's registry and pusher live here; defaults to true for 'dev'."""
    image_pullers: list[ProjectNumber] = Field(default_factory=list, alias="imagePullers")
    """Projects (by number) whose Cloud Run may pull the handler image (staging, prod)."""

    @property
    def builds(self) -> bool:
        return self.environment == "dev" if self.builds_images is None else self.builds_images

    @property
    def bucket(self) -> str:
        return self.state_bucket or f"{self.project}-pulumi-{self.environment}"

    @property
    def restricted(self) -> bool:
        if self.restrict_to_environment is None:
            return self.environment == "prod"
        return self.restrict_to_environment


class ConfigError(pulumi.RunError):
    """Bad bootstrap config; Pulumi prints a RunError's message without a traceback."""


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "missing":
        return f"{key}: is required ({ALLOWED.get(key, 'see docs/gitops.md')})"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; allowed keys: {', '.join(ALLOWED)}"
    given = json.dumps(error.get("input"))
    allowed = ALLOWED.get(key, ALLOWED.get(key.split(".")[0], error["msg"]))
    return f"{key}: must be {allowed}, got {given}"


def parse_settings(raw: dict[str, Any]) -> BootstrapSettings:
    try:
        settings = BootstrapSettings.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors()]
        raise ConfigError(
            "invalid bootstrap config:\n" + "\n".join(f"  {p}" for p in problems)
        ) from None
    if settings.state_bucket is None and len(settings.bucket) > 63:
        raise ConfigError(
            f"invalid bootstrap config:\n  stateBucket: the default '{settings.bucket}' is"
            " longer than 63 characters; set stateBucket explicitly"
        )
    return settings


def load_settings() -> BootstrapSettings:
    """The stack's config as the admin typed it, unknown keys included (to reject typos)."""
    from pulumi.runtime import config as runtime_config

    everything = {**(runtime_config.get_config_env() or {}), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    project = runtime_config.get_config("gcp:project")
    if project is not None:
        raw["gcp:project"] = project
    prefix = f"{NAMESPACE}:"
    for key, value in everything.items():
        if key.startswith(prefix):
            name = key.removeprefix(prefix)
            raw[name] = _decode(name, value) if isinstance(value, str) else value
    return parse_settings(raw)


def _decode(key: str, value: str) -> Any:
    """Booleans and numbers come as JSON text; strings stay strings ('0123' is a string)."""
    if key in (
        "restrictToEnvironment",
        "protect",
        "stateVersionsKept",
        "buildsImages",
        "imagePullers",
    ):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
