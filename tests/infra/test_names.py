"""Derived names: every config entry gets its own, existing stacks keep theirs, and
collisions are config errors reported before the first resource is registered."""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components.names import (
    ACCOUNT_ID,
    ALERT_POLICY,
    DASHBOARD,
    DASHBOARD_COMPONENT,
    DATABASE,
    LOG_METRIC,
    PROJECT_MEMBER,
    STORE_COMPONENT,
    SUBSCRIPTION,
    TOPIC,
    TOPIC_MEMBER,
    TTL_FIELD,
    check_names,
)
from components.settings import ConfigError, parse_settings
from plan.recorder import RecordedResource, Recording, run_program, stack_config
from tests.infra.conftest import PROJECT, ROOT, STACKS, base_config, record
from tests.infra.expectations import (
    ACCOUNT,
    ACCOUNT_MEMBER,
    API,
    APIS,
    QUEUE_MEMBER,
    SECRET_MEMBER,
    check_pipeline,
)

P = "cloudrun-tasks:pipelines"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
FIXTURES = Path(__file__).parent / "fixtures"


def with_enqueuers(*members: str) -> dict[str, Any]:
    config = base_config()
    config[P]["orders"]["enqueuers"] = list(members)
    return config


def with_secrets(pipelines: dict[str, dict[str, str]]) -> dict[str, Any]:
    config = base_config()
    config[P] = {
        name: {"service": {"image": IMAGE, "secrets": secrets}}
        for name, secrets in pipelines.items()
    }
    return config


def runtime_member(pipeline: str) -> str:
    return f"serviceAccount:{pipeline}-runtime@{PROJECT}.iam.gserviceaccount.com"


def assert_urns_unique(rec: Recording) -> None:
    twice = [urn for urn, n in Counter(r.urn for r in rec.resources).items() if n > 1]
    assert twice == [], "registered twice"


def renames(r: RecordedResource) -> tuple[str, ...]:
    """Aliases to another name; pulumi-gcp gives some types aliases to former types."""
    return tuple(urn for urn in r.aliases if urn.rsplit("::", 1)[1] != r.name)


def registered_names(rec: Recording) -> set[tuple[str, str]]:
    """(kind, name) of everything the pipelines registered: the APIs' names are fixed."""
    apis = {r.urn for r in rec.resources if r.type == APIS}
    names = {(r.type, r.name) for r in rec.resources if r.type != APIS and r.parent not in apis}
    return names | {(ACCOUNT_ID, r.inputs["accountId"]) for r in rec.of_type(ACCOUNT)}


def derived_names(config: dict[str, Any]) -> set[tuple[str, str]]:
    settings = parse_settings({k.removeprefix("cloudrun-tasks:"): v for k, v in config.items()})
    return {(d.kind, d.name.name) for d in check_names(settings).derived}


# --- the two configs of the issue ----------------------------------------------------


def test_enqueuers_that_sanitise_alike_are_each_granted() -> None:
    members = ["user:a+b@acme.example", "user:a-b@acme.example"]
    rec = record(with_enqueuers(*members))
    check_pipeline(rec, "orders", location="us-central1", protect=False, enqueuers=members)
    assert sorted(r.inputs["member"] for r in rec.of_type(QUEUE_MEMBER)) == members
    assert (
        sorted(
            r.inputs["member"]
            for r in rec.of_type(ACCOUNT_MEMBER)
            if r.inputs["role"] == "roles/iam.serviceAccountUser"
        )
        == members
    )
    assert_urns_unique(rec)
    # The former spelling of a+b was a-b's: that stack never deployed, nothing to alias.
    assert [renames(r) for r in rec.resources if renames(r)] == []


def test_secret_grants_that_spell_alike_are_each_granted() -> None:
    pipelines = {"orders": {"B": "b-secret-c:latest"}, "orders-secret-b": {"C": "c:latest"}}
    rec = record(with_secrets(pipelines))
    for name, secrets in pipelines.items():
        check_pipeline(
            rec, name, location="us-central1", protect=False, enqueuers=[], secrets=secrets
        )
    assert sorted(
        (r.inputs["secretId"], r.inputs["member"]) for r in rec.of_type(SECRET_MEMBER)
    ) == [
        ("b-secret-c", runtime_member("orders")),
        ("c", runtime_member("orders-secret-b")),
    ]
    assert_urns_unique(rec)
    assert [renames(r) for r in rec.resources if renames(r)] == []


# --- existing stacks keep their names ---------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_keep_every_urn(stack: str, stack_recordings: dict[str, Recording]) -> None:
    before = json.loads((FIXTURES / "stack_urns.json").read_text())[stack]
    rec = stack_recordings[stack]
    # Resources added since (alert policies, the dashboard) may join; none may go or move.
    assert set(before) <= {r.urn for r in rec.resources}
    assert [r.name for r in rec.resources if renames(r)] == []


def test_changed_names_alias_their_former_urns() -> None:
    """A config recorded before names were made injective: its lossy members and its
    pipeline whose name contains '-secret-' get new names, each aliased to its old URN;
    nothing else changes."""
    legacy = json.loads((FIXTURES / "legacy_urns.json").read_text())
    rec = record(legacy["config"])
    before = set(legacy["urns"])
    # Resources the program gained since the recording (alerts and the claims-lost metric,
    # dashboard, dead letters, the idempotency store and the grants on them) are new, not
    # moved.
    added = {
        ALERT_POLICY,
        LOG_METRIC,
        DASHBOARD,
        DASHBOARD_COMPONENT,
        API,
        TOPIC,
        SUBSCRIPTION,
        TOPIC_MEMBER,
        PROJECT_MEMBER,
        STORE_COMPONENT,
        DATABASE,
        TTL_FIELD,
    }
    assert {r.type for r in rec.resources if r.urn not in before and not renames(r)} <= added
    renamed = {r.name: renames(r) for r in rec.resources if r.urn not in before and renames(r)}
    principal = (
        "principal-iam.googleapis.com-projects-1-locations-global-workloadIdentityPools-p-subject-s"
    )
    assert renamed == {
        f"orders-cloudtasks-enqueuer-{principal}-5df622f9": (
            f"{urn_prefix(QUEUE_MEMBER, 'TaskQueue')}orders-cloudtasks-enqueuer-{principal}",
        ),
        f"orders-invoker-iam-serviceAccountUser-{principal}-5df622f9": (
            f"{urn_prefix(ACCOUNT_MEMBER, 'ServiceAccount')}"
            f"orders-invoker-iam-serviceAccountUser-{principal}",
        ),
        "rotate-secrets-cloudtasks-enqueuer-user-o-brien@acme.example-5cab6e23": (
            f"{urn_prefix(QUEUE_MEMBER, 'TaskQueue')}"
            "rotate-secrets-cloudtasks-enqueuer-user-o-brien@acme.example",
        ),
        "rotate-secrets-invoker-iam-serviceAccountUser-user-o-brien@acme.example-5cab6e23": (
            f"{urn_prefix(ACCOUNT_MEMBER, 'ServiceAccount')}"
            "rotate-secrets-invoker-iam-serviceAccountUser-user-o-brien@acme.example",
        ),
        "app-secret-sync-secret-token-7d518eb9": (
            f"{urn_prefix(SECRET_MEMBER, 'TaskService')}app-secret-sync-secret-token",
        ),
    }
    kept = {r.urn for r in rec.resources if r.urn in before}
    assert kept | {urn for aliases in renamed.values() for urn in aliases} == before
    assert [r.name for r in rec.resources if r.urn in before and renames(r)] == []


def urn_prefix(type_: str, component: str) -> str:
    return f"urn:pulumi:test::cloudrun-tasks::cloudrun-tasks:index:{component}${type_}::"


# --- the up-front check ---------------------------------------------------------------


def test_a_member_spelling_out_another_members_hash_is_a_config_error() -> None:
    """Hashes leave one way for two members to meet: writing the other's name out.
    The check reports it, for both kinds of grant, before anything is registered."""
    lossy = "user:a+b@acme.example"
    spelled_out = f"user:a-b@acme.example-{hashlib.sha256(lossy.encode()).hexdigest()[:8]}"
    recording = Recording(project="cloudrun-tasks", stack="test")
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "test", with_enqueuers(lossy, spelled_out), into=recording)
    assert caught.value.problems == [
        "pipelines.orders.enqueuers.1: its IAMMember name"
        f" 'orders-invoker-iam-serviceAccountUser-{spelled_out.replace(':', '-')}'"
        " is also derived from pipelines.orders.enqueuers.0",
        "pipelines.orders.enqueuers.1: its QueueIamMember name"
        f" 'orders-cloudtasks-enqueuer-{spelled_out.replace(':', '-')}'"
        " is also derived from pipelines.orders.enqueuers.0",
    ]
    assert recording.resources == []
    assert f"  {caught.value.problems[1]}\n" in (ROOT / "docs" / "configuration.md").read_text()


CONFIGS = {
    "issue enqueuers": with_enqueuers("user:a+b@acme.example", "user:a-b@acme.example"),
    "issue secrets": with_secrets(
        {"orders": {"B": "b-secret-c:latest"}, "orders-secret-b": {"C": "c:latest"}}
    ),
    "legacy": json.loads((FIXTURES / "legacy_urns.json").read_text())["config"],
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=list(CONFIGS))
def test_names_checked_up_front_are_the_names_registered(config: dict[str, Any]) -> None:
    assert derived_names(config) == registered_names(record(copy.deepcopy(config)))


@pytest.mark.parametrize("stack", STACKS)
def test_stack_names_checked_up_front_are_the_names_registered(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    config = stack_config(ROOT, stack)
    assert derived_names(config) == registered_names(stack_recordings[stack])
