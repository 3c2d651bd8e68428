"""The pipelines of one stack, read from its Pulumi.<stack>.yaml, as the local loop needs them."""

from dataclasses import dataclass
from pathlib import Path

import yaml

# What the Pulumi program applies when a stack file leaves these out.
DEFAULT_DISPATCH_DEADLINE = "600s"
DEFAULT_MAX_ATTEMPTS = 20


class StackConfigError(ValueError):
    """The stack file is missing or unusable: the message names the file and the key."""


@dataclass(frozen=True)
class LocalPipeline:
    name: str
    project: str
    location: str
    dispatch_deadline: str
    max_attempts: int

    @property
    def queue(self) -> str:
        # Locally the queue is named after the pipeline; in the cloud Pulumi names it.
        return f"projects/{self.project}/locations/{self.location}/queues/{self.name}"


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise StackConfigError(f"{where}: expected a mapping")
    return {str(key): item for key, item in value.items()}


def read_stack(root: Path, stack: str) -> list[LocalPipeline]:
    project_file, stack_file = root / "Pulumi.yaml", root / f"Pulumi.{stack}.yaml"
    try:
        project = _mapping(yaml.safe_load(project_file.read_text(encoding="utf-8")), "Pulumi.yaml")
        config = _mapping(yaml.safe_load(stack_file.read_text(encoding="utf-8")), stack_file.name)
    except OSError as exc:
        raise StackConfigError(
            f"--stack {stack}: cannot read {exc.filename}: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise StackConfigError(f"--stack {stack}: not valid YAML: {exc}") from None
    values = _mapping(config.get("config", {}), f"{stack_file.name}: config")
    namespace = project.get("name")
    gcp_project, region = values.get("gcp:project"), values.get("gcp:region")
    if not isinstance(gcp_project, str) or not isinstance(region, str):
        raise StackConfigError(f"{stack_file.name}: gcp:project and gcp:region must be set")
    where = f"{stack_file.name}: {namespace}:pipelines"
    pipelines = _mapping(values.get(f"{namespace}:pipelines"), where)
    if not pipelines:
        raise StackConfigError(f"{where}: no pipelines declared")
    found: list[LocalPipeline] = []
    for name, raw in pipelines.items():
        settings = _mapping(raw, f"{where}.{name}")
        queue = _mapping(settings.get("queue", {}), f"{where}.{name}.queue")
        max_attempts = queue.get("maxAttempts", DEFAULT_MAX_ATTEMPTS)
        if not isinstance(max_attempts, int):
            raise StackConfigError(f"{where}.{name}.queue.maxAttempts: expected an integer")
        found.append(
            LocalPipeline(
                name=name,
                project=gcp_project,
                location=str(settings.get("location", region)),
                dispatch_deadline=str(settings.get("dispatchDeadline", DEFAULT_DISPATCH_DEADLINE)),
                max_attempts=max_attempts,
            )
        )
    return found


def stack_output(pipelines: list[LocalPipeline], handler_url: str) -> dict[str, object]:
    """The shape of `pulumi stack output pipelines`, pointing at the local handler, so the
    client runs the same code path locally as against the cloud."""
    return {
        p.name: {
            "queue": p.queue,
            "queueName": p.name,
            "location": p.location,
            "serviceName": p.name,
            "serviceUrl": handler_url,
            # The emulator ignores OIDC tokens; the address only has to be well-formed.
            "invokerServiceAccount": f"{p.name}-invoker@{p.project}.iam.gserviceaccount.com",
            "dispatchDeadline": p.dispatch_deadline,
        }
        for p in pipelines
    }
