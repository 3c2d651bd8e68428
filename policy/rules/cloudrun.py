"""Cloud Run services: who they run as and who can reach them."""

from __future__ import annotations

import re
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import UNKNOWN, lookup

SERVICE_V2: Final = "gcp:cloudrunv2/service:Service"
JOB_V2: Final = "gcp:cloudrunv2/job:Job"
SERVICE_V1: Final = "gcp:cloudrun/service:Service"
# Where each type names its runtime account.
RUNTIME_ACCOUNT_PATH: Final[dict[str, tuple[str, ...]]] = {
    SERVICE_V2: ("template", "serviceAccount"),
    JOB_V2: ("template", "template", "serviceAccount"),
    SERVICE_V1: ("template", "spec", "serviceAccountName"),
}
# Google-managed defaults with broad project roles (Editor on older projects).
DEFAULT_ACCOUNT: Final = re.compile(
    r"^(\d+-compute@developer|[a-z][a-z0-9-]*@appspot)\.gserviceaccount\.com$"
)
INGRESS_ALL: Final = "INGRESS_TRAFFIC_ALL"


def _dedicated_account(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    path = RUNTIME_ACCOUNT_PATH.get(args.resource_type)
    if path is None:
        return
    # Unset under a known parent means Cloud Run falls back to the default compute
    # account; an unknown parent or value is judged at `pulumi up`.
    if lookup(args.props, *path[:-1]) is UNKNOWN:
        return
    account = lookup(args.props, *path)
    if account is UNKNOWN:
        return
    if account is None or (isinstance(account, str) and DEFAULT_ACCOUNT.match(account)):
        runs_as = "the default compute account" if account is None else account
        report_violation(
            f"'{args.name}' runs as {runs_as}, which holds broad project roles. Create a"
            " dedicated gcp.serviceaccount.Account for it and set"
            f" {'.'.join(path)} to that account's email.",
            None,
        )


def _ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SERVICE_V2:
        return
    ingress = lookup(args.props, "ingress")
    # Unset means Cloud Run's default, which is INGRESS_TRAFFIC_ALL.
    if ingress is None or ingress == INGRESS_ALL:
        setting = f"ingress {ingress}" if ingress else f"ingress unset, so {INGRESS_ALL}"
        report_violation(
            f"'{args.name}' accepts traffic from the internet ({setting}). Cloud Tasks"
            " reaches a service with internal ingress: set ingress to"
            " INGRESS_TRAFFIC_INTERNAL_ONLY unless other callers really come from outside.",
            None,
        )


cloudrun_dedicated_service_account = ResourceValidationPolicy(
    name="cloudrun-dedicated-service-account",
    description="Cloud Run runs as a dedicated service account, not a default one.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_dedicated_account,
)

cloudrun_ingress_not_all = ResourceValidationPolicy(
    name="cloudrun-ingress-not-all",
    description="Advisory: Cloud Run ingress 'all' exposes the service to the internet.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_ingress,
)
