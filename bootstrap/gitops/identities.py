"""The two accounts the workflows impersonate per environment, and what each may do.

deployer  `pulumi up` from the GitHub environment <env> (main branch, reviewers on prod)
previewer `pulumi preview` from <env>-preview (pull requests): reads, never changes. It
          can read the whole state bucket and decrypt stack secrets (a preview needs both),
          so it is as sensitive as the stack's secrets: fork pull requests never reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_gcp as gcp

from gitops.authority import (
    ACCOUNT_IAM_PERMISSIONS,
    ACCOUNT_USER,
    DEPLOYER_PREDEFINED_ROLES,
    PROJECT_IAM_ADMIN,
    SECRET_SCOPED,
    deployer_custom_permissions,
    grant_limit_expression,
    payload_bucket_condition,
    payload_bucket_permissions,
    previewer_permissions,
    secret_condition,
)
from gitops.github_federation import GitHubFederation
from gitops.role_snapshot import snapshot
from gitops.stack_needs import StackNeeds

# What each command does to the state bucket (gs://) and the gcpkms:// key, read in
# pulumi/pulumi at tag v3.259.0 and on master up to 3.260.0-dev (2026-08-21), the newest
# source we could read; the workflows run CLI 3.272.0, whose tag we could not read (see
# docs/gitops.md, "What the preview identity can read and change"):
#
# pkg/backend/diy/backend.go `Update`, `Refresh`, `Destroy`, `Import` call `b.Lock` (a
# WriteAll and a Delete under .pulumi/locks/, lock.go `Lock`/`Unlock`); `apply` saves the
# checkpoint, .pulumi/history/ and .pulumi/backups/ only when `!opts.DryRun`
# (state.go `saveCheckpoint`, `addToHistory`, `backupStack`).
# So the deployer creates, overwrites and deletes objects in the bucket.
DEPLOYER_STATE_ROLE: Final = "roles/storage.objectUser"
# backend.go `Preview` is `backend.Preview(..., b.apply, ...)` with no `b.Lock` (since
# v3.21.0, pulumi/pulumi#8642 "Allow preview on locked stack"), and apply() runs it with
# DryRun: no snapshot manager, no history, no backup. What it reads: .pulumi/meta.yaml
# (meta.go `ensurePulumiMeta`, which writes only when the bucket has none, i.e. before the
# first `pulumi stack init`), a prefix listing and the checkpoint
# .pulumi/stacks/<project>/<stack>.json[.gz|.zst] (state.go `stackPath`, `getCheckpoint`),
# and <stack>.pulumi-tags (stack_tags.go `loadStackTags`). Nothing it does is a write, so
# the previewer reads the bucket and nothing else: no write role, hence no IAM condition
# on a write prefix either. If a future CLI ever writes during preview, the call fails
# with 403 instead of the previewer silently being able to overwrite state.
PREVIEWER_STATE_ROLE: Final = "roles/storage.objectViewer"
# pkg/secrets/cloud/manager.go: loading a stack decrypts its data key
# (`newCloudSecretsManager` -> keeper.Decrypt); `generateNewDataKey` (keeper.Encrypt) runs
# only when a stack has no encryptedkey yet (`stack init`, `change-secrets-provider`).
DEPLOYER_KEY_ROLE: Final = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# Decrypt only: a preview reads secret config and secret outputs, and never makes a key.
PREVIEWER_KEY_ROLE: Final = "roles/cloudkms.cryptoKeyDecrypter"
WORKLOAD_IDENTITY_USER: Final = "roles/iam.workloadIdentityUser"


@dataclass
class PipelineIdentitiesArgs:
    project: str
    environment: str
    federation: GitHubFederation
    state_bucket: gcp.storage.Bucket
    secrets_key: gcp.kms.CryptoKey
    project_number: str
    stack: StackNeeds
    """The accounts and secrets of the environment's main stack."""
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

        deployer = self._account(
            f"{name}-deployer", args, f"pulumi-deployer-{env}", self.deploy_environment
        )
        previewer = self._account(
            f"{name}-previewer", args, f"pulumi-previewer-{env}", self.preview_environment
        )
        for role in DEPLOYER_PREDEFINED_ROLES:
            gcp.projects.IAMMember(
                f"{name}-deployer-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=deployer.member,
                opts=child,
            )
        gcp.projects.IAMMember(
            f"{name}-deployer-project-iam",
            project=args.project,
            role=PROJECT_IAM_ADMIN,
            member=deployer.member,
            condition=gcp.projects.IAMMemberConditionArgs(
                title="grants the main program makes only",
                description="Add or remove project grants of the roles the program grants.",
                expression=grant_limit_expression(),
            ),
            opts=child,
        )
        for account, prefix, role_id, title, permissions in (
            (
                deployer,
                f"{name}-deployer",
                f"cloudrunTasksDeployer{env.capitalize()}",
                f"cloudrun-tasks deployer ({env})",
                deployer_custom_permissions(snapshot()),
            ),
            (
                previewer,
                f"{name}-previewer",
                f"cloudrunTasksPreviewer{env.capitalize()}",
                f"cloudrun-tasks previewer ({env})",
                previewer_permissions(),
            ),
        ):
            role = gcp.projects.IAMCustomRole(
                f"{prefix}-role",
                project=args.project,
                role_id=role_id,
                title=title,
                description="What the main program's resource types need (gitops/permissions.py).",
                permissions=permissions,
                opts=child,
            )
            gcp.projects.IAMMember(
                f"{prefix}-custom",
                project=args.project,
                # The role's full name; built from role_id so it carries the dependency.
                role=role.role_id.apply(lambda rid: f"projects/{args.project}/roles/{rid}"),
                member=account.member,
                opts=child,
            )
        payload_role = gcp.projects.IAMCustomRole(
            f"{name}-deployer-payload-buckets-role",
            project=args.project,
            role_id=f"cloudrunTasksPayloadBuckets{env.capitalize()}",
            title=f"cloudrun-tasks payload buckets ({env})",
            description="Payload buckets' settings and IAM, under a condition on their names.",
            permissions=payload_bucket_permissions(),
            opts=child,
        )
        gcp.projects.IAMMember(
            f"{name}-deployer-payload-buckets",
            project=args.project,
            role=payload_role.role_id.apply(lambda rid: f"projects/{args.project}/roles/{rid}"),
            member=deployer.member,
            condition=gcp.projects.IAMMemberConditionArgs(
                title="payload buckets only",
                description="Buckets named <pipeline>-payloads-<hash>, never the state bucket.",
                expression=args.state_bucket.name.apply(payload_bucket_condition),
            ),
            opts=child,
        )
        self._stack_accounts(name, args, deployer)
        if args.stack.secrets:
            self._stack_secrets(name, args, deployer)
        for account, prefix, state_role, key_role in (
            (deployer, f"{name}-deployer", DEPLOYER_STATE_ROLE, DEPLOYER_KEY_ROLE),
            (previewer, f"{name}-previewer", PREVIEWER_STATE_ROLE, PREVIEWER_KEY_ROLE),
        ):
            gcp.storage.BucketIAMMember(
                f"{prefix}-state",
                bucket=args.state_bucket.name,
                role=state_role,
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

    def _stack_accounts(
        self, name: str, args: PipelineIdentitiesArgs, deployer: gcp.serviceaccount.Account
    ) -> None:
        """The main stack's accounts, each with the deployer's actAs and IAM on it alone."""
        env = args.environment
        role = gcp.projects.IAMCustomRole(
            f"{name}-deployer-account-iam-role",
            project=args.project,
            role_id=f"cloudrunTasksAccountIam{env.capitalize()}",
            title=f"cloudrun-tasks account IAM ({env})",
            description="The IAM policy of one service account the main stack names.",
            permissions=list(ACCOUNT_IAM_PERMISSIONS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        role_name = role.role_id.apply(lambda rid: f"projects/{args.project}/roles/{rid}")
        for account_id, display_name in args.stack.accounts.items():
            account = gcp.serviceaccount.Account(
                f"{name}-stack-{account_id}",
                project=args.project,
                account_id=account_id,
                display_name=display_name,
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            )
            for key, grant_role in (("act-as", ACCOUNT_USER), ("iam", role_name)):
                gcp.serviceaccount.IAMMember(
                    f"{name}-stack-{account_id}-deployer-{key}",
                    service_account_id=account.name,
                    role=grant_role,
                    member=deployer.member,
                    opts=pulumi.ResourceOptions(parent=self),
                )

    def _stack_secrets(
        self, name: str, args: PipelineIdentitiesArgs, deployer: gcp.serviceaccount.Account
    ) -> None:
        """setIamPolicy on the secrets the main stack names, by a condition on their names."""
        env = args.environment
        role = gcp.projects.IAMCustomRole(
            f"{name}-deployer-secret-iam-role",
            project=args.project,
            role_id=f"cloudrunTasksSecretIam{env.capitalize()}",
            title=f"cloudrun-tasks secret IAM ({env})",
            description="The IAM policy of the secrets the main stack names.",
            permissions=sorted(SECRET_SCOPED),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        gcp.projects.IAMMember(
            f"{name}-deployer-secret-iam",
            project=args.project,
            role=role.role_id.apply(lambda rid: f"projects/{args.project}/roles/{rid}"),
            member=deployer.member,
            condition=gcp.projects.IAMMemberConditionArgs(
                title="the main stack's secrets only",
                description="Secrets the main stack's services read.",
                expression=secret_condition(args.project_number, args.stack.secrets),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
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
