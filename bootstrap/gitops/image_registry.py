"""The handler image's registry and the one identity that may push to it.

The image workflow (.github/workflows/image.yml) builds handler/ once, in GitHub
environment `<env>-image` (main branch only), and pushes it here as `image-pusher-<env>`:
an account whose only grant is `roles/artifactregistry.writer` on this repository, so it
can push and tag images in it and nothing else (no other repository, no project role, no
Cloud Run, no state). Staging and prod run the same digest, promoted by pull request
(.github/workflows/promote.yml, no build, no cloud identity); their Cloud Run service
agents may pull from here (`imagePullers`), with `roles/artifactregistry.reader` on this
repository only.

Tags are immutable (`docker_config.immutable_tags`): a tag, once pushed, always names the
digest first pushed under it, so a tag in a log or a pull request can't be moved under a
reader; deployments pin the digest anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_gcp as gcp

from gitops.github_federation import GitHubFederation

REPOSITORY_ID: Final = "handler"
PUSHER_ROLE: Final = "roles/artifactregistry.writer"
PULLER_ROLE: Final = "roles/artifactregistry.reader"
WORKLOAD_IDENTITY_USER: Final = "roles/iam.workloadIdentityUser"


def image_environment(environment: str) -> str:
    """The GitHub environment the image workflow's build job runs in."""
    return f"{environment}-image"


def cloud_run_agent(project_number: str) -> str:
    """The Cloud Run service agent of a project, which pulls its services' images."""
    return f"serviceAccount:service-{project_number}@serverless-robot-prod.iam.gserviceaccount.com"


@dataclass
class ImageRegistryArgs:
    project: str
    environment: str
    location: str
    federation: GitHubFederation
    pullers: list[str]
    """Project numbers whose Cloud Run may pull the image."""
    depends_on: list[pulumi.Resource]


class ImageRegistry(pulumi.ComponentResource):
    """An Artifact Registry docker repository and its pusher account."""

    image: pulumi.Output[str]
    """REGION-docker.pkg.dev/PROJECT/handler/handler: what the workflow pushes."""
    pusher_email: pulumi.Output[str]
    github_environment: str

    def __init__(
        self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks-bootstrap:index:ImageRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.location,
            repository_id=REPOSITORY_ID,
            format="DOCKER",
            description="The task handler's image, built by the image workflow.",
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            opts=child,
        )
        self.github_environment = image_environment(args.environment)
        pusher = gcp.serviceaccount.Account(
            f"{name}-pusher",
            project=args.project,
            account_id=f"image-pusher-{args.environment}",
            display_name=f"Handler image pusher ({self.github_environment})",
            opts=child,
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-pusher-github",
            service_account_id=pusher.name,
            role=WORKLOAD_IDENTITY_USER,
            member=args.federation.environment_principal(self.github_environment),
            opts=pulumi.ResourceOptions(parent=self),
        )
        grants = [(f"{name}-pusher-writer", PUSHER_ROLE, pusher.member)]
        grants += [
            (
                f"{name}-puller-{number}",
                PULLER_ROLE,
                pulumi.Output.from_input(cloud_run_agent(number)),
            )
            for number in args.pullers
        ]
        for grant_name, role, member in grants:
            gcp.artifactregistry.RepositoryIamMember(
                grant_name,
                project=args.project,
                location=args.location,
                repository=repository.repository_id,
                role=role,
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.image = pulumi.Output.concat(
            args.location,
            "-docker.pkg.dev/",
            args.project,
            "/",
            repository.repository_id,
            "/handler",
        )
        self.pusher_email = pusher.email
        self.register_outputs({"image": self.image, "pusherEmail": self.pusher_email})
