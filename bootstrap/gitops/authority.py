"""Which roles give the deployer and the previewer what gitops/permissions.py says the
main program needs (docs/gitops.md, "What each role is for", says why each, with figures).

A predefined role is granted when every write it adds beyond the need acts on a
collection the program already manages (queues.purge beside queues.update); anything
else the program needs goes into one custom role per account, built from the table.
"""

from __future__ import annotations

from typing import Final

from gitops.permissions import deployer_needs, previewer_needs
from gitops.role_snapshot import Roles, covered

DEPLOYER_PREDEFINED_ROLES: Final = (
    # Queues and their IAM; cloudtasks.admin would add tasks.*: creating, running and
    # deleting tasks.
    "roles/cloudtasks.queueAdmin",
    # Schedules' jobs; beyond the need it adds cloudscheduler.jobs.run (run a job now), on
    # the jobs the program manages.
    "roles/cloudscheduler.admin",
    "roles/monitoring.alertPolicyEditor",
    "roles/monitoring.dashboardEditor",
    "roles/monitoring.notificationChannelEditor",
    # actAs: deploying a service that runs as the runtime account, and setting the
    # queue's OIDC account. The accounts are created by the main program after this
    # bootstrap, so the grant can't name them; see docs/gitops.md for the trade-off.
    "roles/iam.serviceAccountUser",
)

# Project-level grants are the one way to give the runtime per-database Firestore access
# (a conditional roles/datastore.user). resourcemanager.projects.setIamPolicy would let
# the deployer grant itself any role, so it holds Project IAM Admin only under Google's
# "limited IAM admin" condition: it may add or remove grants of these roles and no other
# (cloud.google.com/iam/docs/setting-limits-on-granting-roles).
PROJECT_IAM_ADMIN: Final = "roles/resourcemanager.projectIamAdmin"
PROJECT_GRANTABLE_ROLES: Final = ("roles/datastore.user",)


def grant_limit_expression() -> str:
    listed = ", ".join(f"'{role}'" for role in PROJECT_GRANTABLE_ROLES)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{listed}])"


def deployer_custom_permissions(snapshot: Roles) -> list[str]:
    """What the deployer needs that none of its predefined roles grants."""
    predefined = covered([*DEPLOYER_PREDEFINED_ROLES, PROJECT_IAM_ADMIN], snapshot)
    return sorted(deployer_needs() - predefined)


def previewer_permissions() -> list[str]:
    """Exactly the reads a refresh makes: roles/viewer lacks some (Pub/Sub and queue
    getIamPolicy) and holds writes (see docs/gitops.md)."""
    return sorted(previewer_needs())
