"""A schedule's identity may do what its ticks need and nothing else.

Each Cloud Scheduler job pushes its ticks to one Cloud Run service with the OIDC token of
its service account (components/schedule.py). That account may invoke that service
(run.invoker on it) and hold nothing else, on no other resource; on the account itself,
only who mints its tokens or acts as it may be granted.

Links are read from dependencies, which the engine knows in a preview too (emails and
service names are unknown until deployed): the job's httpTarget on its account and
service, a grant's member on its account, a grant's target on its service or account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from rules.cloudrun import SERVICE_V2
from rules.iam import grants, iam_shape
from rules.props import known_str, type_name

JOB: Final = "gcp:cloudscheduler/job:Job"
ACCOUNT: Final = "gcp:serviceaccount/account:Account"
SERVICE_MEMBER: Final = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
ACCOUNT_MEMBER: Final = "gcp:serviceaccount/iAMMember:IAMMember"
RUN_INVOKER: Final = "roles/run.invoker"
# On the account itself: the Cloud Scheduler agent mints its OIDC tokens; whoever deploys
# or updates the job acts as it.
ON_THE_ACCOUNT: Final = frozenset(
    {"roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.serviceAccountUser"}
)


def _linked(resource: PolicyResource, prop: str, resource_type: str) -> list[PolicyResource]:
    return [
        d for d in resource.property_dependencies.get(prop, []) if d.resource_type == resource_type
    ]


def _identities(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, set[str]]]:
    """(account, URNs of the services its jobs push to) for each job's account."""
    targets: dict[str, tuple[PolicyResource, set[str]]] = {}
    for job in (r for r in resources if r.resource_type == JOB):
        services = {s.urn for s in _linked(job, "httpTarget", SERVICE_V2)}
        for account in _linked(job, "httpTarget", ACCOUNT):
            targets.setdefault(account.urn, (account, set()))[1].update(services)
    yield from targets.values()


def _holds(grant: PolicyResource, account: PolicyResource) -> bool:
    """Whether GRANT's member is ACCOUNT: by dependency, or by its known email."""
    if account in grant.property_dependencies.get("member", []):
        return True
    email = known_str(account.props, "email")
    return email is not None and any(
        member == f"serviceAccount:{email}"
        for _, member in grants(grant.props, iam_shape(grant.resource_type) or "member")
    )


def _least_privilege(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    iam = [r for r in args.resources if iam_shape(r.resource_type) is not None]
    for account, services in _identities(args.resources):
        for grant in iam:
            role = known_str(grant.props, "role") or "a role"
            if _holds(grant, account):
                on = {s.urn for s in _linked(grant, "name", SERVICE_V2)}
                if grant.resource_type == SERVICE_MEMBER and role == RUN_INVOKER and on <= services:
                    continue
                report_violation(
                    f"'{account.name}' is a Cloud Scheduler job's identity, but"
                    f" {type_name(grant.resource_type)} '{grant.name}' grants it {role}. A"
                    " schedule's identity may only invoke the service its jobs push to"
                    " (run.invoker on that service): remove the grant.",
                    grant.urn,
                )
            elif (
                grant.resource_type == ACCOUNT_MEMBER
                and account in _linked(grant, "serviceAccountId", ACCOUNT)
                and role not in ON_THE_ACCOUNT
            ):
                report_violation(
                    f"'{grant.name}' grants {role} on '{account.name}', a Cloud Scheduler job's"
                    " identity. Only its token minting (serviceAccountOpenIdTokenCreator, for"
                    " the Cloud Scheduler agent) and actAs (serviceAccountUser) belong there.",
                    grant.urn,
                )


schedule_identity_least_privilege = StackValidationPolicy(
    name="schedule-identity-least-privilege",
    description=(
        "A Cloud Scheduler job's service account holds run.invoker on the service it pushes"
        " to and no other role."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_least_privilege,
)
