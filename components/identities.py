"""Service accounts, each with its own additive IAM (who may act as it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from .iam import IamMember, grant_all


@dataclass
class ServiceAccountArgs:
    project: pulumi.Input[str]
    account_id: str
    """6..30 chars; the email is ACCOUNT_ID@PROJECT.iam.gserviceaccount.com."""
    display_name: str
    iam_members: Sequence[IamMember] = field(default_factory=tuple)
    """Grants on this account, e.g. roles/iam.serviceAccountUser for those who act as it."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Usually the ProjectApis component: the IAM API must be on first."""


class ServiceAccount(pulumi.ComponentResource):
    """A keyless service account. No key resource exists anywhere in this project."""

    email: pulumi.Output[str]
    member: pulumi.Output[str]
    """`serviceAccount:EMAIL`, the form IAM members take."""

    def __init__(
        self, name: str, args: ServiceAccountArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:ServiceAccount", name, None, opts)
        account = gcp.serviceaccount.Account(
            name,
            project=args.project,
            account_id=args.account_id,
            display_name=args.display_name,
            # The pipeline's bootstrap creates each account first and grants the deployer
            # actAs and IAM on it alone (docs/gitops.md, "Service accounts and secrets"):
            # the deployer holds neither project-wide. Create then adopts the existing
            # account (the provider answers a 409 by reading it) instead of failing.
            create_ignore_already_exists=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        # Bind to the account's own outputs, never a hand-built email: a new account can
        # be invisible to IAM for seconds, and the output orders the grant after it.
        grant_all(
            name,
            args.iam_members,
            lambda grant_name, grant, aliases: gcp.serviceaccount.IAMMember(
                grant_name,
                service_account_id=account.name,
                role=grant.role,
                member=grant.member,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            ),
        )
        self.email = account.email
        self.member = account.member
        self.register_outputs({"email": self.email, "member": self.member})
