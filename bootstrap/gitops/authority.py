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


# Payload buckets (components/payloads.py) are named `<pipeline>-payloads-<10 hex>`
# (components/name_rules.py). Every bucket permission but create is granted through its own
# custom role under an IAM condition on that name, so the deployer can't change the state
# bucket's settings or policy, or delete it:
# - IAM evaluates a bucket permission with resource.type "storage.googleapis.com/Bucket"
#   and resource.name "projects/_/buckets/BUCKET" (cloud.google.com/iam/docs/
#   conditions-resource-attributes; "projects/_/buckets/bucket" is also the resourceId of a
#   bucket's policy, storage/docs/json_api/v1/buckets/getIamPolicy); a project-level
#   conditional grant reaches every bucket of the project (iam/help/conditions/
#   resource-policies: "add conditions to the allow policy for a higher-level resource, such
#   as the project").
# - resource.name supports startsWith(), endsWith() and extract() (iam/docs/
#   conditions-attribute-reference); extract("projects/_/buckets/{p}-payloads-") is "" unless
#   the name holds the infix after the bucket prefix. Nothing there pins the 10 hex digits,
#   so any bucket of the project whose name has `-payloads-` is admitted: the state bucket is
#   excluded by name in case an admin gave it such a name.
# - storage.buckets.create is checked on the project, not on the bucket to be ("does not
#   have storage.buckets.create access to the Google Cloud project", the Storage API's 403,
#   e.g. googleapis/google-cloud-php#1040, firebase/firebase-admin-node#261): a condition on
#   the bucket's name would refuse every create. So create stays in the unconditional custom
#   role; alone it can't touch an existing bucket (a create of a taken name fails).
PAYLOAD_BUCKET_INFIX: Final = "-payloads-"
BUCKET_RESOURCE_TYPE: Final = "storage.googleapis.com/Bucket"
BUCKET_NAME_PREFIX: Final = "projects/_/buckets/"
UNSCOPABLE_BUCKET_PERMISSIONS: Final = frozenset({"storage.buckets.create"})


def payload_bucket_condition(state_bucket: str) -> str:
    """The CEL condition admitting payload buckets and never STATE_BUCKET."""
    return (
        f"resource.type == '{BUCKET_RESOURCE_TYPE}'"
        f" && resource.name.startsWith('{BUCKET_NAME_PREFIX}')"
        f" && resource.name.extract('{BUCKET_NAME_PREFIX}{{pipeline}}{PAYLOAD_BUCKET_INFIX}') != ''"
        f" && resource.name != '{BUCKET_NAME_PREFIX}{state_bucket}'"
    )


def payload_bucket_permissions() -> list[str]:
    """The bucket permissions the deployer holds only under payload_bucket_condition."""
    buckets = {p for p in deployer_needs() if p.startswith("storage.buckets.")}
    return sorted(buckets - UNSCOPABLE_BUCKET_PERMISSIONS)


def deployer_custom_permissions(snapshot: Roles) -> list[str]:
    """What the deployer needs that none of its predefined roles grants, less what it
    holds only on payload buckets."""
    predefined = covered([*DEPLOYER_PREDEFINED_ROLES, PROJECT_IAM_ADMIN], snapshot)
    return sorted(deployer_needs() - predefined - set(payload_bucket_permissions()))


def previewer_permissions() -> list[str]:
    """Exactly the reads a refresh makes: roles/viewer lacks some (Pub/Sub and queue
    getIamPolicy) and holds writes (see docs/gitops.md)."""
    return sorted(previewer_needs())
