"""A pipeline's payload bucket: where bodies too big for a task wait for the handler.

Private and short-lived by construction: uniform bucket-level access (IAM only, no ACLs),
public access prevention enforced, no versioning (an object is written once and never
replaced, so older generations would only be kept bytes), and a lifecycle rule that deletes
every object after components.settings.payloads.object_age_days. IAM, on this bucket only:
enqueuers and replayers may create objects (roles/storage.objectCreator: no read, no
overwrite, no delete), the runtime account may read them (roles/storage.objectViewer);
nothing but the lifecycle rule deletes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from .iam import IamMember, grant_all
from .roles import OBJECT_VIEWER


@dataclass
class PayloadBucketArgs:
    project: pulumi.Input[str]
    location: str
    """The pipeline's region: the handler reads from it, in the same region as the service."""
    bucket: pulumi.Input[str]
    """components.name_rules.payload_bucket_name(...)"""
    object_age_days: int
    creators: Sequence[IamMember]
    """Enqueuers and replayers, as objectCreator grants."""
    reader: pulumi.Input[str]
    """The runtime account's member."""
    labels: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    protect: bool = False
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class PayloadBucket(pulumi.ComponentResource):
    name: pulumi.Output[str]
    read_grant: pulumi.Resource

    def __init__(
        self, name: str, args: PayloadBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:PayloadBucket", name, None, opts)
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        bucket = gcp.storage.Bucket(
            name,
            name=args.bucket,
            project=args.project,
            location=args.location.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=False),
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        age=args.object_age_days
                    ),
                )
            ],
            labels=args.labels,
            # Never emptied by a destroy: the lifecycle rule alone deletes objects.
            force_destroy=False,
            opts=pulumi.ResourceOptions.merge(
                after_apis, pulumi.ResourceOptions(protect=args.protect)
            ),
        )
        grants = grant_all(
            name,
            [*args.creators, IamMember(OBJECT_VIEWER, args.reader, "runtime")],
            lambda grant_name, member, aliases: gcp.storage.BucketIAMMember(
                grant_name,
                bucket=bucket.name,
                role=member.role,
                member=member.member,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            ),
        )
        self.name = bucket.name
        self.read_grant = grants[-1]
        self.register_outputs({"name": bucket.name})
