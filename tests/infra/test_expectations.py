"""The inventory and security checks fail when the graph is wrong: each is shown failing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from plan.recorder import RecordedResource, Recording
from tests.infra.conftest import ENQUEUER, base_config, record
from tests.infra.expectations import (
    ACCOUNT,
    QUEUE,
    QUEUE_MEMBER,
    SERVICE,
    SERVICE_MEMBER,
    check_pipeline,
    security_violations,
)


@pytest.fixture(scope="module")
def good() -> Recording:
    return record(base_config())


def check(rec: Recording, protect: bool = False) -> None:
    check_pipeline(rec, "orders", location="us-central1", protect=protect, enqueuers=[ENQUEUER])


def mutate(rec: Recording, select: Callable[[RecordedResource], bool], **changes: Any) -> Recording:
    """A copy of the recording with the selected resources changed, or dropped if no changes."""
    resources = []
    for r in rec.resources:
        if not select(r):
            resources.append(r)
        elif changes:
            resources.append(dataclasses.replace(r, **changes))
    return dataclasses.replace(rec, resources=resources)


def with_inputs(r: RecordedResource, **inputs: Any) -> dict[str, Any]:
    return {"inputs": {**r.inputs, **inputs}}


def test_good_recording_passes(good: Recording) -> None:
    check(good)
    assert security_violations(good) == []


def test_missing_invoker_grant_is_caught(good: Recording) -> None:
    with pytest.raises(AssertionError):
        check(mutate(good, lambda r: r.type == SERVICE_MEMBER))


def test_missing_enqueuer_grant_is_caught(good: Recording) -> None:
    with pytest.raises(AssertionError):
        check(mutate(good, lambda r: r.type == QUEUE_MEMBER))


def test_missing_queue_is_caught(good: Recording) -> None:
    with pytest.raises(AssertionError, match="expected one"):
        check(mutate(good, lambda r: r.type == QUEUE))


def test_queue_in_another_location_is_caught(good: Recording) -> None:
    queue = good.one(QUEUE, "orders")
    moved = mutate(good, lambda r: r is queue, **with_inputs(queue, location="europe-west1"))
    with pytest.raises(AssertionError, match="locations"):
        check(moved)


def test_queue_not_waiting_for_apis_is_caught(good: Recording) -> None:
    queue = good.one(QUEUE, "orders")
    hasty = mutate(good, lambda r: r is queue, dependencies=())
    with pytest.raises(AssertionError, match="does not wait"):
        check(hasty)


def test_unprotected_queue_in_prod_is_caught(good: Recording) -> None:
    with pytest.raises(AssertionError, match="protect"):
        check(good, protect=True)


def test_wrong_oidc_audience_is_caught(good: Recording) -> None:
    queue = good.one(QUEUE, "orders")
    target = dict(queue.inputs["httpTarget"])
    target["oidcToken"] = {**target["oidcToken"], "audience": "https://example.com/tasks?x=1"}
    bad = mutate(good, lambda r: r is queue, **with_inputs(queue, httpTarget=target))
    with pytest.raises(AssertionError, match="OIDC"):
        check(bad)


def test_public_member_is_a_violation(good: Recording) -> None:
    grant = good.of_type(QUEUE_MEMBER)[0]
    public = mutate(good, lambda r: r is grant, **with_inputs(grant, member="allUsers"))
    assert security_violations(public) == [f"{grant.name}: public member allUsers"]


def test_authoritative_binding_is_a_violation(good: Recording) -> None:
    grant = good.of_type(SERVICE_MEMBER)[0]
    binding = mutate(
        good, lambda r: r is grant, type="gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding"
    )
    assert any("authoritative" in v for v in security_violations(binding))


def test_project_level_grant_is_a_violation(good: Recording) -> None:
    grant = good.of_type(QUEUE_MEMBER)[0]
    project_wide = mutate(good, lambda r: r is grant, type="gcp:projects/iAMMember:IAMMember")
    assert any("project- or org-level" in v for v in security_violations(project_wide))


def test_service_key_is_a_violation(good: Recording) -> None:
    account = good.of_type(ACCOUNT)[0]
    keyed = dataclasses.replace(
        good,
        resources=[
            *good.resources,
            dataclasses.replace(account, type="gcp:serviceaccount/key:Key"),
        ],
    )
    assert any("service-account key" in v for v in security_violations(keyed))


@pytest.mark.parametrize(
    "account",
    [
        "orders-invoker@acme-tasks-test.iam.gserviceaccount.com",
        "123-compute@developer.gserviceaccount.com",
    ],
)
def test_service_identity_violations(good: Recording, account: str) -> None:
    service = good.one(SERVICE, "orders")
    template = {**service.inputs["template"], "serviceAccount": account}
    bad = mutate(good, lambda r: r is service, **with_inputs(service, template=template))
    assert len(security_violations(bad)) == 1
