"""Payload buckets (claim checks): private, IAM-only and unversioned, whatever else the
stack says. A bucket holds task bodies; one reachable publicly, through ACLs, or keeping
old generations beyond its lifecycle rule leaks or keeps them."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import UNKNOWN, lookup

BUCKET: Final = "gcp:storage/bucket:Bucket"


def _private(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != BUCKET:
        return
    prevention = lookup(args.props, "publicAccessPrevention")
    if prevention is not UNKNOWN and prevention != "enforced":
        report_violation(
            f"'{args.name}' has publicAccessPrevention {prevention or 'unset (inherited)'}:"
            ' set public_access_prevention="enforced" so no grant can make it public.',
            None,
        )
    uniform = lookup(args.props, "uniformBucketLevelAccess")
    if uniform is not UNKNOWN and uniform is not True:
        report_violation(
            f"'{args.name}' allows object ACLs: set uniform_bucket_level_access=True so IAM"
            " alone decides who reads it.",
            None,
        )
    versioning = lookup(args.props, "versioning", "enabled")
    if versioning is not UNKNOWN and versioning is True:
        report_violation(
            f"'{args.name}' keeps old object versions: disable versioning, or a deleted"
            " payload outlives its lifecycle rule.",
            None,
        )


buckets_private = ResourceValidationPolicy(
    name="buckets-private",
    description=(
        "Cloud Storage buckets enforce public access prevention and uniform bucket-level"
        " access, and keep no object versions."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_private,
)
