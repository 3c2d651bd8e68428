"""cloudrun-tasks: one TaskPipeline per entry of `cloudrun-tasks:pipelines` in the stack file,
each with its dead letters and alert policies; for the stack, one idempotency store and
one dashboard."""

import pulumi

from components.alerts import AlertChannels, AlertChannelsArgs, StackDashboard, StackDashboardArgs
from components.apis import CLOUDSCHEDULER, LOGGING, SECRET_MANAGER, ProjectApis, ProjectApisArgs
from components.idempotency import IdempotencyStore, IdempotencyStoreArgs
from components.names import CHANNELS, IDEMPOTENCY, STACK_DASHBOARD, check_names
from components.pipeline import TaskPipeline, TaskPipelineArgs
from components.settings import load_settings

# Validates the whole config, and every name derived from it, before any resource is
# registered: nothing half-applied.
settings = load_settings()
names = check_names(settings)

apis = ProjectApis(
    "apis",
    ProjectApisArgs(
        project=settings.project,
        extra_services=[
            *([SECRET_MANAGER] if settings.uses_secrets else []),
            *([CLOUDSCHEDULER, LOGGING] if settings.uses_schedules else []),
        ],
    ),
)

store = IdempotencyStore(
    IDEMPOTENCY,
    IdempotencyStoreArgs(
        project=settings.project,
        database=settings.database_id,
        location=settings.database_location,
        ttl=settings.idempotency.ttl,
        protect=settings.protect,
        depends_on=[apis],
    ),
)

# Email channels are the only resources here: without them, the ids pass straight through.
channels: list[pulumi.Input[str]] = list(settings.alerts.notification_channels)
if settings.alerts.emails:
    channels = AlertChannels(
        CHANNELS,
        AlertChannelsArgs(
            project=settings.project,
            channel_ids=settings.alerts.notification_channels,
            emails=settings.alerts.emails,
            depends_on=[apis],
        ),
    ).ids

pipelines = {
    name: TaskPipeline(
        name,
        TaskPipelineArgs(
            project=settings.project,
            settings=pipeline,
            cloudtasks_agent_member=apis.cloudtasks_agent_member,
            database=store.database_id,
            protect=settings.protect,
            labels=settings.labels,
            secret_env=settings.secret_env,
            secret_labels=settings.secret_labels,
            depends_on=[apis],
            unaliased_secret_grants=names.unaliased_secret_grants,
            notification_channels=channels,
            cloudscheduler_agent_member=apis.cloudscheduler_agent_member,
        ),
    )
    for name, pipeline in settings.pipelines.items()
}

dashboard = StackDashboard(
    STACK_DASHBOARD,
    StackDashboardArgs(
        project=settings.project,
        stack=pulumi.get_stack(),
        rows=[
            (
                settings.pipelines[name],
                name,
                p.queue_name,
                p.service_name,
                p.dead_letter_subscription,
                p.payload_bucket,
            )
            for name, p in pipelines.items()
        ],
        depends_on=[apis],
    ),
)

pulumi.export("pipelines", {name: pipeline.outputs for name, pipeline in pipelines.items()})
pulumi.export("dashboardUrl", dashboard.url)
