"""The package's public components: what `import cloudrun_tasks` and the component
provider (provider/) offer a consumer.

Each is the repository's own component (same type token, same children, same URNs) with
args a consumer can write: plain data and Outputs in a TypedDict (components/inputs.py),
validated on construction exactly as a stack file is. Resources to wait for come in
`opts.depends_on`, as in any Pulumi program; they are handed to the children that call a
Google API (a freshly enabled API can answer "not enabled" for a while).

No `from __future__ import annotations`: the analyzer reads annotations as objects.
"""

import copy
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_gcp as gcp
from pydantic import TypeAdapter, ValidationError

from . import alerts, apis, idempotency, pipeline
from .inputs import ArgsError, CommonArgs, PipelineInputs, required, validate
from .name_rules import schedule_problems
from .names import StackNames
from .settings import PipelineSettings
from .settings.alerts import StackAlerts
from .settings.idempotency import IdempotencySettings
from .settings.pipeline import PipelineName
from .settings.validation import shown


def _depends_on(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    waits = opts.depends_on if opts is not None else None
    if waits is None:
        return []
    if isinstance(waits, pulumi.Resource):
        return [waits]
    resources = (
        [w for w in waits if isinstance(w, pulumi.Resource)] if isinstance(waits, list) else []
    )
    if not isinstance(waits, list) or len(resources) != len(waits):
        raise TypeError("opts.depends_on: the components here take resources, not Outputs")
    return resources


def _own(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions | None:
    """OPTS without depends_on: the component itself calls no API, its children wait."""
    if opts is None or opts.depends_on is None:
        return opts
    own = copy.copy(opts)
    own.depends_on = None
    return own


_PIPELINE_NAME = TypeAdapter(PipelineName)


class ProjectApisArgs(TypedDict):
    """Inputs of ProjectApis."""

    project: str
    """Project the APIs are enabled in."""
    extra_services: NotRequired[list[str]]
    """APIs beyond the required ones, e.g. secretmanager.googleapis.com; with
    cloudscheduler.googleapis.com (pipelines with schedules) its service agent is created
    too."""


class ProjectApis(apis.ProjectApis):
    """Enables the APIs a pipeline needs (never disabled on destroy) and creates the Cloud
    Tasks service agent. Every other component should wait for it (opts.depends_on)."""

    services: dict[str, gcp.projects.Service]
    """The enabled APIs' Service resources, by API name."""
    cloudtasks_agent_member: pulumi.Output[str]
    """`serviceAccount:EMAIL` of the Cloud Tasks service agent."""
    cloudscheduler_agent_member: pulumi.Output[str] | None
    """`serviceAccount:EMAIL` of the Cloud Scheduler service agent, which mints the OIDC
    tokens of schedule ticks; only with cloudscheduler.googleapis.com in extraServices."""

    def __init__(
        self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate(CommonArgs, {"project": args.get("project")}, f"ProjectApis {name!r}", "args")
        super().__init__(
            name,
            apis.ProjectApisArgs(
                project=args["project"], extra_services=args.get("extra_services", [])
            ),
            opts,  # its resources call no API that must be enabled first
        )


class IdempotencyStoreArgs(TypedDict):
    """Inputs of IdempotencyStore."""

    project: str
    """Project of the Firestore database."""
    database: str
    """Database id: 4..63 of [a-z0-9-], starting with a letter."""
    location: str
    """A Firestore location near the pipelines: nam5, nam7, eur3 or a region."""
    ttl: NotRequired[str]
    """How long a record is kept after its last write, whole seconds, 2678400s (31 days,
    the dead letters' retention) and more (default 744h)."""
    protect: NotRequired[bool]
    """Pulumi protect, Firestore delete protection, and a destroy that keeps the data."""


class IdempotencyStore(idempotency.IdempotencyStore):
    """A Native-mode Firestore database of its own for the handler's idempotency records,
    with a TTL policy that deletes each record `ttl` after its last write."""

    database_id: pulumi.Output[str]
    """The database id, from the created database."""

    def __init__(
        self, name: str, args: IdempotencyStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        what = f"IdempotencyStore {name!r}"
        required(what, args, "database", "location")
        store = validate(
            IdempotencySettings,
            {key: value for key, value in args.items() if key in ("database", "location", "ttl")},
            what,
            "args",
            {"project": args.get("project")},
        )
        assert store.database is not None and store.location is not None  # required above
        super().__init__(
            name,
            idempotency.IdempotencyStoreArgs(
                project=args["project"],
                database=store.database,
                location=store.location,
                ttl=store.ttl,
                protect=args.get("protect", False),
                depends_on=_depends_on(opts),
            ),
            _own(opts),
        )


class TaskPipelineArgs(TypedDict):
    """Inputs of TaskPipeline."""

    project: str
    """Project of every resource of the pipeline."""
    pipeline: PipelineInputs
    """The pipeline's settings, checked as a stack file's pipeline entry is."""
    cloudtasks_agent_member: pulumi.Input[str]
    """The Cloud Tasks service agent (ProjectApis.cloudtasksAgentMember)."""
    database: pulumi.Input[str]
    """The idempotency database id (IdempotencyStore.databaseId): the runtime account may
    read and write it, and no other database."""
    protect: NotRequired[bool]
    """Pulumi protect on the queue and the service, Cloud Run deletion protection on."""
    labels: NotRequired[dict[str, str]]
    """Labels of the service, topic and subscription (pipeline: NAME is added)."""
    notification_channels: NotRequired[list[pulumi.Input[str]]]
    """Notification channel ids every alert policy of the pipeline notifies."""
    secret_env: NotRequired[bool]
    """The env values are secrets: kept as secret Outputs (state, previews)."""
    secret_labels: NotRequired[bool]
    """The labels are secrets."""
    cloudscheduler_agent_member: NotRequired[pulumi.Input[str] | None]
    """The Cloud Scheduler service agent (ProjectApis.cloudschedulerAgentMember): required
    when the pipeline has schedules."""


class TaskPipeline(pipeline.TaskPipeline):
    """A Cloud Tasks queue pushing OIDC-authenticated tasks to a private Cloud Run service,
    with its invoker and runtime accounts, least-privilege IAM, dead letters and alerts."""

    queue_name: pulumi.Output[str]
    """The queue's generated id."""
    service_name: pulumi.Output[str]
    """The Cloud Run service's generated name."""
    dead_letter_subscription: pulumi.Output[str]
    """Id of the dead-letter subscription."""
    payload_bucket: pulumi.Output[str] | None
    """The payload bucket's name (claim checks), with payloads enabled only."""
    outputs: dict[str, Any]
    """What enqueue code needs, strings: queue, queueName, location, serviceName,
    serviceUrl, invokerServiceAccount, runtimeServiceAccount, dispatchDeadline,
    deadLetterTopic, deadLetterSubscription, firestoreDatabase; with payloads,
    payloadBucket (and payloadThreshold); with schedules, schedules: an object per
    schedule with its job id (job), path and body (compact JSON, when it has one)."""

    def __init__(
        self,
        name: str,
        args: TaskPipelineArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        names: StackNames | None = None,
    ) -> None:
        """NAMES: the stack's checked names (components.names.check_names), for a program
        that declares several pipelines from one config, as this repository's does."""
        what = f"TaskPipeline {name!r}"
        raw = dict(args["pipeline"])
        missing: list[str] = []
        # The component's name is the pipeline's (a stack file's key under `pipelines`):
        # every id Google will see is derived from it, so it gets the same rules.
        try:
            _PIPELINE_NAME.validate_python(name)
        except ValidationError as error:
            got = shown(name, secret=False)
            missing += [f"name: {problem['msg']}, got {got}" for problem in error.errors()]
        schedules = raw.get("schedules")
        for schedule in sorted(schedules if isinstance(schedules, dict) else {}):
            missing += [
                f"args.pipeline.schedules.{schedule}: {problem}"
                for problem in schedule_problems(name, str(schedule))
            ]
        if "location" not in raw:
            region = pulumi.Config("gcp").get("region")
            if region is None:
                missing.append("args.pipeline.location: required (no gcp:region set)")
            raw["location"] = region
        scheduler_agent = args.get("cloudscheduler_agent_member")
        if raw.get("schedules") and scheduler_agent is None:
            missing.append(
                "args.cloudschedulerAgentMember: required with args.pipeline.schedules"
                " (ProjectApis.cloudschedulerAgentMember, with cloudscheduler.googleapis.com"
                " in its extraServices)"
            )
        try:
            settings = validate(
                PipelineSettings,
                raw,
                what,
                "args.pipeline",
                {"project": args.get("project"), "labels": args.get("labels", {})},
            )
        except ArgsError as error:
            raise ArgsError(what, sorted([*error.problems, *missing])) from None
        if missing:
            raise ArgsError(what, missing)
        super().__init__(
            name,
            pipeline.TaskPipelineArgs(
                project=args["project"],
                settings=settings,
                cloudtasks_agent_member=args["cloudtasks_agent_member"],
                database=args["database"],
                protect=args.get("protect", False),
                labels=args.get("labels", {}),
                secret_env=args.get("secret_env", False),
                secret_labels=args.get("secret_labels", False),
                depends_on=_depends_on(opts),
                unaliased_secret_grants=names.unaliased_secret_grants if names else frozenset(),
                notification_channels=args.get("notification_channels", []),
                cloudscheduler_agent_member=scheduler_agent,
            ),
            _own(opts),
        )


class AlertChannelsArgs(TypedDict):
    """Inputs of AlertChannels."""

    project: str
    """Project of the email channels."""
    notification_channels: NotRequired[list[str]]
    """Existing channels, projects/P/notificationChannels/N, passed through."""
    emails: NotRequired[list[str]]
    """Addresses to create email channels for."""


class AlertChannels(alerts.AlertChannels):
    """Where alert policies notify: the given channel ids, plus an email channel each."""

    ids: list[pulumi.Input[str]]
    """Channel ids: the given ones, then the created email channels'."""

    def __init__(
        self, name: str, args: AlertChannelsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        what = f"AlertChannels {name!r}"
        alert_settings = validate(
            StackAlerts,
            {
                "notification_channels": args.get("notification_channels", []),
                "emails": args.get("emails", []),
            },
            what,
            "args",
            {"project": args.get("project")},
        )
        super().__init__(
            name,
            alerts.AlertChannelsArgs(
                project=args["project"],
                channel_ids=alert_settings.notification_channels,
                emails=alert_settings.emails,
                depends_on=_depends_on(opts),
            ),
            _own(opts),
        )
