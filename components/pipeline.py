"""One pipeline: queue -> private Cloud Run service, with the identities and IAM between them."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from .alerts import PipelineAlertsArgs, pipeline_alerts
from .deferred import Path
from .iam import IamMember, grant_all, members
from .identities import ServiceAccount, ServiceAccountArgs
from .name_rules import (
    dead_letters,
    invoker_account,
    invoker_display_name,
    payload_bucket_name,
    runtime_account,
    runtime_display_name,
)
from .names import RUNTIME_KEY, grant, schedule_job
from .payloads import PayloadBucket, PayloadBucketArgs
from .queue import TaskQueue, TaskQueueArgs
from .roles import (
    DATASTORE_USER,
    ENQUEUER,
    OBJECT_CREATOR,
    OPENID_TOKEN_CREATOR,
    PUBLISHER,
    RUN_INVOKER,
    SERVICE_ACCOUNT_USER,
    SUBSCRIBER,
)
from .schedule import PipelineSchedules, PipelineSchedulesArgs
from .service import TaskService, TaskServiceArgs
from .settings import PipelineSettings
from .settings.idempotency import DEAD_LETTER_RETENTION
from .settings.payloads import object_age_days
from .settings.schedule import body_text

# Who creates tasks in the queue (PipelineSettings.task_creators).
TASK_CREATORS = ("enqueuers", "replayers")
# Time a replayer has to create a message's task before Pub/Sub redelivers it (10..600 s;
# a redelivery is harmless, the replayed task's name is derived from the dead letter's).
REPLAY_ACK_DEADLINE_SECONDS = 60


@dataclass
class TaskPipelineArgs:
    project: pulumi.Input[str]
    settings: PipelineSettings
    """Validated pipeline settings with every default resolved (see components.settings)."""
    cloudtasks_agent_member: pulumi.Input[str]
    """The project's Cloud Tasks service agent (ProjectApis.cloudtasks_agent_member)."""
    database: pulumi.Input[str]
    """The stack's idempotency database id (IdempotencyStore.database_id): the runtime
    account may read and write it, and no other database."""
    protect: bool = False
    labels: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_env: bool = False
    """Env values came from a secret config key (StackSettings.secret_env)."""
    secret_labels: bool = False
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources everything here waits for: the ProjectApis component."""
    unaliased_secret_grants: frozenset[str] = frozenset()
    """StackNames.unaliased_secret_grants from components.names.check_names: a pipeline
    on its own has none, only another pipeline's secret grants can share its names."""
    notification_channels: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Channel ids the pipeline's alert policies notify (AlertChannels.ids)."""
    cloudscheduler_agent_member: pulumi.Input[str] | None = None
    """The Cloud Scheduler service agent (ProjectApis.cloudscheduler_agent_member): required
    when the pipeline has schedules."""
    deferred: Mapping[Path, pulumi.Output[str]] = field(default_factory=dict)
    """Settings that came as Outputs, by path in the settings (("service", "image"),
    ("enqueuers", 0)): `settings` holds a checked placeholder there, this the gated value
    (components/deferred.py)."""


def creators(
    role: str, s: PipelineSettings, deferred: Mapping[Path, pulumi.Output[str]], *lists: str
) -> list[IamMember]:
    """ROLE for the members of LISTS (enqueuers, replayers), each once. A plain member is
    its own grant key, as always; a member that came as an Output is known only once
    deployed, so its grant is keyed by its place (`enqueuers-0`): reordering such members
    replaces their grants. Two Outputs with one value are refused when they resolve."""
    plain = [
        member
        for field_name in lists
        for index, member in enumerate(getattr(s, field_name))
        if (field_name, index) not in deferred
    ]
    return [
        *members(role, dict.fromkeys(plain)),
        *(
            IamMember(role=role, member=deferred[(field_name, index)], key=f"{field_name}-{index}")
            for field_name in lists
            for index in range(len(getattr(s, field_name)))
            if (field_name, index) in deferred
        ),
    ]


class TaskPipeline(pulumi.ComponentResource):
    """Everything the guide "Executing asynchronous tasks" sets up by hand, for one pipeline.

    Who can do what:
    - enqueuers: create tasks in this queue (cloudtasks.enqueuer on the queue) and attach
      the invoker's OIDC token to them (serviceAccountUser on the invoker account only);
    - the Cloud Tasks service agent: mint OIDC tokens for the invoker account only;
    - the invoker account: invoke this service only (run.invoker on the service);
    - the runtime account: what the service runs as; reads its own secrets only, reads and
      writes the stack's idempotency database only, publishes to its dead-letter topic only;
    - replayers: consume from its dead-letter subscription only, and create tasks as
      enqueuers do (a replay re-creates each dead letter as a task);
    - with schedules: see components/schedule.py (a ticker account that may invoke the
      service, and the runtime account may create tasks in this queue).

    The dead-letter topic and subscription are registered here directly, not in a
    component of their own: a component costs about as much to register as a resource
    (bench/scale.py).
    """

    queue_name: pulumi.Output[str]
    queue_path: pulumi.Output[str]
    location: pulumi.Output[str]
    service_name: pulumi.Output[str]
    service_url: pulumi.Output[str]
    invoker_service_account: pulumi.Output[str]
    runtime_service_account: pulumi.Output[str]
    ticker_service_account: pulumi.Output[str] | None
    dispatch_deadline: pulumi.Output[str]
    dead_letter_topic: pulumi.Output[str]
    dead_letter_subscription: pulumi.Output[str]
    dead_letter_subscription_path: pulumi.Output[str]
    firestore_database: pulumi.Output[str]
    payload_bucket: pulumi.Output[str] | None
    """With payloads.enabled only."""
    schedule_jobs: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: TaskPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:TaskPipeline", name, None, opts)
        s = args.settings
        location = s.resolved_location
        child = pulumi.ResourceOptions(parent=self)
        invoker = ServiceAccount(
            invoker_account(name),
            ServiceAccountArgs(
                project=args.project,
                account_id=invoker_account(name),
                display_name=invoker_display_name(name),
                iam_members=[
                    *creators(SERVICE_ACCOUNT_USER, s, args.deferred, *TASK_CREATORS),
                    IamMember(
                        role=OPENID_TOKEN_CREATOR,
                        member=args.cloudtasks_agent_member,
                        key="cloudtasks-agent",
                    ),
                ],
                depends_on=args.depends_on,
            ),
            child,
        )
        runtime = ServiceAccount(
            runtime_account(name),
            ServiceAccountArgs(
                project=args.project,
                account_id=runtime_account(name),
                display_name=runtime_display_name(name),
                depends_on=args.depends_on,
            ),
            child,
        )
        child_after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        labels = {**args.labels, "pipeline": name}
        topic = gcp.pubsub.Topic(
            dead_letters(name),
            project=args.project,
            labels=pulumi.Output.secret(labels) if args.secret_labels else labels,
            opts=child_after_apis,
        )
        subscription = gcp.pubsub.Subscription(
            dead_letters(name),
            project=args.project,
            topic=topic.name,
            labels=pulumi.Output.secret(labels) if args.secret_labels else labels,
            message_retention_duration=str(DEAD_LETTER_RETENTION),
            # A replayed message is gone once acknowledged: its task exists by then, and
            # keeping it would keep task bodies longer than anything needs them.
            retain_acked_messages=False,
            # Never deleted for inactivity (an empty ttl; the default is 31 idle days).
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            ack_deadline_seconds=REPLAY_ACK_DEADLINE_SECONDS,
            opts=child_after_apis,
        )
        publish = gcp.pubsub.TopicIAMMember(
            grant(dead_letters(name), PUBLISHER, RUNTIME_KEY).name,
            project=args.project,
            topic=topic.name,
            role=PUBLISHER,
            member=runtime.member,
            opts=child,
        )
        grant_all(
            dead_letters(name),
            creators(SUBSCRIBER, s, args.deferred, "replayers"),
            lambda grant_name, member, aliases: gcp.pubsub.SubscriptionIAMMember(
                grant_name,
                project=args.project,
                subscription=subscription.name,
                role=member.role,
                member=member.member,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            ),
        )
        # Firestore has no per-database IAM resource: the documented per-database scope is
        # a project-level grant with an IAM condition on the database's resource name
        # (firestore/docs/manage-databases, "Configure per-database access permissions").
        database_path = pulumi.Output.concat(
            "projects/", args.project, "/databases/", args.database
        )
        store = gcp.projects.IAMMember(
            grant(name, DATASTORE_USER, RUNTIME_KEY).name,
            project=args.project,
            role=DATASTORE_USER,
            member=runtime.member,
            condition=gcp.projects.IAMMemberConditionArgs(
                title=pulumi.Output.concat("idempotency database ", args.database, " only"),
                description=f"Runtime account of pipeline {name}: its idempotency records.",
                expression=pulumi.Output.concat('resource.name == "', database_path, '"'),
            ),
            opts=child_after_apis,
        )
        topic_path = pulumi.Output.concat("projects/", args.project, "/topics/", topic.name)
        pipeline_env: dict[str, pulumi.Input[str]] = {
            "TASK_FIRESTORE_DATABASE": args.database,
            "TASK_DEAD_LETTER_TOPIC": topic_path,
            "TASK_DISPATCH_DEADLINE": str(s.dispatch_deadline),
            # With TASK_MAX_ATTEMPTS: Cloud Tasks ends a task only once both are reached,
            # and the handler's last attempt must be that one.
            "TASK_MAX_RETRY_DURATION": str(s.queue.max_retry_duration),
        }
        if s.schedules:
            # Only these schedules' ticks become tasks (handler/ticks.py): job id -> path.
            pipeline_env["TASK_SCHEDULES"] = json.dumps(
                {schedule_job(name, schedule): t.path for schedule, t in s.schedules.items()}
            )
        grants: list[pulumi.Resource] = [publish, store]
        payloads: PayloadBucket | None = None
        if s.payloads.enabled:
            payloads = PayloadBucket(
                f"{name}-payloads",
                PayloadBucketArgs(
                    project=args.project,
                    location=location,
                    bucket=pulumi.Output.from_input(args.project).apply(
                        lambda project: payload_bucket_name(project, pulumi.get_stack(), name)
                    ),
                    object_age_days=object_age_days(s.queue, s.dispatch_deadline),
                    creators=creators(OBJECT_CREATOR, s, args.deferred, *TASK_CREATORS),
                    reader=runtime.member,
                    labels=pulumi.Output.secret(labels) if args.secret_labels else labels,
                    protect=args.protect,
                    depends_on=args.depends_on,
                ),
                child,
            )
            pipeline_env["TASK_PAYLOAD_BUCKET"] = payloads.name
            grants.append(payloads.read_grant)
        service = TaskService(
            name,
            TaskServiceArgs(
                project=args.project,
                location=location,
                settings=s.service,
                service_account=runtime.email,
                max_attempts=s.queue.max_attempts,
                pipeline_env=pipeline_env,
                iam_members=[IamMember(role=RUN_INVOKER, member=invoker.member, key="invoker")],
                labels=labels,
                secret_env=args.secret_env,
                secret_labels=args.secret_labels,
                protect=args.protect,
                depends_on=args.depends_on,
                unaliased_secret_grants=args.unaliased_secret_grants,
                # Its first requests claim records and may dead-letter: grants first.
                grants=grants,
                image=args.deferred.get(("service", "image")),
                app_image=args.deferred.get(("service", "app", "image")),
            ),
            child,
        )
        queue = TaskQueue(
            name,
            TaskQueueArgs(
                project=args.project,
                location=location,
                settings=s.queue,
                target_url=service.url,
                invoker_email=invoker.email,
                iam_members=creators(ENQUEUER, s, args.deferred, *TASK_CREATORS),
                protect=args.protect,
                depends_on=args.depends_on,
            ),
            child,
        )
        pipeline_alerts(
            name,
            PipelineAlertsArgs(
                project=args.project,
                settings=s,
                queue_name=queue.queue_name,
                service_name=service.service_name,
                dead_letter_subscription=subscription.name,
                notification_channels=args.notification_channels,
                depends_on=args.depends_on,
            ),
            self,
        )
        jobs: dict[str, pulumi.Output[str]] = {}
        ticker: pulumi.Output[str] | None = None
        if s.schedules:
            if args.cloudscheduler_agent_member is None:
                raise ValueError(
                    "cloudscheduler_agent_member: required for schedules (ProjectApis with"
                    " the Cloud Scheduler API)"
                )
            schedules = PipelineSchedules(
                name,
                PipelineSchedulesArgs(
                    project=args.project,
                    location=location,
                    schedules=s.schedules,
                    service_name=service.service_name,
                    service_url=service.url,
                    queue_path=queue.path,
                    queue_name=queue.queue_name,
                    runtime_member=runtime.member,
                    scheduler_agent_member=args.cloudscheduler_agent_member,
                    alerts_enabled=s.alerts.enabled,
                    notification_channels=args.notification_channels,
                    depends_on=args.depends_on,
                ),
                child,
            )
            jobs, ticker = schedules.jobs, schedules.ticker_email
        self.queue_name, self.queue_path = queue.queue_name, queue.path
        self.location = pulumi.Output.from_input(location)
        self.service_name, self.service_url = service.service_name, service.url
        self.invoker_service_account = invoker.email
        self.runtime_service_account = runtime.email
        self.ticker_service_account = ticker
        self.dispatch_deadline = pulumi.Output.from_input(str(s.dispatch_deadline))
        self.dead_letter_topic = topic_path
        self.dead_letter_subscription = subscription.name
        self.dead_letter_subscription_path = pulumi.Output.concat(
            "projects/", args.project, "/subscriptions/", subscription.name
        )
        self.firestore_database = pulumi.Output.from_input(args.database)
        self.payload_bucket = payloads.name if payloads is not None else None
        self.schedule_jobs = pulumi.Output.all(**jobs).apply(dict)
        # The stack output entry (a dict of Outputs, not one Output): a preview shows the
        # fields already known (location, deadline).
        self.outputs: dict[str, object] = {
            "queue": self.queue_path,
            "queueName": self.queue_name,
            "location": location,
            "serviceName": self.service_name,
            "serviceUrl": self.service_url,
            "invokerServiceAccount": self.invoker_service_account,
            "runtimeServiceAccount": self.runtime_service_account,
            "dispatchDeadline": str(s.dispatch_deadline),
            "deadLetterTopic": self.dead_letter_topic,
            "deadLetterSubscription": self.dead_letter_subscription_path,
            "firestoreDatabase": args.database,
        }
        if jobs:
            self.outputs["schedules"] = {
                schedule: {
                    "job": jobs[schedule],
                    "path": settings.path,
                    **({"body": body_text(settings.body)} if settings.body is not None else {}),
                }
                for schedule, settings in s.schedules.items()
            }
        if payloads is not None:
            self.outputs["payloadBucket"] = payloads.name
            if s.payloads.threshold is not None:
                self.outputs["payloadThreshold"] = str(s.payloads.threshold)
        self.register_outputs(
            {
                "queueName": self.queue_name,
                "queuePath": self.queue_path,
                "location": self.location,
                "serviceName": self.service_name,
                "serviceUrl": self.service_url,
                "invokerServiceAccount": self.invoker_service_account,
                "runtimeServiceAccount": self.runtime_service_account,
                "tickerServiceAccount": self.ticker_service_account,
                "dispatchDeadline": self.dispatch_deadline,
                "deadLetterTopic": self.dead_letter_topic,
                "deadLetterSubscription": self.dead_letter_subscription,
                "deadLetterSubscriptionPath": self.dead_letter_subscription_path,
                "firestoreDatabase": self.firestore_database,
                "payloadBucket": self.payload_bucket,
                "scheduleJobs": self.schedule_jobs,
            }
        )
