"""cloudrun-tasks: one TaskPipeline per entry of `cloudrun-tasks:pipelines` in the stack file."""

import pulumi

from components.apis import SECRET_MANAGER, ProjectApis, ProjectApisArgs
from components.pipeline import TaskPipeline, TaskPipelineArgs
from components.settings import load_settings

# Validates the whole config before any resource is registered: nothing half-applied.
settings = load_settings()

apis = ProjectApis(
    "apis",
    ProjectApisArgs(
        project=settings.project,
        extra_services=[SECRET_MANAGER] if settings.uses_secrets else [],
    ),
)

pipelines = {
    name: TaskPipeline(
        name,
        TaskPipelineArgs(
            project=settings.project,
            settings=pipeline,
            cloudtasks_agent_member=apis.cloudtasks_agent_member,
            protect=settings.protect,
            labels=settings.labels,
            secret_env=settings.secret_env,
            secret_labels=settings.secret_labels,
            depends_on=[apis],
        ),
    )
    for name, pipeline in settings.pipelines.items()
}

pulumi.export("pipelines", {name: pipeline.outputs for name, pipeline in pipelines.items()})
