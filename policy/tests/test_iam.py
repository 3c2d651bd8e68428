"""IAM policies against passing and failing hand-built resources."""

from __future__ import annotations

import json

import pytest

from rules.iam import no_authoritative_iam, no_project_level_scoped_roles, no_public_iam_members
from support import UNKNOWN, resource_args, validate

RUN_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
QUEUE_MEMBER = "gcp:cloudtasks/queueIamMember:QueueIamMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
INVOKER = "serviceAccount:orders-invoker@p.iam.gserviceaccount.com"


@pytest.mark.parametrize("public", ["allUsers", "allAuthenticatedUsers"])
@pytest.mark.parametrize("resource_type", [RUN_MEMBER, QUEUE_MEMBER, SA_MEMBER])
def test_public_member_is_reported(resource_type: str, public: str) -> None:
    args = resource_args(resource_type, {"role": "roles/run.invoker", "member": public}, "grant")
    [message] = validate(no_public_iam_members, args)
    assert public in message and "'grant'" in message
    assert "grant the role to the specific service account" in message


@pytest.mark.parametrize("resource_type", [RUN_MEMBER, QUEUE_MEMBER, SA_MEMBER])
def test_named_member_passes(resource_type: str) -> None:
    args = resource_args(resource_type, {"role": "roles/run.invoker", "member": INVOKER})
    assert validate(no_public_iam_members, args) == []


def test_public_member_inside_binding_and_policy_is_reported() -> None:
    binding = resource_args(
        "gcp:cloudtasks/queueIamBinding:QueueIamBinding",
        {"role": "roles/cloudtasks.enqueuer", "members": [INVOKER, "allUsers"]},
    )
    policy_data = {
        "bindings": [{"role": "roles/run.invoker", "members": ["allAuthenticatedUsers"]}]
    }
    policy = resource_args(
        "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy", {"policyData": json.dumps(policy_data)}
    )
    assert len(validate(no_public_iam_members, binding)) == 1
    assert len(validate(no_public_iam_members, policy)) == 1


def test_unknown_member_is_not_a_violation() -> None:
    args = resource_args(RUN_MEMBER, {"role": "roles/run.invoker", "member": UNKNOWN})
    assert validate(no_public_iam_members, args) == []


def test_non_iam_resource_is_ignored() -> None:
    args = resource_args("gcp:serviceaccount/account:Account", {"displayName": "allUsers"})
    assert validate(no_public_iam_members, args) == []


@pytest.mark.parametrize(
    ("resource_type", "additive"),
    [
        ("gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding", "ServiceIamMember"),
        ("gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy", "ServiceIamMember"),
        ("gcp:cloudtasks/queueIamBinding:QueueIamBinding", "QueueIamMember"),
        ("gcp:serviceaccount/iAMPolicy:IAMPolicy", "IAMMember"),
        ("gcp:projects/iAMBinding:IAMBinding", "IAMMember"),
    ],
)
def test_authoritative_resources_are_reported(resource_type: str, additive: str) -> None:
    [message] = validate(no_authoritative_iam, resource_args(resource_type, {}, "b"))
    assert "is authoritative" in message
    assert f"Use one additive {additive} per member" in message


@pytest.mark.parametrize("resource_type", [RUN_MEMBER, QUEUE_MEMBER, SA_MEMBER, PROJECT_MEMBER])
def test_additive_members_are_not_authoritative(resource_type: str) -> None:
    args = resource_args(resource_type, {"role": "roles/viewer", "member": INVOKER})
    assert validate(no_authoritative_iam, args) == []


@pytest.mark.parametrize(
    ("role", "where"),
    [
        ("roles/run.invoker", "gcp.cloudrunv2.ServiceIamMember"),
        ("roles/cloudtasks.enqueuer", "gcp.cloudtasks.QueueIamMember"),
        ("roles/iam.serviceAccountUser", "gcp.serviceaccount.IAMMember"),
        ("roles/iam.serviceAccountTokenCreator", "gcp.serviceaccount.IAMMember"),
    ],
)
def test_project_level_scoped_role_is_reported(role: str, where: str) -> None:
    args = resource_args(PROJECT_MEMBER, {"project": "p", "role": role, "member": INVOKER}, "g")
    [message] = validate(no_project_level_scoped_roles, args)
    assert f"{role} is granted at project level by 'g'" in message
    assert where in message


def test_folder_binding_and_project_policy_are_reported() -> None:
    folder = resource_args(
        "gcp:folder/iAMBinding:IAMBinding",
        {"folder": "folders/1", "role": "roles/run.invoker", "members": [INVOKER]},
    )
    data = {"bindings": [{"role": "roles/iam.serviceAccountUser", "members": [INVOKER]}]}
    project = resource_args("gcp:projects/iAMPolicy:IAMPolicy", {"policyData": json.dumps(data)})
    assert "at folder level" in validate(no_project_level_scoped_roles, folder)[0]
    assert "roles/iam.serviceAccountUser" in validate(no_project_level_scoped_roles, project)[0]


@pytest.mark.parametrize(
    ("resource_type", "role"),
    [
        (PROJECT_MEMBER, "roles/logging.logWriter"),
        (RUN_MEMBER, "roles/run.invoker"),
        (QUEUE_MEMBER, "roles/cloudtasks.enqueuer"),
        (SA_MEMBER, "roles/iam.serviceAccountUser"),
        (PROJECT_MEMBER, UNKNOWN),
    ],
)
def test_resource_scoped_or_harmless_grants_pass(resource_type: str, role: str) -> None:
    args = resource_args(resource_type, {"role": role, "member": INVOKER})
    assert validate(no_project_level_scoped_roles, args) == []
