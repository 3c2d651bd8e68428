"""The two accounts the workflows impersonate per environment, and what each may do.

deployer  `pulumi up` from the GitHub environment <env> (main branch, reviewers on prod)
previewer `pulumi preview` from <env>-preview (pull requests): reads, never changes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_gcp as gcp

from gitops.github_federation import GitHubFederation

# Project roles of the deployer: exactly what the main program manages (docs/gitops.md).
DEPLOYER_PROJECT_ROLES: Final = {
    # gcp.projects.Service and ServiceIdentity: enable APIs, create the Cloud Tasks agent.
    "roles/serviceusage.serviceUsageAdmin": "enable the program's APIs",
    # Queues and QueueIamMember (setIamPolicy on a queue is only in the admin role).
    "roles/cloudtasks.admin": "create queues and grant enqueuer on them",
    # Cloud Run v2 services and ServiceIamMember.
    "roles/run.admin": "deploy services and grant invoker on them",
    # Invoker/runtime accounts and their IAMMember grants.
    "roles/iam.serviceAccountAdmin": "create service accounts and grant roles on them",
    # actAs: deploying a service that runs as the runtime account, and setting the
    # queue's OIDC account. The accounts are created by the main program after this
    # bootstrap, so the grant can't name them; see docs/gitops.md for the trade-off.
    "roles/iam.serviceAccountUser": "run services and queues as the accounts it creates",
}
# Read-only: enough to plan against the current project. No secret payloads.
PREVIEWER_PROJECT_ROLES: Final = {"roles/viewer": "read the project's resources"}
# Grants on secrets the main program makes (SecretIamMember), without reading values.
SECRET_IAM_PERMISSIONS: Final = [
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.setIamPolicy",
]
# Preview and update both take the stack's lock file, so both write objects.
STATE_ROLE: Final = "roles/storage.objectUser"
DEPLOYER_KEY_ROLE: Final = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# Loading a stack decrypts its data key; new secrets are encrypted with that data key.
PREVIEWER_KEY_ROLE: Final = "roles/cloudkms.cryptoKeyDecrypter"
WORKLOAD_IDENTITY_USER: Final = "roles/iam.workloadIdentityUser"


@dataclass
class PipelineIdentitiesArgs:
    project: str
    environment: str
    federation: GitHubFederation
    state_bucket: gcp.storage.Bucket
    secrets_key: gcp.kms.CryptoKey
    depends_on: list[pulumi.Resource]


class PipelineIdentities(pulumi.ComponentResource):
    """Deployer and previewer accounts, each impersonable from one GitHub environment."""

    deployer_email: pulumi.Output[str]
    previewer_email: pulumi.Output[str]
    deploy_environment: str
    preview_environment: str

    def __init__(
        self, name: str, args: PipelineIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks-bootstrap:index:PipelineIdentities", name, None, opts)
        env = args.environment
        self.deploy_environment = env
        self.preview_environment = f"{env}-preview"
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)

        secret_iam_role = gcp.projects.IAMCustomRole(
            f"{name}-secret-iam",
            project=args.project,
            role_id=f"cloudrunTasksSecretIam{env.capitalize()}",
            title=f"cloudrun-tasks secret IAM ({env})",
            description="Grant access to Secret Manager secrets without reading them.",
            permissions=SECRET_IAM_PERMISSIONS,
            opts=child,
        )
        deployer = self._account(
            f"{name}-deployer", args, f"pulumi-deployer-{env}", self.deploy_environment
        )
        previewer = self._account(
            f"{name}-previewer", args, f"pulumi-previewer-{env}", self.preview_environment
        )
        project_grants = [
            (deployer, f"{name}-deployer", role) for role in DEPLOYER_PROJECT_ROLES
        ] + [(previewer, f"{name}-previewer", role) for role in PREVIEWER_PROJECT_ROLES]
        for account, prefix, role in project_grants:
            gcp.projects.IAMMember(
                f"{prefix}-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=account.member,
                opts=child,
            )
        gcp.projects.IAMMember(
            f"{name}-deployer-secret-iam",
            project=args.project,
            # The role's full name; built from role_id so it carries the dependency.
            role=secret_iam_role.role_id.apply(lambda rid: f"projects/{args.project}/roles/{rid}"),
            member=deployer.member,
            opts=child,
        )
        for account, prefix, key_role in (
            (deployer, f"{name}-deployer", DEPLOYER_KEY_ROLE),
            (previewer, f"{name}-previewer", PREVIEWER_KEY_ROLE),
        ):
            gcp.storage.BucketIAMMember(
                f"{prefix}-state",
                bucket=args.state_bucket.name,
                role=STATE_ROLE,
                member=account.member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            gcp.kms.CryptoKeyIAMMember(
                f"{prefix}-secrets",
                crypto_key_id=args.secrets_key.id,
                role=key_role,
                member=account.member,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.deployer_email = deployer.email
        self.previewer_email = previewer.email
        self.register_outputs(
            {"deployerEmail": self.deployer_email, "previewerEmail": self.previewer_email}
        )

    def _account(
        self, name: str, args: PipelineIdentitiesArgs, account_id: str, github_environment: str
    ) -> gcp.serviceaccount.Account:
        account = gcp.serviceaccount.Account(
            name,
            project=args.project,
            account_id=account_id,
            display_name=f"Pulumi from GitHub environment {github_environment}",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        # Only jobs of this repository running in this one GitHub environment.
        gcp.serviceaccount.IAMMember(
            f"{name}-github",
            service_account_id=account.name,
            role=WORKLOAD_IDENTITY_USER,
            member=args.federation.environment_principal(github_environment),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return account
