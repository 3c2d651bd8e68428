"""One pipeline: queue -> private Cloud Run service, with the identities and IAM between them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.alerts import PipelineAlertsArgs, pipeline_alerts
from components.iam import IamMember, members
from components.identities import ServiceAccount, ServiceAccountArgs
from components.names import invoker_account, runtime_account
from components.queue import TaskQueue, TaskQueueArgs
from components.roles import ENQUEUER, OPENID_TOKEN_CREATOR, RUN_INVOKER, SERVICE_ACCOUNT_USER
from components.service import TaskService, TaskServiceArgs
from components.settings import PipelineSettings


@dataclass
class TaskPipelineArgs:
    project: str
    settings: PipelineSettings
    """Validated pipeline settings with every default resolved (see components.settings)."""
    cloudtasks_agent_member: pulumi.Input[str]
    """The project's Cloud Tasks service agent (ProjectApis.cloudtasks_agent_member)."""
    protect: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
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


class TaskPipeline(pulumi.ComponentResource):
    """Everything the guide "Executing asynchronous tasks" sets up by hand, for one pipeline.

    Who can do what:
    - enqueuers: create tasks in this queue (cloudtasks.enqueuer on the queue) and attach
      the invoker's OIDC token to them (serviceAccountUser on the invoker account only);
    - the Cloud Tasks service agent: mint OIDC tokens for the invoker account only;
    - the invoker account: invoke this service only (run.invoker on the service);
    - the runtime account: what the service runs as; reads its own secrets only.
    """

    queue_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    outputs: dict[str, pulumi.Input[str]]
    """The stack output entry: what enqueue code needs to create a task. One output per
    field, so a preview shows the fields already known (location, deadline)."""

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
                display_name=f"Cloud Tasks invoker of pipeline {name}",
                iam_members=[
                    *members(SERVICE_ACCOUNT_USER, s.enqueuers),
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
                display_name=f"Cloud Run runtime of pipeline {name}",
                depends_on=args.depends_on,
            ),
            child,
        )
        service = TaskService(
            name,
            TaskServiceArgs(
                project=args.project,
                location=location,
                settings=s.service,
                service_account=runtime.email,
                max_attempts=s.queue.max_attempts,
                iam_members=[IamMember(role=RUN_INVOKER, member=invoker.member, key="invoker")],
                labels={**args.labels, "pipeline": name},
                secret_env=args.secret_env,
                secret_labels=args.secret_labels,
                protect=args.protect,
                depends_on=args.depends_on,
                unaliased_secret_grants=args.unaliased_secret_grants,
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
                iam_members=members(ENQUEUER, s.enqueuers),
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
                notification_channels=args.notification_channels,
                depends_on=args.depends_on,
            ),
            self,
        )
        self.queue_name, self.service_name = queue.queue_name, service.service_name
        self.outputs = {
            "queue": queue.path,
            "queueName": queue.queue_name,
            "location": location,
            "serviceName": service.service_name,
            "serviceUrl": service.url,
            "invokerServiceAccount": invoker.email,
            "runtimeServiceAccount": runtime.email,
            "dispatchDeadline": str(s.dispatch_deadline),
        }
        self.register_outputs({"outputs": self.outputs})
