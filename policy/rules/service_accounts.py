"""Service-account hygiene: no long-lived keys (the pipeline is keyless end to end)."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

KEY_TYPES: Final = frozenset({"gcp:serviceaccount/key:Key"})


def _no_keys(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in KEY_TYPES:
        report_violation(
            f"'{args.name}' creates a service-account key, a long-lived secret that ends up"
            " in state and CI. Remove it: Cloud Tasks signs OIDC tokens for the invoker"
            " account, and the pipeline signs in through Workload Identity Federation.",
            None,
        )


no_service_account_keys = ResourceValidationPolicy(
    name="no-service-account-keys",
    description="No service-account keys: use OIDC tokens and Workload Identity Federation.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_keys,
)
