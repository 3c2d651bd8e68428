"""Who can read and change the pipeline's state: the exact bucket and key bindings of the
deployer and the previewer, and checks that fail if the previewer ever gets a write.

What `pulumi preview` and `pulumi up` do to a gs:// backend and a gcpkms:// key is cited
beside the role constants in bootstrap/gitops/identities.py and in docs/gitops.md.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from plan.recorder import Recording, run_program, stack_config

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap"
STACKS = sorted(p.stem.removeprefix("Pulumi.") for p in BOOTSTRAP.glob("Pulumi.*.yaml"))
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"

# The only roles on the bucket or key that change nothing: objectViewer has
# storage.objects.get/list and no create/delete/update
# (cloud.google.com/storage/docs/access-control/iam-roles); cryptoKeyDecrypter has
# cloudkms.cryptoKeyVersions.useToDecrypt and no useToEncrypt
# (cloud.google.com/kms/docs/reference/permissions-and-roles). Anything else, predefined
# (objectUser, objectCreator, objectAdmin, storage.admin, cryptoKeyEncrypter...) or custom,
# counts as a way to change state.
READ_ONLY_STATE_ROLES = frozenset(
    {"roles/storage.objectViewer", "roles/cloudkms.cryptoKeyDecrypter"}
)


class Binding(NamedTuple):
    role: str
    resource: str
    member: str
    condition: Any


def _bindings(recording: Recording, type_: str, resource_key: str) -> set[Binding]:
    return {
        Binding(
            r.inputs["role"],
            r.inputs[resource_key],
            r.inputs["member"],
            r.inputs.get("condition"),
        )
        for r in recording.of_type(type_)
    }


def bucket_bindings(recording: Recording) -> set[Binding]:
    return _bindings(recording, BUCKET_MEMBER, "bucket")


def key_bindings(recording: Recording) -> set[Binding]:
    return _bindings(recording, KEY_MEMBER, "cryptoKeyId")


def account(recording: Recording, kind: str) -> str:
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    return f"serviceAccount:pulumi-{kind}-{recording.stack}@{project}.iam.gserviceaccount.com"


def writes(bindings: Iterable[Binding], member: str) -> list[Binding]:
    """MEMBER's bindings that are not read-only: any way to write state or encrypt."""
    return [b for b in bindings if b.member == member and b.role not in READ_ONLY_STATE_ROLES]


@pytest.fixture(scope="module", params=STACKS)
def recording(request: pytest.FixtureRequest) -> Recording:
    return run_program(BOOTSTRAP, request.param)


def _bucket(recording: Recording) -> str:
    [bucket] = recording.of_type("gcp:storage/bucket:Bucket")
    return bucket.inputs["name"]


def _key_id(recording: Recording) -> str:
    [key] = recording.of_type("gcp:kms/cryptoKey:CryptoKey")
    return f"{key.name}-id"  # the mock's id for the key resource


def test_state_bucket_bindings_are_exactly_these(recording: Recording) -> None:
    bucket = _bucket(recording)
    assert bucket_bindings(recording) == {
        # up: checkpoint, history, backups, and the lock under .pulumi/locks/.
        Binding("roles/storage.objectUser", bucket, account(recording, "deployer"), None),
        # preview: reads meta.yaml, lists and reads .pulumi/stacks/; writes nothing, so no
        # write role at all and no condition to scope one.
        Binding("roles/storage.objectViewer", bucket, account(recording, "previewer"), None),
    }


def test_secrets_key_bindings_are_exactly_these(recording: Recording) -> None:
    key = _key_id(recording)
    assert key_bindings(recording) == {
        Binding(
            "roles/cloudkms.cryptoKeyEncrypterDecrypter", key, account(recording, "deployer"), None
        ),
        Binding("roles/cloudkms.cryptoKeyDecrypter", key, account(recording, "previewer"), None),
    }


def test_previewer_can_change_nothing_in_state(recording: Recording) -> None:
    previewer = account(recording, "previewer")
    granted = bucket_bindings(recording) | key_bindings(recording)
    assert [b for b in granted if b.member == previewer], "the previewer must read state"
    assert writes(granted, previewer) == []


def test_previewer_has_no_storage_or_kms_role_on_the_project(recording: Recording) -> None:
    """Project-level storage or KMS roles would reach this bucket and key too. Bucket
    metadata and IAM policy reads are the one exception (to refresh payload buckets,
    components/payloads.py): they show neither state nor a key."""
    previewer = account(recording, "previewer")
    roles = {
        r.inputs["role"]
        for r in recording.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["member"] == previewer
    }
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    role_id = f"cloudrunTasksPreviewer{recording.stack.capitalize()}"
    assert roles == {f"projects/{project}/roles/{role_id}"}
    [custom] = [
        r
        for r in recording.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
        if r.inputs["roleId"] == role_id
    ]
    assert custom.inputs["permissions"]
    held = custom.inputs["permissions"]
    assert [p for p in held if p.startswith("storage.")] == [
        "storage.buckets.get",
        "storage.buckets.getIamPolicy",
    ]
    assert not [p for p in held if p.startswith("cloudkms.")]


def test_deployer_check_is_not_vacuous(recording: Recording) -> None:
    """The same check flags the deployer, who must write state."""
    granted = bucket_bindings(recording) | key_bindings(recording)
    flagged = {b.role for b in writes(granted, account(recording, "deployer"))}
    assert flagged == {"roles/storage.objectUser", "roles/cloudkms.cryptoKeyEncrypterDecrypter"}


@pytest.mark.parametrize(
    "role",
    [
        "roles/storage.objectUser",
        "roles/storage.objectAdmin",
        "roles/storage.objectCreator",
        "roles/storage.admin",
        "roles/cloudkms.cryptoKeyEncrypter",
        "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        "projects/p/roles/someCustomRole",
    ],
)
def test_any_write_or_encrypt_role_on_the_previewer_is_caught(role: str) -> None:
    member = "serviceAccount:pulumi-previewer-dev@p.iam.gserviceaccount.com"
    granted = [
        Binding("roles/storage.objectViewer", "b", member, None),
        Binding(role, "b", member, None),
    ]
    assert writes(granted, member) == [Binding(role, "b", member, None)]


@pytest.fixture
def identities_module() -> Iterator[Any]:
    """bootstrap/gitops/identities.py as the bootstrap program imports it."""
    sys.path.insert(0, str(BOOTSTRAP))
    try:
        yield importlib.import_module("gitops.identities")
    finally:
        sys.path.remove(str(BOOTSTRAP))


@pytest.mark.parametrize(
    ("constant", "role", "exact_test"),
    [
        (
            "PREVIEWER_STATE_ROLE",
            "roles/storage.objectUser",
            test_state_bucket_bindings_are_exactly_these,
        ),
        (
            "PREVIEWER_KEY_ROLE",
            "roles/cloudkms.cryptoKeyEncrypterDecrypter",
            test_secrets_key_bindings_are_exactly_these,
        ),
    ],
)
def test_a_previewer_given_a_write_fails_these_tests(
    identities_module: Any,
    monkeypatch: pytest.MonkeyPatch,
    constant: str,
    role: str,
    exact_test: Callable[[Recording], None],
) -> None:
    """Mutation check: the program with a writable previewer grant is caught twice."""
    monkeypatch.setattr(identities_module, constant, role)
    mutated = run_program(BOOTSTRAP, "dev")
    previewer = account(mutated, "previewer")
    granted = bucket_bindings(mutated) | key_bindings(mutated)
    assert [b.role for b in writes(granted, previewer)] == [role]
    with pytest.raises(AssertionError):
        exact_test(mutated)


def test_deployer_holds_no_project_wide_bucket_change_but_create(recording: Recording) -> None:
    """The state bucket's settings, policy and existence are out of the deployer's reach:
    its unconditional custom role holds no storage.buckets.* but create (checked on the
    project, so a name condition can't scope it); the rest sits under the payload-bucket
    condition (judged in test_payload_bucket_condition.py)."""
    deployer = account(recording, "deployer")
    conditions = {
        r.inputs["role"]: r.inputs.get("condition")
        for r in recording.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["member"] == deployer
    }
    roles = {
        f"projects/{r.inputs['project']}/roles/{r.inputs['roleId']}": r.inputs["permissions"]
        for r in recording.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    }
    unconditional = {
        p
        for role, condition in conditions.items()
        if condition is None and role in roles
        for p in roles[role]
        if p.startswith("storage.")
    }
    assert unconditional == {"storage.buckets.create"}
    conditioned = {
        p
        for role, condition in conditions.items()
        if condition is not None and role in roles
        for p in roles[role]
    }
    assert {"storage.buckets.setIamPolicy", "storage.buckets.delete"} <= conditioned
