"""The deployer can create, update, delete and read every resource type the main program
registers, and the previewer can read them all and write nothing: proved from the kept
snapshot of Google's role contents (bootstrap/gitops/iam_snapshot/) and the permission
table (bootstrap/gitops/permissions.py), against what the programs register under mocks.

Each check is a function returning what is wrong, so that the negative tests can show it
report a missing type, a role that stopped covering, a permission Google doesn't know,
and a write given to the previewer.
"""

from __future__ import annotations

import copy
import importlib
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from plan.recorder import Recording, run_program, stack_config
from tests.infra.conftest import ROOT, STACKS

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap"
BOOTSTRAP_STACKS = sorted(p.stem.removeprefix("Pulumi.") for p in BOOTSTRAP.glob("Pulumi.*.yaml"))
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"

# A stack with every option switched on: stack-wide channels and emails, secrets, a paused
# queue, replayers, a named Firestore database, a paused schedule with a body, protection,
# labels, a payload bucket (the types only this config registers: NotificationChannel,
# Bucket, BucketIAMMember).
EVERY_OPTION: dict[str, Any] = {
    "gcp:project": "acme-tasks-test",
    "gcp:region": "us-central1",
    "cloudrun-tasks:protect": True,
    "cloudrun-tasks:labels": {"env": "test"},
    "cloudrun-tasks:alerts": {
        "notificationChannels": ["projects/acme-tasks-test/notificationChannels/1234567890123"],
        "emails": ["oncall@acme.example"],
    },
    "cloudrun-tasks:idempotency": {"database": "tasks-test", "location": "eur3", "ttl": "800h"},
    "cloudrun-tasks:pipelines": {
        "orders": {
            "location": "europe-west1",
            "service": {
                "image": "us-docker.pkg.dev/cloudrun/container/hello@sha256:" + "ab" * 32,
                "env": {"LOG_LEVEL": "info"},
                "secrets": {"API_KEY": "orders-api-key:latest"},
            },
            "queue": {"paused": True},
            "enqueuers": ["serviceAccount:api@acme-tasks-test.iam.gserviceaccount.com"],
            "replayers": ["serviceAccount:ops@acme-tasks-test.iam.gserviceaccount.com"],
            "payloads": {"enabled": True, "threshold": 100000},
            "schedules": {
                "hourly-sync": {
                    "cron": "15 * * * 1-5",
                    "timeZone": "Europe/Paris",
                    "body": {"kind": "sync"},
                    "path": "/sync",
                    "paused": True,
                }
            },
        }
    },
}


def bootstrap_module(name: str) -> ModuleType:
    """A bootstrap module as the bootstrap program imports it (`gitops.<name>`)."""
    sys.path.insert(0, str(BOOTSTRAP))
    try:
        return importlib.import_module(f"gitops.{name}")
    finally:
        sys.path.remove(str(BOOTSTRAP))


permissions = bootstrap_module("permissions")
role_snapshot = bootstrap_module("role_snapshot")
authority = bootstrap_module("authority")
Roles = Mapping[str, frozenset[str]]


@pytest.fixture(scope="module")
def program() -> list[Recording]:
    """The main program from every stack file and from the every-option config."""
    stacks = [run_program(ROOT, stack) for stack in STACKS]
    return [*stacks, run_program(ROOT, "test", copy.deepcopy(EVERY_OPTION))]


@pytest.fixture(scope="module")
def program_types(program: list[Recording]) -> set[str]:
    return {r.type for rec in program for r in rec.resources if r.custom}


@pytest.fixture(scope="module")
def snapshot() -> Roles:
    return role_snapshot.snapshot()


@pytest.fixture(scope="module", params=BOOTSTRAP_STACKS)
def bootstrap(request: pytest.FixtureRequest) -> Recording:
    return run_program(BOOTSTRAP, request.param)


# --- the checks ----------------------------------------------------------------------


def types_without_permissions(types: Iterable[str], table: Mapping[str, Any]) -> set[str]:
    return set(types) - set(table)


def unknown_permissions(permission_names: Iterable[str], snapshot: Roles) -> set[str]:
    """Names no role in the snapshot holds: misspelt, renamed or made up."""
    known = frozenset().union(*snapshot.values())
    return set(permission_names) - known


def member_of(recording: Recording, kind: str) -> str:
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    return f"serviceAccount:pulumi-{kind}-{recording.stack}@{project}.iam.gserviceaccount.com"


def project_grants(recording: Recording, kind: str) -> dict[str, Any]:
    """Role -> condition of KIND's project-level grants."""
    member = member_of(recording, kind)
    return {
        r.inputs["role"]: r.inputs.get("condition")
        for r in recording.of_type(PROJECT_MEMBER)
        if r.inputs["member"] == member
    }


def granted_permissions(recording: Recording, roles: Iterable[str], snapshot: Roles) -> set[str]:
    """What ROLES hold: predefined ones from the snapshot, custom ones as registered."""
    custom = {
        f"projects/{r.inputs['project']}/roles/{r.inputs['roleId']}": r.inputs["permissions"]
        for r in recording.of_type(CUSTOM_ROLE)
    }
    held: set[str] = set()
    for role in roles:
        held |= snapshot[role] if role.startswith("roles/") else set(custom[role])
    return held


def uncovered(needs: Iterable[str], held: Iterable[str]) -> set[str]:
    return set(needs) - set(held)


def foreign_writes(role: str, needs: frozenset[str], snapshot: Roles) -> set[str]:
    """Writes ROLE adds beyond NEEDS on collections the program doesn't manage."""
    managed = {p.rsplit(".", 1)[0] for p in needs}
    extra = role_snapshot.writes(snapshot[role] - needs, snapshot)
    return {p for p in extra if p.rsplit(".", 1)[0] not in managed}


# --- resource types and the table ------------------------------------------------------


def test_every_type_the_program_registers_has_its_permissions(program_types: set[str]) -> None:
    assert types_without_permissions(program_types, permissions.granted()) == set()


def test_the_every_option_config_reaches_types_the_stacks_do_not(
    program: list[Recording],
) -> None:
    *stacks, every = program
    stack_types = {r.type for rec in stacks for r in rec.resources if r.custom}
    every_types = {r.type for r in every.resources if r.custom}
    assert every_types >= stack_types
    # Email channels (no stack lists emails); dev's payload bucket is in both.
    assert every_types - stack_types == {"gcp:monitoring/notificationChannel:NotificationChannel"}


def test_a_new_type_without_permissions_is_caught(program_types: set[str]) -> None:
    table = {t: p for t, p in permissions.granted().items() if t != "gcp:pubsub/topic:Topic"}
    assert types_without_permissions(program_types, table) == {"gcp:pubsub/topic:Topic"}
    new = {*program_types, "gcp:storage/bucketObject:BucketObject"}
    assert types_without_permissions(new, permissions.granted()) == {
        "gcp:storage/bucketObject:BucketObject"
    }


def test_nothing_is_granted_for_a_type_the_program_does_not_register(
    program_types: set[str],
) -> None:
    """Least privilege: each granted entry is used; a type waiting in NOT_YET_GRANTED
    must leave it once the program registers it, or the deployer would lack it."""
    assert set(permissions.granted()) <= program_types
    assert permissions.NOT_YET_GRANTED.isdisjoint(program_types)
    assert set(permissions.RESOURCE_PERMISSIONS) >= permissions.NOT_YET_GRANTED


def test_every_stack_needs_the_logs_based_metric_permissions(program: list[Recording]) -> None:
    """Every pipeline has a claims-lost metric: a stack without schedules (prod, staging)
    registers one too, so its deployer needs logging.logMetrics.* and its previewer the read."""
    unscheduled = [rec.stack for rec in program if not rec.of_type("gcp:cloudscheduler/job:Job")]
    assert unscheduled, "a stack without schedules to judge"
    for rec in program:
        assert rec.of_type("gcp:logging/metric:Metric"), rec.stack
    metric = permissions.granted()["gcp:logging/metric:Metric"]
    assert metric.writes | metric.read <= permissions.deployer_needs()
    assert metric.read == {"logging.logMetrics.get"} <= permissions.previewer_needs()


def test_every_permission_in_the_table_exists_at_google(snapshot: Roles) -> None:
    names = {
        p for entry in permissions.RESOURCE_PERMISSIONS.values() for p in entry.writes | entry.read
    }
    assert unknown_permissions(names, snapshot) == set()


@pytest.mark.parametrize(
    "refused",
    [
        "datastore.indexes.update",  # the name before Google renamed it datastore.schemas.*
        "pubsub.topics.setIamPolicies",
        "cloudtasks.queue.create",
    ],
)
def test_a_permission_google_does_not_know_is_caught(snapshot: Roles, refused: str) -> None:
    assert unknown_permissions({"pubsub.topics.create", refused}, snapshot) == {refused}


def test_reads_are_reads_and_changes_are_writes(snapshot: Roles) -> None:
    """The verb rule (Google's viewer roles define a read) sorts the table as expected:
    only the service agent, whose creation Google checks no permission for, changes
    nothing a permission guards."""
    for type_, entry in permissions.RESOURCE_PERMISSIONS.items():
        assert role_snapshot.writes(entry.read, snapshot) == set(), type_
    unguarded = {
        type_
        for type_, entry in permissions.RESOURCE_PERMISSIONS.items()
        if not role_snapshot.writes(entry.create, snapshot)
    }
    assert unguarded == {"gcp:projects/serviceIdentity:ServiceIdentity"}


# --- the deployer ----------------------------------------------------------------------


def test_deployer_can_create_update_delete_and_read_every_type(
    bootstrap: Recording, snapshot: Roles
) -> None:
    """At project level; actAs and account IAM are held on each of the stack's accounts,
    secret IAM under a condition naming its secrets (both: test_no_escalation.py)."""
    held = granted_permissions(bootstrap, project_grants(bootstrap, "deployer"), snapshot)
    scoped = authority.ACCOUNT_SCOPED | authority.SECRET_SCOPED
    assert uncovered(permissions.deployer_needs(), held) - scoped == set()
    assert uncovered(permissions.deployer_needs(), held) <= scoped


def test_the_grants_issue_18_reported_are_caught(snapshot: Roles) -> None:
    """The deployer's roles before this check existed: the first `pulumi up` would have
    stopped with 403 at the first Pub/Sub, Firestore, Monitoring or project grant."""
    before = role_snapshot.covered(
        [
            "roles/serviceusage.serviceUsageAdmin",
            "roles/cloudtasks.admin",
            "roles/run.admin",
            "roles/iam.serviceAccountAdmin",
            "roles/iam.serviceAccountUser",
        ],
        snapshot,
    ) | {
        "secretmanager.secrets.get",
        "secretmanager.secrets.getIamPolicy",
        "secretmanager.secrets.setIamPolicy",
    }
    assert uncovered(permissions.deployer_needs(), before) >= {
        "pubsub.topics.create",
        "pubsub.subscriptions.create",
        "pubsub.topics.attachSubscription",
        "pubsub.topics.setIamPolicy",
        "pubsub.subscriptions.setIamPolicy",
        "datastore.databases.create",
        "monitoring.alertPolicies.create",
        "monitoring.dashboards.create",
        "monitoring.notificationChannels.create",
        "resourcemanager.projects.setIamPolicy",
    }


def test_deployer_custom_role_holds_only_what_the_table_needs(bootstrap: Recording) -> None:
    [role] = [
        r
        for r in bootstrap.of_type(CUSTOM_ROLE)
        if r.inputs["roleId"].startswith("cloudrunTasksDeployer")
    ]
    assert set(role.inputs["permissions"]) <= permissions.deployer_needs()
    # Nothing a predefined grant already gives, so the predefined roles carry their share.
    assert "cloudtasks.queues.create" not in role.inputs["permissions"]


@pytest.mark.parametrize(
    ("role", "permission"),
    [
        ("roles/cloudtasks.queueAdmin", "cloudtasks.queues.create"),
        ("roles/monitoring.notificationChannelEditor", "monitoring.notificationChannels.create"),
        ("roles/resourcemanager.projectIamAdmin", "resourcemanager.projects.setIamPolicy"),
    ],
)
def test_a_role_that_stops_covering_is_caught(
    bootstrap: Recording, snapshot: Roles, role: str, permission: str
) -> None:
    """Google drops a permission from a granted role (a newer snapshot): the deployer
    as registered no longer covers it."""
    shrunk = {**snapshot, role: snapshot[role] - {permission}}
    held = granted_permissions(bootstrap, project_grants(bootstrap, "deployer"), shrunk)
    scoped = authority.ACCOUNT_SCOPED | authority.SECRET_SCOPED
    assert uncovered(permissions.deployer_needs(), held) - scoped == {permission}


def test_a_grant_removed_from_the_deployer_is_caught(bootstrap: Recording, snapshot: Roles) -> None:
    roles = set(project_grants(bootstrap, "deployer")) - {"roles/monitoring.dashboardEditor"}
    held = granted_permissions(bootstrap, roles, snapshot)
    scoped = authority.ACCOUNT_SCOPED | authority.SECRET_SCOPED
    assert uncovered(permissions.deployer_needs(), held) - scoped == {
        "monitoring.dashboards.create",
        "monitoring.dashboards.update",
        "monitoring.dashboards.delete",
        "monitoring.dashboards.get",
    }


def test_project_iam_is_limited_to_the_roles_the_program_grants(
    bootstrap: Recording, program: list[Recording]
) -> None:
    granted_by_program = {r.inputs["role"] for rec in program for r in rec.of_type(PROJECT_MEMBER)}
    assert granted_by_program == set(authority.PROJECT_GRANTABLE_ROLES)
    condition = project_grants(bootstrap, "deployer")["roles/resourcemanager.projectIamAdmin"]
    assert condition["expression"] == (
        "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
        ".hasOnly(['roles/datastore.user'])"
    )
    # Every other deployer grant is unconditional but the payload buckets' and the
    # secrets' roles (the dev stack names no secret).
    conditional = {r for r, c in project_grants(bootstrap, "deployer").items() if c is not None} - {
        authority.PROJECT_IAM_ADMIN
    }
    project = stack_config(BOOTSTRAP, bootstrap.stack)["gcp:project"]
    secrets = f"projects/{project}/roles/cloudrunTasksSecretIam{bootstrap.stack.capitalize()}"
    assert conditional - {secrets} == {payload_role(bootstrap)}
    assert (secrets in conditional) is (bootstrap.stack != "dev")


def payload_role(recording: Recording) -> str:
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    return f"projects/{project}/roles/cloudrunTasksPayloadBuckets{recording.stack.capitalize()}"


def bucket_writes_held_unconditionally(
    recording: Recording, grants: Mapping[str, Any], snapshot: Roles
) -> set[str]:
    """storage.buckets.* writes the deployer holds on every bucket of the project."""
    unconditional = [r for r, c in grants.items() if c is None]
    held = granted_permissions(recording, unconditional, snapshot)
    return {p for p in role_snapshot.writes(held, snapshot) if p.startswith("storage.buckets.")}


def test_bucket_writes_are_held_only_on_payload_buckets(
    bootstrap: Recording, snapshot: Roles
) -> None:
    """A permission under a condition covers only what the condition admits: the bucket
    types' needs are covered by the conditional role (tests/bootstrap/
    test_payload_bucket_condition.py judges which buckets it admits), and no unconditional
    grant reaches the state bucket's settings, policy or existence. Create is the one
    exception: Google checks it on the project, where a bucket-name condition can't apply."""
    grants = project_grants(bootstrap, "deployer")
    assert bucket_writes_held_unconditionally(bootstrap, grants, snapshot) == {
        "storage.buckets.create"
    }
    bucket_types = [
        permissions.RESOURCE_PERMISSIONS[t]
        for t in ("gcp:storage/bucket:Bucket", "gcp:storage/bucketIAMMember:BucketIAMMember")
    ]
    bucket_needs = frozenset().union(*(e.writes | e.read for e in bucket_types))
    on_payloads = granted_permissions(bootstrap, [payload_role(bootstrap)], snapshot)
    assert on_payloads == bucket_needs - {"storage.buckets.create"}
    condition = grants[payload_role(bootstrap)]
    [state] = bootstrap.of_type("gcp:storage/bucket:Bucket")
    assert condition["expression"] == authority.payload_bucket_condition(state.inputs["name"])


def test_bucket_writes_granted_project_wide_are_caught(
    bootstrap: Recording, snapshot: Roles
) -> None:
    """The design this replaced: the payload role granted without its condition."""
    grants = {**project_grants(bootstrap, "deployer"), payload_role(bootstrap): None}
    assert bucket_writes_held_unconditionally(bootstrap, grants, snapshot) == {
        "storage.buckets.create",
        "storage.buckets.update",
        "storage.buckets.delete",
        "storage.buckets.setIamPolicy",
    }


def test_predefined_roles_add_no_writes_beyond_the_collections_the_program_manages(
    snapshot: Roles,
) -> None:
    needs = permissions.deployer_needs()
    for role in [*authority.DEPLOYER_PREDEFINED_ROLES, authority.PROJECT_IAM_ADMIN]:
        assert foreign_writes(role, needs, snapshot) == set(), role


@pytest.mark.parametrize(
    ("role", "example"),
    [
        ("roles/cloudtasks.admin", "cloudtasks.tasks.create"),
        ("roles/run.admin", "run.jobs.create"),
        ("roles/pubsub.admin", "pubsub.snapshots.create"),
        ("roles/datastore.owner", "datastore.entities.delete"),
        ("roles/serviceusage.serviceUsageAdmin", "serviceusage.quotas.update"),
        ("roles/iam.serviceAccountAdmin", "iam.serviceAccountApiKeyBindings.create"),
        ("roles/secretmanager.admin", "secretmanager.versions.access"),
        ("roles/monitoring.editor", "monitoring.timeSeries.create"),
        ("roles/logging.configWriter", "logging.sinks.create"),
    ],
)
def test_broader_roles_are_refused_by_the_same_rule(
    snapshot: Roles, role: str, example: str
) -> None:
    assert example in foreign_writes(role, permissions.deployer_needs(), snapshot)


# --- the previewer ---------------------------------------------------------------------


def test_previewer_reads_every_type_and_writes_nothing(
    bootstrap: Recording, snapshot: Roles
) -> None:
    grants = project_grants(bootstrap, "previewer")
    assert all(condition is None for condition in grants.values())
    held = granted_permissions(bootstrap, grants, snapshot)
    assert uncovered(permissions.previewer_needs(), held) == set()
    assert role_snapshot.writes(held, snapshot) == set()


def test_roles_viewer_would_miss_reads_and_hold_writes(snapshot: Roles) -> None:
    """Why the previewer has a custom role instead of roles/viewer."""
    viewer = snapshot["roles/viewer"]
    assert uncovered(permissions.previewer_needs(), viewer) == {
        "cloudtasks.queues.getIamPolicy",
        "pubsub.subscriptions.getIamPolicy",
        "pubsub.topics.getIamPolicy",
        "storage.buckets.get",
        "storage.buckets.getIamPolicy",
    }
    assert {"iam.serviceAccounts.create", "storage.buckets.create"} & viewer == set()
    assert len(role_snapshot.writes(viewer, snapshot)) > 100


def test_a_write_given_to_the_previewer_is_caught(bootstrap: Recording, snapshot: Roles) -> None:
    grants = project_grants(bootstrap, "previewer")
    held = granted_permissions(bootstrap, grants, snapshot) | {"pubsub.topics.create"}
    assert role_snapshot.writes(held, snapshot) == {"pubsub.topics.create"}
    with_editor = granted_permissions(bootstrap, [*grants, "roles/pubsub.editor"], snapshot)
    assert "pubsub.topics.delete" in role_snapshot.writes(with_editor, snapshot)


def test_a_read_missing_from_the_previewer_is_caught(bootstrap: Recording, snapshot: Roles) -> None:
    [role] = [
        r
        for r in bootstrap.of_type(CUSTOM_ROLE)
        if r.inputs["roleId"].startswith("cloudrunTasksPreviewer")
    ]
    held = set(role.inputs["permissions"]) - {"secretmanager.secrets.getIamPolicy"}
    assert uncovered(permissions.previewer_needs(), held) == {"secretmanager.secrets.getIamPolicy"}


# --- role names ----------------------------------------------------------------------


def test_every_predefined_role_the_bootstrap_grants_is_in_the_snapshot(
    bootstrap: Recording, snapshot: Roles
) -> None:
    roles = {
        r.inputs["role"]
        for r in bootstrap.resources
        if r.type.lower().endswith("iammember") and r.inputs["role"].startswith("roles/")
    }
    assert roles and roles - set(snapshot) == set()
    with pytest.raises(KeyError, match=r"roles/pubsub\.editr"):
        role_snapshot.covered(["roles/pubsub.editr"], snapshot)


# --- docs/gitops.md --------------------------------------------------------------------


def test_the_figures_in_the_docs_are_the_snapshots(snapshot: Roles) -> None:
    docs = (ROOT / "docs" / "gitops.md").read_text()
    text = re.sub(r"\s+", " ", docs)
    needs = permissions.deployer_needs()
    extra = {
        role: len(role_snapshot.writes(snapshot[role] - needs, snapshot))
        for role in ("roles/run.admin", "roles/monitoring.editor")
    }
    for phrase in (
        f"the rest of the table, {len(authority.deployer_custom_permissions(snapshot))} "
        "permissions",
        f"exactly the reads of the table, {len(authority.previewer_permissions())} permissions",
        f"`run.admin` would add {extra['roles/run.admin']} writes",
        f"`monitoring.editor` would add {extra['roles/monitoring.editor']} writes",
        f"in the snapshot has {len(snapshot['roles/viewer'])} permissions",
        f"`roles/iam.securityReviewer` ({len(snapshot['roles/iam.securityReviewer'])} permissions)",
        f"on that repository ({len(snapshot['roles/artifactregistry.writer'])} permissions in the"
        " snapshot",
    ):
        assert phrase in text
    for role in [*authority.DEPLOYER_PREDEFINED_ROLES, authority.PROJECT_IAM_ADMIN]:
        assert f"`{role}`" in text
