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
)

# No escalation: nothing granted project-wide without a condition may let the deployer
# act as, or grant itself rights on, an account or secret the stacks don't name, or change
# the project's policy. tests/bootstrap/test_authority.py checks every unconditional
# project-level grant of both accounts against these (CIS GCP Benchmark 1.6 flags
# project-level Service Account User and Token Creator for the same reason).
ESCALATING: Final = frozenset(
    {
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.setIamPolicy",
        "iam.serviceAccounts.getAccessToken",
        "secretmanager.secrets.setIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    }
)

# Service accounts: IAM conditions can't scope them. Google's list of the services whose
# resources carry resource.name/resource.type into a condition (cloud.google.com/iam/docs/
# conditions-resource-attributes: "Other services and resource types do not recognize
# resource attributes") has secretmanager.googleapis.com and storage.googleapis.com but no
# iam.googleapis.com. So the bootstrap creates the accounts the stack names
# (gitops/stack_needs.py) and grants the deployer these on each account alone; the main
# program adopts them (components/identities.py, create_ignore_already_exists).
# - actAs (roles/iam.serviceAccountUser): deploy a service running as the runtime account,
#   set the queue's and the jobs' OIDC accounts (invoker, ticker);
# - getIamPolicy/setIamPolicy (a custom role, as no predefined role holds only these):
#   the program's grants on the accounts (enqueuers may act as the invoker, the Tasks and
#   Scheduler agents mint its and the ticker's tokens).
ACCOUNT_USER: Final = "roles/iam.serviceAccountUser"
ACCOUNT_SCOPED: Final = frozenset({"iam.serviceAccounts.actAs", "iam.serviceAccounts.setIamPolicy"})
ACCOUNT_IAM_PERMISSIONS: Final = (
    "iam.serviceAccounts.getIamPolicy",
    "iam.serviceAccounts.setIamPolicy",
)

# Secrets do carry resource attributes (same page: resource type
# secretmanager.googleapis.com/Secret, resource name "projects/PROJECT_NUMBER/secrets/
# SECRET_ID"), so the deployer changes a secret's policy through one project-level grant
# whose condition lists the secrets the stack names; the secrets need not exist when the
# bootstrap runs. getIamPolicy, a read, stays project-wide.
SECRET_SCOPED: Final = frozenset({"secretmanager.secrets.setIamPolicy"})
SECRET_RESOURCE_TYPE: Final = "secretmanager.googleapis.com/Secret"


def secret_condition(project_number: str, secrets: tuple[str, ...]) -> str:
    """The CEL condition admitting exactly SECRETS of the project."""
    names = " || ".join(
        f"resource.name == 'projects/{project_number}/secrets/{secret}'" for secret in secrets
    )
    return f"resource.type == '{SECRET_RESOURCE_TYPE}' && ({names})"


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
    holds only on the stack's accounts, secrets and payload buckets."""
    predefined = covered([*DEPLOYER_PREDEFINED_ROLES, PROJECT_IAM_ADMIN], snapshot)
    scoped = ACCOUNT_SCOPED | SECRET_SCOPED | set(payload_bucket_permissions())
    return sorted(deployer_needs() - predefined - scoped)


def previewer_permissions() -> list[str]:
    """Exactly the reads a refresh makes: roles/viewer lacks some (Pub/Sub and queue
    getIamPolicy) and holds writes (see docs/gitops.md)."""
    return sorted(previewer_needs())
