"""cloudrun-tasks: one TaskPipeline per entry of `cloudrun-tasks:pipelines` in the stack file."""

import pulumi

from components.apis import SECRET_MANAGER, ProjectApis, ProjectApisArgs
from components.names import check_names
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
            unaliased_secret_grants=names.unaliased_secret_grants,
        ),
    )
    for name, pipeline in settings.pipelines.items()
}

pulumi.export("pipelines", {name: pipeline.outputs for name, pipeline in pipelines.items()})
