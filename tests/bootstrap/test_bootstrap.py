"""The bootstrap program under mocks: every stack file, the security properties the
pipeline relies on, and config errors raised before anything is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plan.recorder import Recording, run_program, stack_config

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap"
STACKS = sorted(p.stem.removeprefix("Pulumi.") for p in BOOTSTRAP.glob("Pulumi.*.yaml"))
NS = "cloudrun-tasks-bootstrap"
REPO = "acme/cloudrun-tasks"


def run(stack: str, **overrides: Any) -> Recording:
    config = {**stack_config(BOOTSTRAP, stack), **{f"{NS}:{k}": v for k, v in overrides.items()}}
    return run_program(BOOTSTRAP, stack, config)


@pytest.fixture(scope="module", params=STACKS)
def recording(request: pytest.FixtureRequest) -> Recording:
    return run_program(BOOTSTRAP, request.param)


def one(recording: Recording, type_: str) -> dict[str, Any]:
    [resource] = recording.of_type(type_)
    return dict(resource.inputs)


def test_there_is_a_bootstrap_stack_per_environment() -> None:
    assert STACKS == ["dev", "prod", "staging"]


def test_state_bucket_is_versioned_private_and_uniform(recording: Recording) -> None:
    bucket = one(recording, "gcp:storage/bucket:Bucket")
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["forceDestroy"] is False
    assert recording.outputs["backendUrl"] == f"gs://{bucket['name']}"


def test_secrets_provider_names_the_key_it_creates(recording: Recording) -> None:
    ring = one(recording, "gcp:kms/keyRing:KeyRing")
    key = one(recording, "gcp:kms/cryptoKey:CryptoKey")
    provider = recording.outputs["secretsProvider"]
    assert provider.startswith("gcpkms://projects/")
    assert provider.endswith(
        f"/locations/{ring['location']}/keyRings/{ring['name']}/cryptoKeys/{key['name']}"
    )
    assert key["rotationPeriod"] == "7776000s"


def test_provider_trusts_only_github_and_this_repository(recording: Recording) -> None:
    provider = one(recording, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    assert provider["attributeCondition"].startswith(
        f"assertion.repository == '{REPO}'"
        " && assertion.event_name in ['push', 'pull_request', 'schedule']"
    )
    # Fork pull requests' privileged triggers can't sign in, whatever a workflow says.
    assert "pull_request_target" not in provider["attributeCondition"]
    assert "workflow_run" not in provider["attributeCondition"]
    environment_locked = "assertion.environment in" in provider["attributeCondition"]
    assert environment_locked == (recording.stack == "prod")


def test_prod_provider_admits_only_prod_environments() -> None:
    provider = one(run("prod"), "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["attributeCondition"] == (
        f"assertion.repository == '{REPO}'"
        " && assertion.event_name in ['push', 'pull_request', 'schedule']"
        " && assertion.environment in ['prod', 'prod-preview']"
    )


def test_each_account_is_impersonable_from_one_environment_only(recording: Recording) -> None:
    env = recording.stack
    grants = {
        r.name: dict(r.inputs)
        for r in recording.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    }
    # The other account grants are the deployer's on the main stack's accounts
    # (test_no_escalation.py): no one else may impersonate any account.
    # The image pusher only where images are built (dev): test_image_registry.py.
    pusher = {"image-pusher-github"} if env == "dev" else set()
    assert set(grants) == {"pipeline-deployer-github", "pipeline-previewer-github"} | pusher
    number = stack_config(BOOTSTRAP, env)[f"{NS}:projectNumber"]
    pool = f"projects/{number}/locations/global/workloadIdentityPools/github-{env}"
    for name, github_env in (
        ("pipeline-deployer-github", env),
        ("pipeline-previewer-github", f"{env}-preview"),
        *((name, f"{env}-image") for name in pusher),
    ):
        grant = grants[name]
        assert grant["role"] == "roles/iam.workloadIdentityUser"
        assert grant["member"] == (
            f"principal://iam.googleapis.com/{pool}/subject/repo:{REPO}:environment:{github_env}"
        )
    assert recording.outputs["workloadIdentityProvider"] == f"{pool}/providers/github"


def _roles(recording: Recording, account: str) -> set[str]:
    email = f"pulumi-{account}-{recording.stack}@"
    return {
        r.inputs["role"]
        for r in recording.resources
        if r.type.endswith("IAMMember")
        and email in str(r.inputs.get("member"))
        and r.type != "gcp:serviceaccount/iAMMember:IAMMember"
    }


def test_deployer_gets_exactly_these_roles(recording: Recording) -> None:
    # Why each, and that together they cover the program: test_authority.py. actAs and
    # account IAM are granted on each of the stack's accounts: test_no_escalation.py.
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    env = recording.stack.capitalize()
    # Under a condition on the names of the secrets the main stack names.
    secrets = {f"projects/{project}/roles/cloudrunTasksSecretIam{env}"}
    assert _roles(recording, "deployer") == {
        "roles/cloudtasks.queueAdmin",
        "roles/cloudscheduler.admin",
        "roles/monitoring.alertPolicyEditor",
        "roles/monitoring.dashboardEditor",
        "roles/monitoring.notificationChannelEditor",
        "roles/resourcemanager.projectIamAdmin",
        f"projects/{project}/roles/cloudrunTasksDeployer{env}",
        # Under a condition on payload buckets' names: test_payload_bucket_condition.py.
        f"projects/{project}/roles/cloudrunTasksPayloadBuckets{env}",
        "roles/storage.objectUser",
        "roles/cloudkms.cryptoKeyEncrypterDecrypter",
    } | (secrets if recording.stack != "dev" else set())


def test_previewer_can_read_but_not_change_the_project(recording: Recording) -> None:
    # Exact bindings (resource, member, condition) and negative cases: test_state_access.py;
    # what the custom role reads and that it writes nothing: test_authority.py.
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    assert _roles(recording, "previewer") == {
        f"projects/{project}/roles/cloudrunTasksPreviewer{recording.stack.capitalize()}",
        "roles/storage.objectViewer",
        "roles/cloudkms.cryptoKeyDecrypter",
    }


def test_state_grants_are_on_the_bucket_and_key_not_the_project(recording: Recording) -> None:
    bucket_grants = recording.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    key_grants = recording.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    bucket = one(recording, "gcp:storage/bucket:Bucket")["name"]
    assert len(bucket_grants) == len(key_grants) == 2
    assert {g.inputs["bucket"] for g in bucket_grants} == {bucket}
    project_roles = {
        r.inputs["role"] for r in recording.of_type("gcp:projects/iAMMember:IAMMember")
    }
    assert not project_roles & {
        "roles/storage.objectUser",
        "roles/storage.objectViewer",
        "roles/storage.admin",
    }


def test_only_additive_iam_no_keys_no_public_members(recording: Recording) -> None:
    types = {r.type for r in recording.resources}
    assert not [t for t in types if t.lower().endswith(("iambinding", "iampolicy"))]
    assert "gcp:serviceaccount/key:Key" not in types
    members = [str(r.inputs.get("member")) for r in recording.resources if "member" in r.inputs]
    assert members and not [m for m in members if m in ("allUsers", "allAuthenticatedUsers")]


def test_apis_stay_on_when_the_bootstrap_is_destroyed(recording: Recording) -> None:
    services = recording.of_type("gcp:projects/service:Service")
    assert {s.inputs["service"] for s in services} >= {
        "sts.googleapis.com",
        "cloudkms.googleapis.com",
    }
    assert all(s.inputs["disableOnDestroy"] is False for s in services)
    assert all(s.inputs["disableDependentServices"] is False for s in services)


def test_state_and_key_follow_protect(recording: Recording) -> None:
    protect = stack_config(BOOTSTRAP, recording.stack).get(f"{NS}:protect", True)
    kept = [
        r
        for r in recording.resources
        if r.type
        in ("gcp:storage/bucket:Bucket", "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKey:CryptoKey")
    ]
    assert len(kept) == 3 and all(r.protect is protect for r in kept)


def test_everything_waits_for_the_apis(recording: Recording) -> None:
    apis = {r.urn for r in recording.of_type("gcp:projects/service:Service")}
    for type_ in (
        "gcp:storage/bucket:Bucket",
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        "gcp:serviceaccount/account:Account",
    ):
        for resource in recording.of_type(type_):
            assert apis <= set(resource.dependencies), resource.name


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"githubRepository": "not a repo"}, "githubRepository: must be 'OWNER/REPOSITORY'"),
        ({"environment": "Prod-1"}, "environment: must be 2..13 lowercase letters and digits"),
        ({"projectNumber": "12ab"}, "projectNumber: must be the project's number"),
        ({"location": "us"}, "location: must be a region such as 'us-central1'"),
        ({"protect": "yes"}, "protect: must be true or false"),
        ({"stateVersionsKept": 0}, "stateVersionsKept: must be a whole number from 1 to 1000"),
        ({"stateBucket": "UPPER"}, "stateBucket: must be a bucket name"),
        ({"githubRepo": "acme/x"}, "githubRepo: unknown key; allowed keys: gcp:project,"),
    ],
)
def test_bad_config_is_rejected_by_key_before_any_resource(
    overrides: dict[str, Any], expected: str
) -> None:
    import pulumi

    seen = Recording(project="cloudrun-tasks-bootstrap", stack="dev")
    config = {**stack_config(BOOTSTRAP, "dev"), **{f"{NS}:{k}": v for k, v in overrides.items()}}
    with pytest.raises(pulumi.RunError, match="invalid bootstrap config") as error:
        run_program(BOOTSTRAP, "dev", config, into=seen)
    assert expected in str(error.value)
    assert seen.resources == []


def test_missing_repository_is_reported_as_required() -> None:
    import pulumi

    config = stack_config(BOOTSTRAP, "dev")
    del config[f"{NS}:githubRepository"]
    with pytest.raises(pulumi.RunError, match="githubRepository: is required"):
        run_program(BOOTSTRAP, "dev", config)


def test_restriction_can_be_turned_on_outside_prod() -> None:
    provider = one(
        run("staging", restrictToEnvironment=True),
        "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider",
    )
    assert provider["attributeCondition"].endswith("in ['staging', 'staging-preview']")
