"""The pipelines of one stack, checked exactly as the Pulumi program checks them.

`make local` reads Pulumi.<stack>.yaml with the offline plan's reader and validates it with
the program's own settings, so a config that `pulumi up` would refuse never starts an
emulator: the same problems, one per line, before anything runs.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.name_rules import dead_letters
from components.names import schedule_job
from components.settings import ConfigError, ScheduleSettings, StackSettings, settings_from_config
from components.settings.app import AppSettings
from components.settings.schedule import body_text
from plan.stackfile import StackFileError, read_stack_file, stacks


class StackConfigError(ValueError):
    """The stack file is missing or invalid: the message names the file and every key."""


@dataclass(frozen=True)
class LocalApp:
    """`service.app` as `make local` runs it: `localCommand` in place of the image."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    probe_path: str | None = None
    """The startup probe's HTTP path; None: ready once the port accepts a connection."""


@dataclass(frozen=True)
class LocalPipeline:
    name: str
    project: str
    location: str
    dispatch_deadline: str
    max_attempts: int
    concurrency: int
    schedules: dict[str, ScheduleSettings] = field(default_factory=dict)
    payloads: bool = False
    """`payloads.enabled`: bodies over the threshold go through the storage emulator."""
    payload_threshold: int | None = None
    app: LocalApp | None = None
    """A proxy pipeline's app: its handler forwards each task there (TASK_APP_URL)."""

    @property
    def queue(self) -> str:
        # Locally the queue is named after the pipeline; in the cloud Pulumi names it.
        return f"projects/{self.project}/locations/{self.location}/queues/{self.name}"

    @property
    def dead_letter_topic(self) -> str:
        # Named as the program names the topic and its subscription (components.names).
        return f"projects/{self.project}/topics/{dead_letters(self.name)}"

    @property
    def dead_letter_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{dead_letters(self.name)}"

    def job(self, schedule: str) -> str:
        """The schedule's job as Cloud Scheduler names it (the id the program gives it)."""
        return (
            f"projects/{self.project}/locations/{self.location}/jobs/"
            f"{schedule_job(self.name, schedule)}"
        )


def _settings(root: Path, stack: str) -> StackSettings:
    path = root / f"Pulumi.{stack}.yaml"
    try:
        stack_file = read_stack_file(path)
    except FileNotFoundError:
        known = ", ".join(stacks(root)) or "none"
        raise StackConfigError(
            f"--stack {stack}: no {path.name} in {root} (stacks: {known})"
        ) from None
    except StackFileError as error:
        raise StackConfigError(str(error)) from None
    try:
        return settings_from_config(stack_file.config, stack_file.secret_keys, stack=stack)
    except ConfigError as error:
        raise StackConfigError(f"{path.name}: {error}") from None


def read_stack(root: Path, stack: str) -> list[LocalPipeline]:
    settings = _settings(root, stack)
    # No container engine here: an app runs as its localCommand, or the pipeline can't run.
    missing = [
        f"  pipelines.{name}.service.app.localCommand: required by `make local` for a"
        " pipeline with an app (the command that runs the app here, from the repository's"
        ' root, e.g. ["node", "examples/node-app/server.js"])'
        for name, pipeline in settings.pipelines.items()
        if pipeline.service.app is not None and pipeline.service.app.local_command is None
    ]
    if missing:
        raise StackConfigError(
            f"Pulumi.{stack}.yaml: {len(missing)} pipeline{'s' * (len(missing) != 1)} with an"
            " app can't run locally:\n" + "\n".join(missing)
        )
    return [
        LocalPipeline(
            name=name,
            project=settings.project,
            location=pipeline.resolved_location,
            dispatch_deadline=str(pipeline.dispatch_deadline),
            max_attempts=pipeline.queue.max_attempts,
            concurrency=pipeline.service.concurrency,
            schedules=dict(pipeline.schedules),
            payloads=pipeline.payloads.enabled,
            payload_threshold=pipeline.payloads.threshold,
            app=_local_app(pipeline.service.app),
        )
        for name, pipeline in settings.pipelines.items()
    ]


def _local_app(app: AppSettings | None) -> LocalApp | None:
    if app is None or app.local_command is None:
        return None
    return LocalApp(tuple(app.local_command), dict(app.env), app.startup_probe.path)


def stack_output(
    pipelines: list[LocalPipeline],
    handler_url: str,
    *,
    handler_urls: Mapping[str, str] | None = None,
    database: str | None = None,
    dead_letters: Collection[str] = (),
    payload_bucket: str | None = None,
) -> dict[str, object]:
    """The shape of `pulumi stack output pipelines`, pointing at the local handler, so the
    client runs the same code path locally as against the cloud. `database`: the Firestore
    emulator's idempotency database; `dead_letters`: the pipelines that name their
    dead-letter topic and subscription on the Pub/Sub emulator (their handler publishes
    there); `payload_bucket`: the storage emulator's
    bucket, for the pipelines with payloads enabled; `handler_urls`: a pipeline's own
    handler (a proxy pipeline's, in front of its app), by pipeline name."""
    return {
        p.name: {
            "queue": p.queue,
            "queueName": p.name,
            "location": p.location,
            "serviceName": p.name,
            "serviceUrl": (handler_urls or {}).get(p.name, handler_url),
            # The emulator ignores OIDC tokens; the address only has to be well-formed.
            "invokerServiceAccount": f"{p.name}-invoker@{p.project}.iam.gserviceaccount.com",
            "dispatchDeadline": p.dispatch_deadline,
            **({"firestoreDatabase": database} if database else {}),
            **(
                {
                    "deadLetterTopic": p.dead_letter_topic,
                    "deadLetterSubscription": p.dead_letter_subscription,
                }
                if p.name in dead_letters
                else {}
            ),
            **(
                {
                    "schedules": {
                        name: {
                            "job": p.job(name),
                            "path": s.path,
                            **({"body": body_text(s.body)} if s.body is not None else {}),
                        }
                        for name, s in p.schedules.items()
                    }
                }
                if p.schedules
                else {}
            ),
            **({"payloadBucket": payload_bucket} if payload_bucket and p.payloads else {}),
            **(
                {"payloadThreshold": p.payload_threshold}
                if payload_bucket and p.payloads and p.payload_threshold is not None
                else {}
            ),
        }
        for p in pipelines
    }
