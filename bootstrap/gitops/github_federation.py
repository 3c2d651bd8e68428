"""GitHub Actions signs in to Google Cloud with its own OIDC tokens: no keys."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
PROVIDER_ID = "github"
# The only events whose jobs may sign in: `push` (deploy.yml, main only), `pull_request`
# (pull-request.yml previews) and `schedule` (drift.yml, as the previewer; GitHub runs
# scheduled workflows from the default branch only). Not `pull_request_target` or `workflow_run`:
# those run with this repository's privileges (id-token included) on behalf of a fork's
# pull request, so a future workflow using them can't reach Google Cloud at all. GitHub
# sets `event_name` in every Actions OIDC token (docs.github.com/actions/reference/
# security/oidc, "OIDC token claims"). A new trigger (e.g. workflow_dispatch) must be
# added here, in the bootstrap, by an admin.
GITHUB_EVENTS = ("push", "pull_request", "schedule")


@dataclass
class GitHubFederationArgs:
    project: str
    project_number: str
    pool_id: str
    repository: str
    """OWNER/REPO: tokens from any other repository are rejected outright."""
    environments: list[str]
    """When not empty, tokens are also rejected unless the job runs in one of these."""
    depends_on: list[pulumi.Resource]


def condition(repository: str, environments: list[str]) -> str:
    """The provider's attribute condition (CEL over the token's claims)."""
    events = ", ".join(f"'{e}'" for e in GITHUB_EVENTS)
    rule = f"assertion.repository == '{repository}' && assertion.event_name in [{events}]"
    if environments:
        allowed = ", ".join(f"'{e}'" for e in environments)
        rule += f" && assertion.environment in [{allowed}]"
    return rule


class GitHubFederation(pulumi.ComponentResource):
    """A workload identity pool with one GitHub OIDC provider, locked to one repository.

    `google.subject` is the token's `sub`, `repo:OWNER/REPO:environment:NAME` for a job
    in a GitHub environment, so a grant to one subject admits exactly one repository's
    jobs in exactly one environment.
    """

    provider_name: str
    """Full resource name, the `workload_identity_provider` input of google-github-actions/auth."""

    def __init__(
        self, name: str, args: GitHubFederationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks-bootstrap:index:GitHubFederation", name, None, opts)
        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=args.project,
            workload_identity_pool_id=args.pool_id,
            display_name=f"GitHub Actions ({args.pool_id})",
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            project=args.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=PROVIDER_ID,
            display_name=f"GitHub {args.repository}"[:32],
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
            },
            attribute_condition=condition(args.repository, args.environments),
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._pool_path = (
            f"projects/{args.project_number}/locations/global/workloadIdentityPools/{args.pool_id}"
        )
        self._repository = args.repository
        self.provider_name = f"{self._pool_path}/providers/{PROVIDER_ID}"
        self.register_outputs({"providerName": self.provider_name})

    def environment_principal(self, environment: str) -> str:
        """The IAM member for jobs of this repository running in GitHub environment ENVIRONMENT."""
        subject = f"repo:{self._repository}:environment:{environment}"
        return f"principal://iam.googleapis.com/{self._pool_path}/subject/{subject}"
