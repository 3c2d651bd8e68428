"""cloudrun-tasks: one TaskPipeline per entry of `cloudrun-tasks:pipelines` in the stack file,
each with its dead letters and alert policies; for the stack, one idempotency store and
one dashboard."""

import pulumi

from components import (
    AlertChannels,
    DashboardPipelineInputs,
    IdempotencyStore,
    ProjectApis,
    StackDashboard,
    TaskPipeline,
)
from components.apis import CLOUDSCHEDULER, SECRET_MANAGER
from components.inputs import pipeline_inputs
from components.names import CHANNELS, IDEMPOTENCY, STACK_DASHBOARD, check_names
from components.settings import load_settings

# Validates the whole config, and every name derived from it, before any resource is
# registered: nothing half-applied.
settings = load_settings()
names = check_names(settings)

# The package's public components (`import cloudrun_tasks` for a consumer): this program
# is their first consumer. Their args are re-checked as a consumer's would be; all of it
# passed the stack-wide validation above already.
apis = ProjectApis(
    "apis",
    {
        "project": settings.project,
        "extra_services": [
            *([SECRET_MANAGER] if settings.uses_secrets else []),
            *([CLOUDSCHEDULER] if settings.uses_schedules else []),
        ],
    },
)
after_apis = pulumi.ResourceOptions(depends_on=[apis])

store = IdempotencyStore(
    IDEMPOTENCY,
    {
        "project": settings.project,
        "database": settings.database_id,
        "location": settings.database_location,
        "ttl": str(settings.idempotency.ttl),
        "protect": settings.protect,
    },
    after_apis,
)

# Email channels are the only resources here: without them, the ids pass straight through.
channels: list[pulumi.Input[str]] = list(settings.alerts.notification_channels)
if settings.alerts.emails:
    channels = AlertChannels(
        CHANNELS,
        {
            "project": settings.project,
            "notification_channels": settings.alerts.notification_channels,
            "emails": settings.alerts.emails,
        },
        after_apis,
    ).ids

pipelines = {
    name: TaskPipeline(
        name,
        {
            "project": settings.project,
            "pipeline": pipeline_inputs(pipeline),
            "cloudtasks_agent_member": apis.cloudtasks_agent_member,
            "database": store.database_id,
            "protect": settings.protect,
            "labels": settings.labels,
            "secret_env": settings.secret_env,
            "secret_labels": settings.secret_labels,
            "notification_channels": channels,
            "cloudscheduler_agent_member": apis.cloudscheduler_agent_member,
        },
        after_apis,
        names=names,
    )
    for name, pipeline in settings.pipelines.items()
}

# The dashboard reads the pipelines' typed outputs, as a consumer's program would.
rows: list[DashboardPipelineInputs] = []
for name, p in pipelines.items():
    row: DashboardPipelineInputs = {
        "name": name,
        "location": p.location,
        "queue_name": p.queue_name,
        "service_name": p.service_name,
        "dead_letter_subscription": p.dead_letter_subscription,
        "max_instances": settings.pipelines[name].service.max_instances,
        "schedules": list(settings.pipelines[name].schedules),
    }
    if p.payload_bucket is not None:
        row["payload_bucket"] = p.payload_bucket
    rows.append(row)
dashboard = StackDashboard(
    STACK_DASHBOARD, {"project": settings.project, "pipelines": rows}, after_apis
)

pulumi.export("pipelines", {name: pipeline.outputs for name, pipeline in pipelines.items()})
pulumi.export("dashboardUrl", dashboard.url)
