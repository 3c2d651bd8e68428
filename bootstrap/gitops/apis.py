"""The APIs the pipeline's sign-in, state and secrets need, never disabled on destroy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

SERVICES = (
    "iam.googleapis.com",  # service accounts, workload identity pools
    "iamcredentials.googleapis.com",  # short-lived tokens for impersonation
    "sts.googleapis.com",  # exchanges GitHub's OIDC token
    "cloudkms.googleapis.com",  # stack secrets
    "storage.googleapis.com",  # state bucket
    "cloudresourcemanager.googleapis.com",  # project-level IAM grants
    "serviceusage.googleapis.com",  # the deployer enables the main program's APIs
    "artifactregistry.googleapis.com",  # the handler image's registry (dev)
)


@dataclass
class BootstrapApisArgs:
    project: str


class BootstrapApis(pulumi.ComponentResource):
    """Enables SERVICES. Other workloads share them, so destroy leaves them on."""

    def __init__(
        self, name: str, args: BootstrapApisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks-bootstrap:index:BootstrapApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in SERVICES
        ]
        self.register_outputs({"services": list(SERVICES)})
