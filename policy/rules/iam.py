"""IAM guard rails: additive, resource-scoped, never public.

The engine sees three IAM shapes in pulumi-gcp: `*IamMember` (one member, additive),
`*IamBinding` (every member of one role, authoritative) and `*IamPolicy` (the whole
policy as JSON in `policyData`, authoritative). Each check reads all three, so an
insecure grant can't slip through by changing shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import items, known_str, module, type_name

PUBLIC_MEMBERS: Final = frozenset({"allUsers", "allAuthenticatedUsers"})

# Project-wide, each of these reaches every resource of its kind in the project; the
# value says where the grant belongs instead.
RESOURCE_SCOPED_ROLES: Final = {
    "roles/run.invoker": "on the one Cloud Run service (gcp.cloudrunv2.ServiceIamMember)",
    "roles/cloudtasks.enqueuer": "on the one queue (gcp.cloudtasks.QueueIamMember)",
    "roles/iam.serviceAccountUser": (
        "on the one service account to act as (gcp.serviceaccount.IAMMember)"
    ),
    "roles/iam.serviceAccountTokenCreator": (
        "on the one service account to mint tokens for (gcp.serviceaccount.IAMMember)"
    ),
}
HIERARCHY_MODULES: Final = frozenset({"projects", "folder", "organizations"})


def iam_shape(resource_type: str) -> str | None:
    """'member', 'binding' or 'policy' for a gcp IAM resource type, else None."""
    if not resource_type.startswith("gcp:"):
        return None
    name = type_name(resource_type).lower()
    for shape in ("member", "binding", "policy"):
        if name.endswith(f"iam{shape}"):
            return shape
    return None


def grants(props: Any, shape: str) -> Iterator[tuple[str | None, str]]:
    """(role, member) pairs a known IAM resource grants; unknown parts are left out."""
    if shape == "member":
        member = known_str(props, "member")
        if member is not None:
            yield known_str(props, "role"), member
    elif shape == "binding":
        role = known_str(props, "role")
        for member in items(props, "members"):
            if isinstance(member, str):
                yield role, member
    else:
        policy_data = known_str(props, "policyData")
        try:
            policy = json.loads(policy_data) if policy_data else {}
        except ValueError:
            return
        for binding in policy.get("bindings", []) if isinstance(policy, dict) else []:
            for member in binding.get("members", []):
                yield binding.get("role"), member


def roles(props: Any, shape: str) -> set[str]:
    """Known roles an IAM resource grants, whoever the members are."""
    if shape == "policy":
        return {role for role, _ in grants(props, shape) if role}
    role = known_str(props, "role")
    return {role} if role else set()


def _no_public_members(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    shape = iam_shape(args.resource_type)
    if shape is None:
        return
    for role, member in grants(args.props, shape):
        if member in PUBLIC_MEMBERS:
            report_violation(
                f"{member} is granted {role or 'a role'} on {type_name(args.resource_type)}"
                f" '{args.name}'. Remove it and grant the role to the specific service account"
                " or group that needs it: tasks reach the service with the queue's invoker"
                " account, so nothing here needs to be public.",
                None,
            )


def _no_authoritative(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    shape = iam_shape(args.resource_type)
    if shape not in ("binding", "policy"):
        return
    kind = type_name(args.resource_type)
    additive = kind[: -len(shape)] + "Member"
    report_violation(
        f"{args.resource_type} '{args.name}' is authoritative: it replaces"
        f" {'every other member of its role' if shape == 'binding' else 'the whole IAM policy'}"
        f" on the resource, wiping grants made elsewhere. Use one additive {additive}"
        " per member instead.",
        None,
    )


def _no_hierarchy_grants(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    shape = iam_shape(args.resource_type)
    if shape is None or module(args.resource_type) not in HIERARCHY_MODULES:
        return
    level = {"projects": "project", "folder": "folder", "organizations": "organization"}[
        module(args.resource_type)
    ]
    for role in sorted(roles(args.props, shape) & RESOURCE_SCOPED_ROLES.keys()):
        report_violation(
            f"{role} is granted at {level} level by '{args.name}', which reaches every"
            f" resource of its kind in the {level}. Grant it {RESOURCE_SCOPED_ROLES[role]}"
            " instead.",
            None,
        )


no_public_iam_members = ResourceValidationPolicy(
    name="no-public-iam-members",
    description="No allUsers or allAuthenticatedUsers in any IAM grant.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_public_members,
)

no_authoritative_iam = ResourceValidationPolicy(
    name="no-authoritative-iam",
    description="No authoritative *IamBinding or *IamPolicy resources: use *IamMember.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_authoritative,
)

no_project_level_scoped_roles = ResourceValidationPolicy(
    name="no-project-level-scoped-roles",
    description=(
        "run.invoker, cloudtasks.enqueuer, iam.serviceAccountUser and"
        " iam.serviceAccountTokenCreator are granted on one resource, never project-wide."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_hierarchy_grants,
)
