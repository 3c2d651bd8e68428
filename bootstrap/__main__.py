"""cloudrun-tasks-bootstrap: what one environment's pipeline needs before its first run."""

import pulumi

from gitops.apis import BootstrapApis, BootstrapApisArgs
from gitops.github_federation import GitHubFederation, GitHubFederationArgs
from gitops.identities import PipelineIdentities, PipelineIdentitiesArgs
from gitops.image_registry import ImageRegistry, ImageRegistryArgs, image_environment
from gitops.settings import ConfigError, load_settings
from gitops.stack_needs import stack_needs
from gitops.state_backend import StateBackend, StateBackendArgs

# Validates the whole config before any resource is registered.
settings = load_settings()
env = settings.environment
try:
    needs = stack_needs(env)
except ValueError as error:
    raise ConfigError(str(error)) from None
if needs.project != settings.project:
    raise ConfigError(
        f"gcp:project is {settings.project!r} but the main stack file Pulumi.{env}.yaml"
        f" deploys to {needs.project!r}: the deployer's grants are on this project"
    )

apis = BootstrapApis("apis", BootstrapApisArgs(project=settings.project))
state = StateBackend(
    "state",
    StateBackendArgs(
        project=settings.project,
        location=settings.location,
        bucket_name=settings.bucket,
        key_ring_name=f"pulumi-{env}",
        versions_kept=settings.state_versions_kept,
        protect=settings.protect,
        depends_on=[apis],
    ),
)
federation = GitHubFederation(
    "github",
    GitHubFederationArgs(
        project=settings.project,
        project_number=settings.project_number,
        pool_id=f"github-{env}",
        repository=settings.github_repository,
        environments=[
            env,
            f"{env}-preview",
            *([image_environment(env)] if settings.builds else []),
        ]
        if settings.restricted
        else [],
        depends_on=[apis],
    ),
)
identities = PipelineIdentities(
    "pipeline",
    PipelineIdentitiesArgs(
        project=settings.project,
        environment=env,
        federation=federation,
        state_bucket=state.bucket,
        secrets_key=state.key,
        project_number=settings.project_number,
        stack=needs,
        depends_on=[apis],
    ),
)

registry = (
    ImageRegistry(
        "image",
        ImageRegistryArgs(
            project=settings.project,
            environment=env,
            location=settings.location,
            federation=federation,
            pullers=settings.image_pullers,
            depends_on=[apis],
        ),
    )
    if settings.builds
    else None
)

# What the admin copies into the GitHub environments <env> and <env>-preview (and
# <env>-image where images are built).
pulumi.export("backendUrl", state.backend_url)
pulumi.export("secretsProvider", state.secrets_provider)
pulumi.export("workloadIdentityProvider", federation.provider_name)
pulumi.export(
    "githubEnvironments",
    {
        identities.deploy_environment: {"GCP_SERVICE_ACCOUNT": identities.deployer_email},
        identities.preview_environment: {"GCP_SERVICE_ACCOUNT": identities.previewer_email},
        **(
            {
                registry.github_environment: {
                    "GCP_SERVICE_ACCOUNT": registry.pusher_email,
                    "HANDLER_IMAGE": registry.image,
                }
            }
            if registry
            else {}
        ),
    },
)
