"""Which roles give the deployer and the previewer what gitops/permissions.py says the
main program needs, and nothing the narrowest choice could leave out (docs/gitops.md,
"What each role is for", gives the figures).

A predefined role is granted when every write it adds beyond the need acts on a
collection the program already manages (queues.purge beside queues.update); anything
else the program needs goes into one custom role per account, built from the table.
"""

from __future__ import annotations

from typing import Final

from gitops.permissions import deployer_needs, previewer_needs
from gitops.role_snapshot import Roles, covered

# Project roles of the deployer, each with what it is for.
DEPLOYER_PREDEFINED_ROLES: Final = {
    # cloudtasks.admin would add tasks.*: creating, running and deleting tasks.
    "roles/cloudtasks.queueAdmin": "queues and their IAM, no task access",
    "roles/monitoring.alertPolicyEditor": "alert policies",
    "roles/monitoring.dashboardEditor": "dashboards",
    "roles/monitoring.notificationChannelEditor": "notification channels",
    # actAs: deploying a service that runs as the runtime account, and setting the
    # queue's OIDC account. The accounts are created by the main program after this
    # bootstrap, so the grant can't name them; see docs/gitops.md for the trade-off.
    "roles/iam.serviceAccountUser": "run services and queues as the accounts it creates",
}

# Project-level grants are the one way to give the runtime per-database Firestore access
# (a conditional roles/datastore.user). resourcemanager.projects.setIamPolicy would let
# the deployer grant itself any role, so it holds Project IAM Admin only under Google's
# "limited IAM admin" condition: it may add or remove grants of these roles and no other
# (cloud.google.com/iam/docs/setting-limits-on-granting-roles).
PROJECT_IAM_ADMIN: Final = "roles/resourcemanager.projectIamAdmin"
PROJECT_GRANTABLE_ROLES: Final = ("roles/datastore.user",)


def grant_limit_expression(roles: tuple[str, ...] = PROJECT_GRANTABLE_ROLES) -> str:
    listed = ", ".join(f"'{role}'" for role in roles)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{listed}])"


def deployer_custom_permissions(snapshot: Roles) -> list[str]:
    """What the deployer needs that none of its predefined roles grants."""
    predefined = covered([*DEPLOYER_PREDEFINED_ROLES, PROJECT_IAM_ADMIN], snapshot)
    return sorted(deployer_needs() - predefined)


def previewer_permissions() -> list[str]:
    """Exactly the reads a refresh makes: roles/viewer lacks some (Pub/Sub and queue
    getIamPolicy) and holds writes (see docs/gitops.md)."""
    return sorted(previewer_needs())
