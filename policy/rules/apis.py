"""Enabled APIs outlive any one stack."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import lookup

PROJECT_SERVICE: Final = "gcp:projects/service:Service"


def _never_disabled(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != PROJECT_SERVICE:
        return
    service = lookup(args.props, "service")
    # The provider's default for disableOnDestroy is true, so unset is a violation too.
    for key in ("disableOnDestroy", "disableDependentServices"):
        value = lookup(args.props, key)
        if value is True or (key == "disableOnDestroy" and value is None):
            state = "true" if value else "unset (the provider defaults it to true)"
            report_violation(
                f"'{args.name}' ({service}) has {key} {state}: destroying this stack would"
                " turn the API off for every workload in the project. Set"
                " disable_on_destroy=False and disable_dependent_services=False.",
                None,
            )


apis_never_disabled_on_destroy = ResourceValidationPolicy(
    name="apis-never-disabled-on-destroy",
    description="Project APIs are never disabled when a stack is destroyed.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_never_disabled,
)
