"""The package's public components: what `import cloudrun_tasks` and the component
provider (provider/) offer a consumer.

Each is the repository's own component (same type token, same children, same URNs) with
args a consumer can write: plain data and Outputs in a TypedDict (components/inputs.py),
validated on construction exactly as a stack file is. An arg typed `pulumi.Input[T]` may
be an Output of another resource: its value is checked when it resolves, with the same
line, and the resources that take it fail then (components/deferred.py); every other arg
must be plain (it names resources, or decides which exist). Resources to wait for come in
`opts.depends_on`, as in any Pulumi program; they are handed to the children that call a
Google API (a freshly enabled API can answer "not enabled" for a while).

No `from __future__ import annotations`: the analyzer reads annotations as objects.
"""

import copy
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NotRequired, TypedDict

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, TypeAdapter, ValidationError

from . import alerts, apis, deferred, idempotency, pipeline
from .deferred import ANY, Path, Spec
from .inputs import ArgsError, CommonArgs, PipelineInputs, required, validate
from .name_rules import schedule_problems
from .names import StackNames
from .settings import PipelineSettings
from .settings.alerts import StackAlerts
from .settings.idempotency import IdempotencySettings
from .settings.pipeline import PipelineName
from .settings.schedule import ScheduleName
from .settings.service import MAX_INSTANCES
from .settings.validation import Settings, shown, within


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


# Placeholders checked while an Output is unknown: each passes every check, and list
# members differ from each other.
_PROJECT = Spec(("project",), lambda _: "deferred-project")


def _member(path: Path) -> str:
    return f"serviceAccount:deferred-{path[-2]}-{path[-1]}@deferred.iam.gserviceaccount.com"


def _channel(path: Path) -> str:
    return f"projects/deferred-project/notificationChannels/{path[-1]}"


class ProjectApisArgs(TypedDict):
    """Inputs of ProjectApis."""

    project: pulumi.Input[str]
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
        what = f"ProjectApis {name!r}"
        _, gated = deferred.checked(
            what,
            {"project": args.get("project")},
            [_PROJECT],
            lambda plain: validate(CommonArgs, plain, what, "args"),
        )
        super().__init__(
            name,
            apis.ProjectApisArgs(
                project=gated.get(("project",), args["project"]),
                extra_services=args.get("extra_services", []),
            ),
            opts,  # its resources call no API that must be enabled first
        )


class IdempotencyStoreArgs(TypedDict):
    """Inputs of IdempotencyStore."""

    project: pulumi.Input[str]
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
        store, gated = deferred.checked(
            what,
            {"project": args.get("project")},
            [_PROJECT],
            lambda plain: validate(
                IdempotencySettings,
                {k: v for k, v in args.items() if k in ("database", "location", "ttl")},
                what,
                "args",
                plain,
            ),
        )
        assert store.database is not None and store.location is not None  # required above
        super().__init__(
            name,
            idempotency.IdempotencyStoreArgs(
                project=gated.get(("project",), args["project"]),
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

    project: pulumi.Input[str]
    """Project of every resource of the pipeline."""
    pipeline: PipelineInputs
    """The pipeline's settings, checked as a stack file's pipeline entry is. Its images
    (the service's and its app's), enqueuers and replayers take Outputs; everything else in
    it is plain."""
    cloudtasks_agent_member: pulumi.Input[str]
    """The Cloud Tasks service agent (ProjectApis.cloudtasksAgentMember)."""
    database: pulumi.Input[str]
    """The idempotency database id (IdempotencyStore.databaseId): the runtime account may
    read and write it, and no other database."""
    protect: NotRequired[bool]
    """Pulumi protect on the queue and the service, Cloud Run deletion protection on.
    Plain: it decides how the resources are registered."""
    labels: NotRequired[Mapping[str, pulumi.Input[str]]]
    """Labels of the service, topic and subscription (pipeline: NAME is added). The
    values take Outputs; the keys are plain (they are checked and counted up front)."""
    notification_channels: NotRequired[Sequence[pulumi.Input[str]]]
    """Notification channel ids every alert policy of the pipeline notifies."""
    secret_env: NotRequired[bool]
    """The env values are secrets: kept as secret Outputs (state, previews). Plain."""
    secret_labels: NotRequired[bool]
    """The labels are secrets. Plain."""
    cloudscheduler_agent_member: NotRequired[pulumi.Input[str] | None]
    """The Cloud Scheduler service agent (ProjectApis.cloudschedulerAgentMember): required
    when the pipeline has schedules."""


class TaskPipeline(pipeline.TaskPipeline):
    """A Cloud Tasks queue pushing OIDC-authenticated tasks to a private Cloud Run service,
    with its invoker and runtime accounts, least-privilege IAM, dead letters and alerts.

    In Python, `outputs` (not in the schema) is the pipeline's entry of a stack output
    `pipelines` as the enqueue client reads it: a dict of the outputs above under their
    camelCase names (queue is queuePath, deadLetterSubscription the path), and with
    schedules, `schedules` (job, path and body of each)."""

    queue_name: pulumi.Output[str]
    """The queue's generated id."""
    queue_path: pulumi.Output[str]
    """The queue's path, projects/P/locations/L/queues/ID: where tasks are created."""
    location: pulumi.Output[str]
    """Region of the queue and the service."""
    service_name: pulumi.Output[str]
    """The Cloud Run service's generated name."""
    service_url: pulumi.Output[str]
    """The service's URL: the tasks' target and their OIDC audience."""
    invoker_service_account: pulumi.Output[str]
    """Email of the account whose OIDC token tasks carry (enqueuers may act as it)."""
    runtime_service_account: pulumi.Output[str]
    """Email of the account the service runs as: grant it what your handler calls."""
    ticker_service_account: pulumi.Output[str] | None
    """Email of the account Cloud Scheduler calls the service as; with schedules only."""
    dispatch_deadline: pulumi.Output[str]
    """How long Cloud Tasks waits for the service, a duration such as 600s."""
    dead_letter_topic: pulumi.Output[str]
    """Path of the dead-letter topic, projects/P/topics/ID."""
    dead_letter_subscription: pulumi.Output[str]
    """Id of the dead-letter subscription."""
    dead_letter_subscription_path: pulumi.Output[str]
    """Path of the dead-letter subscription, projects/P/subscriptions/ID: what replayers
    pull from."""
    firestore_database: pulumi.Output[str]
    """Id of the idempotency database the service keeps its claims in."""
    payload_bucket: pulumi.Output[str] | None
    """The payload bucket's name (claim checks), with payloads enabled only."""
    schedule_jobs: pulumi.Output[dict[str, str]]
    """Cloud Scheduler job ids (projects/P/locations/L/jobs/ID), by schedule name; empty
    without schedules."""

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
        scheduler_agent = args.get("cloudscheduler_agent_member")
        settings, gated = deferred.checked(
            what,
            {
                "project": args.get("project"),
                "labels": args.get("labels", {}),
                "pipeline": args["pipeline"],
            },
            _PIPELINE_INPUTS,
            lambda plain: _pipeline_settings(name, what, plain, scheduler_agent is not None),
            _outputs_listed_once,
            # Members are compared with each other (listed twice, listed once).
            together=[[("pipeline", "enqueuers", ANY), ("pipeline", "replayers", ANY)]],
        )
        super().__init__(
            name,
            pipeline.TaskPipelineArgs(
                project=gated.get(("project",), args["project"]),
                settings=settings,
                cloudtasks_agent_member=args["cloudtasks_agent_member"],
                database=args["database"],
                protect=args.get("protect", False),
                labels={
                    key: gated.get(("labels", key), value)
                    for key, value in args.get("labels", {}).items()
                },
                secret_env=args.get("secret_env", False),
                secret_labels=args.get("secret_labels", False),
                depends_on=_depends_on(opts),
                unaliased_secret_grants=names.unaliased_secret_grants if names else frozenset(),
                notification_channels=args.get("notification_channels", []),
                cloudscheduler_agent_member=scheduler_agent,
                deferred={
                    path[1:]: value for path, value in gated.items() if path[0] == "pipeline"
                },
            ),
            _own(opts),
        )


_PIPELINE_INPUTS = [
    _PROJECT,
    Spec(("labels", ANY), lambda _: ""),
    Spec(("pipeline", "service", "image"), lambda _: "registry.invalid/deferred"),
    Spec(("pipeline", "service", "app", "image"), lambda _: "registry.invalid/deferred-app"),
    Spec(("pipeline", "enqueuers", ANY), _member),
    Spec(("pipeline", "replayers", ANY), _member),
]


def _pipeline_settings(
    name: str, what: str, args: dict[str, Any], has_scheduler_agent: bool
) -> PipelineSettings:
    """ARGS (project, labels, pipeline) checked as a stack file's pipeline NAME is."""
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
    if raw.get("schedules") and not has_scheduler_agent:
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
            {"project": args["project"], "labels": args["labels"]},
        )
    except ArgsError as error:
        raise ArgsError(what, sorted([*error.problems, *missing])) from None
    if missing:
        raise ArgsError(what, missing)
    return settings


def _outputs_listed_once(args: dict[str, Any], from_outputs: Sequence[Path]) -> list[str]:
    """A member that came as an Output gets a grant of its own (pipeline.creators): one
    equal to any other enqueuer or replayer would be granted twice, and deleting either
    grant would take the role from both."""
    pipeline_args = args["pipeline"]
    listed = [
        (("pipeline", field_name, index), member)
        for field_name in pipeline.TASK_CREATORS
        for index, member in enumerate(pipeline_args.get(field_name, []))
    ]
    return [
        f"{deferred.key(path)}: the same member as {deferred.key(other)}; a member from an"
        f" Output must be listed once, got {shown(member, secret=False)}"
        for path, member in listed
        if path in from_outputs
        for other, again in listed
        # Twice in one list is the settings' own "is listed twice".
        if other[1] != path[1] and again == member
    ]


class AlertChannelsArgs(TypedDict):
    """Inputs of AlertChannels."""

    project: pulumi.Input[str]
    """Project of the email channels."""
    notification_channels: NotRequired[Sequence[pulumi.Input[str]]]
    """Existing channels, projects/P/notificationChannels/N, passed through."""
    emails: NotRequired[list[str]]
    """Addresses to create email channels for. Plain: each names a channel resource."""


class AlertChannels(alerts.AlertChannels):
    """Where alert policies notify: the given channel ids, plus an email channel each."""

    ids: list[pulumi.Input[str]]
    """Channel ids: the given ones, then the created email channels'."""

    def __init__(
        self, name: str, args: AlertChannelsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        what = f"AlertChannels {name!r}"
        given = {
            "project": args.get("project"),
            "notification_channels": args.get("notification_channels", []),
            "emails": args.get("emails", []),
        }
        alert_settings, gated = deferred.checked(
            what,
            given,
            [_PROJECT, Spec(("notification_channels", ANY), _channel)],
            lambda plain: validate(
                StackAlerts,
                {k: v for k, v in plain.items() if k != "project"},
                what,
                "args",
                {"project": plain["project"]},
            ),
        )
        super().__init__(
            name,
            alerts.AlertChannelsArgs(
                project=gated.get(("project",), args["project"]),
                channel_ids=[
                    gated.get(("notification_channels", index), channel)
                    for index, channel in enumerate(alert_settings.notification_channels)
                ],
                emails=alert_settings.emails,
                depends_on=_depends_on(opts),
            ),
            _own(opts),
        )


class DashboardPipelineInputs(TypedDict):
    """One pipeline's row of a StackDashboard: the TaskPipeline's outputs, its name and
    what of its settings the charts show."""

    name: str
    """The pipeline's name (the TaskPipeline's)."""
    location: pulumi.Input[str]
    """TaskPipeline.location."""
    queue_name: pulumi.Input[str]
    """TaskPipeline.queueName."""
    service_name: pulumi.Input[str]
    """TaskPipeline.serviceName."""
    dead_letter_subscription: pulumi.Input[str]
    """TaskPipeline.deadLetterSubscription (the id)."""
    payload_bucket: NotRequired[pulumi.Input[str]]
    """TaskPipeline.payloadBucket, with payloads: the row charts the bucket."""
    max_instances: NotRequired[int]
    """The service's maxInstances, drawn on the instances chart (default 10)."""
    schedules: NotRequired[list[str]]
    """The pipeline's schedule names: the row charts their ticks."""


class _DashboardPipeline(Settings):
    name: PipelineName
    max_instances: Annotated[int, within(1, MAX_INSTANCES)] = Field(10, alias="maxInstances")
    schedules: list[ScheduleName] = Field(default_factory=list)


class StackDashboardArgs(TypedDict):
    """Inputs of StackDashboard."""

    project: pulumi.Input[str]
    """Project of the dashboard (and of the pipelines it shows)."""
    pipelines: list[DashboardPipelineInputs]
    """One row per pipeline, in this order."""
    stack: NotRequired[str]
    """Shown in the dashboard's name (default: the Pulumi stack's name)."""


class StackDashboard(alerts.StackDashboard):
    """One Cloud Monitoring dashboard, a row per pipeline: queue depth and attempts,
    service requests, latency and instances, dead letters waiting, payloads and ticks."""

    url: pulumi.Output[str]
    """The dashboard's Cloud Console URL."""

    def __init__(
        self, name: str, args: StackDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        what = f"StackDashboard {name!r}"
        problems: list[str] = []
        gated: dict[Path, pulumi.Output[Any]] = {}
        try:
            _, gated = deferred.checked(
                what,
                {"project": args.get("project")},
                [_PROJECT],
                lambda plain: validate(CommonArgs, plain, what, "args"),
            )
        except ArgsError as error:
            problems += error.problems
        rows: list[alerts.DashboardRow] = []
        for index, row in enumerate(args["pipelines"]):
            try:
                checked = validate(
                    _DashboardPipeline,
                    {k: row.get(k) for k in ("name", "max_instances", "schedules") if k in row},
                    what,
                    f"args.pipelines.{index}",
                )
            except ArgsError as error:
                problems += error.problems
                continue
            rows.append(
                alerts.DashboardRow(
                    pipeline=checked.name,
                    location=row["location"],
                    max_instances=checked.max_instances,
                    schedules=tuple(checked.schedules),
                    queue_name=row["queue_name"],
                    service_name=row["service_name"],
                    dead_letter_subscription=row["dead_letter_subscription"],
                    payload_bucket=row.get("payload_bucket"),
                )
            )
        if problems:
            raise ArgsError(what, sorted(problems))
        super().__init__(
            name,
            alerts.StackDashboardArgs(
                project=gated.get(("project",), args["project"]),
                stack=args.get("stack", pulumi.get_stack()),
                rows=rows,
                depends_on=_depends_on(opts),
            ),
            _own(opts),
        )
