"""Production stacks can't lose their queues or services to a stray `pulumi up`."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from rules.cloudrun import SERVICE_V2
from rules.props import lookup
from rules.queues import QUEUE

PROTECTED_TYPES: Final = frozenset({QUEUE, SERVICE_V2})


def _protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for resource in args.resources:
        if resource.resource_type not in PROTECTED_TYPES:
            continue
        if not resource.opts.protect:
            why = (
                "a deleted queue's name stays blocked for days"
                if resource.resource_type == QUEUE
                else "deleting it drops every in-flight task"
            )
            report_violation(
                f"'{resource.name}' ({resource.resource_type}) is not protected, and {why}."
                " Set cloudrun-tasks:protect: true in the stack file (Pulumi protect=True).",
                resource.urn,
            )
        if (
            resource.resource_type == SERVICE_V2
            and lookup(resource.props, "deletionProtection") is False
        ):
            report_violation(
                f"Cloud Run service '{resource.name}' has deletionProtection false. Set"
                " cloudrun-tasks:protect: true in the stack file (deletion_protection=True).",
                resource.urn,
            )


prod_resources_protected = StackValidationPolicy(
    name="prod-resources-protected",
    description=(
        "Production: queues and Cloud Run services are protected and Cloud Run deletion"
        " protection is on. Disabled per stack in policy/config/<stack>.json for non-prod."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_protected,
)
