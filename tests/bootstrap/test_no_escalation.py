"""No escalation: neither pipeline account holds, project-wide and without a condition, a
permission that lets it act as or take over an identity, a secret or the project's policy;
the deployer holds actAs and account IAM on exactly the accounts the main stack creates,
and secret IAM under a condition that admits exactly the secrets the stack names.

Judged from the kept snapshot of Google's role contents (predefined roles) and what the
bootstrap registers under mocks (custom roles, grants, conditions); the secret condition is
compiled and evaluated by cel-python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType

from plan.recorder import Recording, run_program, stack_config
from tests.bootstrap.test_authority import (
    BOOTSTRAP,
    BOOTSTRAP_STACKS,
    CUSTOM_ROLE,
    authority,
    bootstrap_module,
    granted_permissions,
    member_of,
    project_grants,
    role_snapshot,
)
from tests.infra.conftest import ROOT

ACCOUNT = "gcp:serviceaccount/account:Account"
ACCOUNT_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
stack_needs = bootstrap_module("stack_needs")
# The workflows' own accounts: deployer, previewer, image pusher.
PIPELINE_ACCOUNTS = ("pulumi-", "image-pusher-")
Roles = Mapping[str, frozenset[str]]


@pytest.fixture(scope="module")
def snapshot() -> Roles:
    return role_snapshot.snapshot()


@pytest.fixture(scope="module", params=BOOTSTRAP_STACKS)
def pair(request: pytest.FixtureRequest) -> tuple[Recording, Recording]:
    """One environment's bootstrap and its main stack, both from their stack files."""
    return run_program(BOOTSTRAP, request.param), run_program(ROOT, request.param)


# --- the checks ----------------------------------------------------------------------


def escalating_unconditional(
    recording: Recording, grants: Mapping[str, Any], snapshot: Roles
) -> set[str]:
    """ESCALATING permissions held through project-level grants without a condition."""
    unconditional = [role for role, condition in grants.items() if condition is None]
    return granted_permissions(recording, unconditional, snapshot) & authority.ESCALATING


def bootstrap_accounts(bootstrap: Recording) -> dict[str, str]:
    """Account id -> display name of the stack accounts the bootstrap creates."""
    return {
        r.inputs["accountId"]: r.inputs["displayName"]
        for r in bootstrap.of_type(ACCOUNT)
        if not r.inputs["accountId"].startswith(PIPELINE_ACCOUNTS)
    }


def program_accounts(program: Recording) -> dict[str, str]:
    return {r.inputs["accountId"]: r.inputs["displayName"] for r in program.of_type(ACCOUNT)}


def missing_from_bootstrap(bootstrap: Recording, program: Recording) -> list[str]:
    """What the main stack needs that this bootstrap run did not grant: the admin's
    re-run is due. Accounts by id (or a display name the program would change), secrets
    by id."""
    made = bootstrap_accounts(bootstrap)
    problems = [
        f"account {account_id}"
        for account_id, display in program_accounts(program).items()
        if made.get(account_id) != display
    ]
    condition = secret_grant(bootstrap)
    number = stack_config(BOOTSTRAP, bootstrap.stack)["cloudrun-tasks-bootstrap:projectNumber"]
    for secret in sorted({r.inputs["secretId"] for r in program.of_type(SECRET_MEMBER)}):
        name = f"projects/{number}/secrets/{secret}"
        if condition is None or not admits(condition["expression"], name):
            problems.append(f"secret {secret}")
    return problems


def secret_grant(bootstrap: Recording) -> dict[str, Any] | None:
    project = stack_config(BOOTSTRAP, bootstrap.stack)["gcp:project"]
    role = f"projects/{project}/roles/cloudrunTasksSecretIam{bootstrap.stack.capitalize()}"
    return project_grants(bootstrap, "deployer").get(role)


def admits(expression: str, name: str, type_: str = authority.SECRET_RESOURCE_TYPE) -> bool:
    env = celpy.Environment()
    result = env.program(env.compile(expression)).evaluate(
        {"resource": json_to_cel({"type": type_, "name": name})}
    )
    assert isinstance(result, BoolType), result
    return bool(result)


def account_grants(bootstrap: Recording, member: str) -> dict[str, set[str]]:
    """Account resource name (as the mocks spell it) -> roles MEMBER holds on it."""
    grants: dict[str, set[str]] = {}
    for r in bootstrap.of_type(ACCOUNT_MEMBER):
        if r.inputs["member"] == member:
            grants.setdefault(r.inputs["serviceAccountId"], set()).add(r.inputs["role"])
    return grants


# --- no unconditional escalation ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["deployer", "previewer"])
def test_no_unconditional_project_grant_escalates(
    pair: tuple[Recording, Recording], snapshot: Roles, kind: str
) -> None:
    bootstrap, _ = pair
    grants = project_grants(bootstrap, kind)
    assert grants
    assert escalating_unconditional(bootstrap, grants, snapshot) == set()


def test_no_account_of_the_bootstrap_holds_an_escalating_unconditional_grant(
    pair: tuple[Recording, Recording], snapshot: Roles
) -> None:
    """Every member the bootstrap grants anything at project level (deployer, previewer,
    and any account a later change adds), not only the two named above."""
    bootstrap, _ = pair
    members = {r.inputs["member"] for r in bootstrap.of_type(PROJECT_MEMBER)}
    assert members
    for member in members:
        grants = {
            r.inputs["role"]: r.inputs.get("condition")
            for r in bootstrap.of_type(PROJECT_MEMBER)
            if r.inputs["member"] == member
        }
        assert escalating_unconditional(bootstrap, grants, snapshot) == set(), member


@pytest.mark.parametrize(
    ("extra", "caught"),
    [
        # The grants issue 28 reported: project-wide Service Account User, and the custom
        # role's account and secret IAM.
        ("roles/iam.serviceAccountUser", {"iam.serviceAccounts.actAs"}),
        ("roles/iam.serviceAccountAdmin", {"iam.serviceAccounts.setIamPolicy"}),
        ("roles/secretmanager.admin", {"secretmanager.secrets.setIamPolicy"}),
        ("roles/resourcemanager.projectIamAdmin", {"resourcemanager.projects.setIamPolicy"}),
    ],
)
def test_an_escalating_unconditional_grant_is_caught(
    pair: tuple[Recording, Recording], snapshot: Roles, extra: str, caught: set[str]
) -> None:
    bootstrap, _ = pair
    grants = {**project_grants(bootstrap, "deployer"), extra: None}
    assert escalating_unconditional(bootstrap, grants, snapshot) == caught


def test_a_custom_role_with_token_creation_is_caught(
    pair: tuple[Recording, Recording], snapshot: Roles
) -> None:
    bootstrap, _ = pair
    widened = [
        dataclasses.replace(
            r,
            inputs={
                **r.inputs,
                "permissions": [*r.inputs["permissions"], "iam.serviceAccounts.getAccessToken"],
            },
        )
        if r.type == CUSTOM_ROLE and r.inputs["roleId"].startswith("cloudrunTasksDeployer")
        else r
        for r in bootstrap.resources
    ]
    recording = dataclasses.replace(bootstrap, resources=widened)
    grants = project_grants(recording, "deployer")
    assert escalating_unconditional(recording, grants, snapshot) == {
        "iam.serviceAccounts.getAccessToken"
    }


# --- accounts: granted one by one ---------------------------------------------------------


def test_the_bootstrap_creates_exactly_the_accounts_the_stack_creates(
    pair: tuple[Recording, Recording],
) -> None:
    """Same ids and display names: the program adopts each account without a diff."""
    bootstrap, program = pair
    assert program_accounts(program)
    assert bootstrap_accounts(bootstrap) == program_accounts(program)
    assert missing_from_bootstrap(bootstrap, program) == []
    adopted = [r for r in program.of_type(ACCOUNT) if r.inputs.get("createIgnoreAlreadyExists")]
    assert len(adopted) == len(program.of_type(ACCOUNT))


def test_the_deployer_may_act_as_and_grant_on_each_stack_account_alone(
    pair: tuple[Recording, Recording], snapshot: Roles
) -> None:
    bootstrap, _ = pair
    project = stack_config(BOOTSTRAP, bootstrap.stack)["gcp:project"]
    iam_role = f"projects/{project}/roles/cloudrunTasksAccountIam{bootstrap.stack.capitalize()}"
    grants = account_grants(bootstrap, member_of(bootstrap, "deployer"))
    stack_accounts = {
        r.outputs["name"]
        for r in bootstrap.of_type(ACCOUNT)
        if not r.inputs["accountId"].startswith(PIPELINE_ACCOUNTS)
    }
    # Exactly the stack's accounts: not the deployer or previewer themselves.
    assert set(grants) == stack_accounts
    for roles in grants.values():
        assert roles == {authority.ACCOUNT_USER, iam_role}
        held = granted_permissions(bootstrap, roles, snapshot)
        assert held >= authority.ACCOUNT_SCOPED
        # Never token creation: the deployer acts through the services it deploys.
        assert "iam.serviceAccounts.getAccessToken" not in held


# --- secrets: one condition naming them ------------------------------------------------------


def test_the_secret_condition_admits_exactly_the_stacks_secrets(
    pair: tuple[Recording, Recording],
) -> None:
    bootstrap, program = pair
    secrets = sorted({r.inputs["secretId"] for r in program.of_type(SECRET_MEMBER)})
    condition = secret_grant(bootstrap)
    if not secrets:
        assert condition is None
        return
    assert condition is not None
    number = stack_config(BOOTSTRAP, bootstrap.stack)["cloudrun-tasks-bootstrap:projectNumber"]
    expression = condition["expression"]
    for secret in secrets:
        assert admits(expression, f"projects/{number}/secrets/{secret}")
    near_misses = [
        *(f"projects/{number}/secrets/{s}-2" for s in secrets),
        *(f"projects/{number}/secrets/x{s}" for s in secrets),
        *(f"projects/1{number}/secrets/{s}" for s in secrets),
        *(f"projects/{number}/secrets/{s}/versions/1" for s in secrets),
        f"projects/{number}/secrets/other",
    ]
    assert [name for name in near_misses if admits(expression, name)] == []
    wrong_type = f"projects/{number}/secrets/{secrets[0]}"
    assert not admits(expression, wrong_type, "storage.googleapis.com/Bucket")


# --- the admin's re-run path ------------------------------------------------------------------


def test_a_new_pipeline_or_secret_is_reported_until_the_bootstrap_is_re_run(
    tmp_path: Path,
) -> None:
    """A stack file that gains a pipeline with a schedule and a secret: the bootstrap as
    last run lacks its three accounts and the secret; run again on the new file, it has
    them."""
    before = run_program(BOOTSTRAP, "staging")
    config = stack_config(ROOT, "staging")
    pipelines = dict(config["cloudrun-tasks:pipelines"])
    pipelines["billing"] = {
        "service": {
            "image": "us-docker.pkg.dev/cloudrun/container/hello",
            "secrets": {"TOKEN": "billing-token:1"},
        },
        "schedules": {"daily": {"cron": "0 4 * * *"}},
    }
    grown = {**config, "cloudrun-tasks:pipelines": pipelines}
    program = run_program(ROOT, "staging", grown)
    assert missing_from_bootstrap(before, program) == [
        "account billing-invoker",
        "account billing-runtime",
        "account billing-ticker",
        "secret billing-token",
    ]
    stack_path = tmp_path / "Pulumi.staging.yaml"
    stack_path.write_text(yaml.safe_dump({"config": grown}))
    needs = stack_needs.stack_needs("staging", stack_path)
    assert {"billing-invoker", "billing-runtime", "billing-ticker"} <= set(needs.accounts)
    assert "billing-token" in needs.secrets


def test_a_bad_main_stack_file_stops_the_bootstrap_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    config = stack_config(ROOT, "dev")
    pipelines: dict[str, Any] = dict(config["cloudrun-tasks:pipelines"])
    pipelines["Bad_Name"] = pipelines.pop(next(iter(pipelines)))
    path.write_text(yaml.safe_dump({"config": {**config, "cloudrun-tasks:pipelines": pipelines}}))
    with pytest.raises(ValueError, match=r"(?s)Pulumi\.dev\.yaml: .*pipelines\.Bad_Name: must be"):
        stack_needs.stack_needs("dev", path)
    with pytest.raises(ValueError, match="no stack file"):
        stack_needs.stack_needs("dev", tmp_path / "missing.yaml")


def test_every_main_stack_has_a_bootstrap_on_the_same_project() -> None:
    for stack in BOOTSTRAP_STACKS:
        needs = stack_needs.stack_needs(stack)
        assert needs.project == stack_config(BOOTSTRAP, stack)["gcp:project"]
