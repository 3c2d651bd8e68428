"""Stack policies: queue -> service routing, capacity, and prod protection."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import PolicyResource, StackValidationArgs

from rules.alerts import queue_alerts_present
from rules.protection import prod_resources_protected
from rules.routing import queue_and_service_same_location, queue_within_service_capacity
from support import UNKNOWN, policy_resource, validate

RUN = "gcp:cloudrunv2/service:Service"
QUEUE = "gcp:cloudtasks/queue:Queue"
URL = "https://orders-abc-123.us-central1.run.app"


def service(
    location: str = "us-central1", uri: str = URL, *, protect: bool = False, **template: Any
) -> PolicyResource:
    props = {"location": location, "uri": uri, "deletionProtection": protect, "template": template}
    return policy_resource(RUN, props, "orders", protect=protect)


def queue(
    location: str = "us-central1",
    host: str = "orders-abc-123.us-central1.run.app",
    *,
    target: PolicyResource | None = None,
    protect: bool = False,
    **rate_limits: Any,
) -> PolicyResource:
    props = {
        "location": location,
        "rateLimits": rate_limits,
        "httpTarget": {"uriOverride": {"host": host, "uriOverrideEnforceMode": "ALWAYS"}},
    }
    deps = {"httpTarget": [target]} if target else {}
    return policy_resource(QUEUE, props, "orders-q", protect=protect, property_dependencies=deps)


def stack(*resources: PolicyResource) -> StackValidationArgs:
    return StackValidationArgs(list(resources))


def test_queue_in_another_location_is_reported() -> None:
    svc = service()
    [message] = validate(
        queue_and_service_same_location, stack(svc, queue("europe-west1", target=svc))
    )
    assert "'orders-q' is in europe-west1" in message and "'orders' in us-central1" in message
    assert "Put the queue in us-central1" in message


def test_link_by_host_when_no_dependency_is_recorded() -> None:
    messages = validate(queue_and_service_same_location, stack(service(), queue("europe-west1")))
    assert len(messages) == 1


def test_link_by_dependency_when_urls_are_unknown_in_preview() -> None:
    svc = service(uri=UNKNOWN)
    q = queue("europe-west1", host=UNKNOWN, target=svc)
    assert len(validate(queue_and_service_same_location, stack(svc, q))) == 1


@pytest.mark.parametrize(
    "resources",
    [
        lambda: [service(), queue()],
        lambda: [service(), queue(host="elsewhere.example.com")],  # not this service
        lambda: [service(location=UNKNOWN), queue("europe-west1")],
        lambda: [queue("europe-west1")],
    ],
)
def test_same_location_or_unknown_passes(resources: Any) -> None:
    assert validate(queue_and_service_same_location, stack(*resources())) == []


@pytest.mark.parametrize(
    ("dispatches", "template", "expected"),
    [
        (800, {"maxInstanceRequestConcurrency": 80, "scaling": {"maxInstanceCount": 10}}, 0),
        (801, {"maxInstanceRequestConcurrency": 80, "scaling": {"maxInstanceCount": 10}}, 1),
        (None, {"maxInstanceRequestConcurrency": 1, "scaling": {"maxInstanceCount": 10}}, 1),
        (8000, {}, 0),  # Cloud Run's defaults: 100 instances x 80
        (8001, {}, 1),
        (UNKNOWN, {"maxInstanceRequestConcurrency": 1, "scaling": {"maxInstanceCount": 1}}, 0),
        (50, {"maxInstanceRequestConcurrency": UNKNOWN}, 0),
    ],
)
def test_queue_concurrency_against_service_capacity(
    dispatches: Any, template: dict[str, Any], expected: int
) -> None:
    svc = service(**template)
    limits = {} if dispatches is None else {"maxConcurrentDispatches": dispatches}
    messages = validate(queue_within_service_capacity, stack(svc, queue(target=svc, **limits)))
    assert len(messages) == expected
    assert all("Lower rateLimits.maxConcurrentDispatches" in m for m in messages)


def test_unprotected_prod_resources_are_reported() -> None:
    svc = service(protect=False)
    messages = validate(prod_resources_protected, stack(svc, queue(target=svc, protect=False)))
    assert len(messages) == 3
    assert sum("is not protected" in m for m in messages) == 2
    assert sum("deletionProtection false" in m for m in messages) == 1
    assert all("cloudrun-tasks:protect: true" in m for m in messages)


def test_protected_prod_resources_pass() -> None:
    svc = service(protect=True)
    other = policy_resource("gcp:serviceaccount/account:Account", {"accountId": "a"})
    assert (
        validate(prod_resources_protected, stack(svc, queue(target=svc, protect=True), other)) == []
    )


def test_unknown_deletion_protection_is_not_reported() -> None:
    svc = policy_resource(RUN, {"deletionProtection": UNKNOWN}, "orders", protect=True)
    assert validate(prod_resources_protected, stack(svc)) == []


def alert(kind: str, query: str, *, enabled: Any = True, depends: Any = None) -> PolicyResource:
    props = {
        "enabled": enabled,
        "userLabels": {"alert": kind, "pipeline": "orders"},
        "conditions": [{"conditionPrometheusQueryLanguage": {"query": query}}],
    }
    deps = {"conditions": [depends]} if depends else {}
    return policy_resource(
        "gcp:monitoring/alertPolicy:AlertPolicy",
        props,
        f"orders-{kind}",
        property_dependencies=deps,
    )


def named_queue(name: str) -> PolicyResource:
    return policy_resource(QUEUE, {"name": name, "location": "us-central1"}, name)


def test_queue_with_both_alerts_passes() -> None:
    q = named_queue("orders-abc")
    both = [alert(k, 'sum(x{queue_id="orders-abc"}) > 1') for k in ("backlog", "failing-attempts")]
    assert validate(queue_alerts_present, stack(q, *both)) == []


@pytest.mark.parametrize(
    ("alerts", "missing"),
    [
        ([], ["backlog", "failing-attempts"]),
        ([("backlog", True)], ["failing-attempts"]),
        ([("backlog", False), ("failing-attempts", True)], ["backlog"]),
    ],
)
def test_queue_without_an_enabled_alert_is_reported(
    alerts: list[tuple[str, bool]], missing: list[str]
) -> None:
    q = named_queue("orders-abc")
    made = [alert(k, 'sum(x{queue_id="orders-abc"}) > 1', enabled=e) for k, e in alerts]
    messages = validate(queue_alerts_present, stack(q, *made))
    assert [m.split("no enabled ")[1].split(" alert")[0] for m in messages] == missing


def test_an_alert_for_another_queue_does_not_count() -> None:
    q = named_queue("orders-abc")
    other = [
        alert(k, 'sum(x{queue_id="payments-def"}) > 1') for k in ("backlog", "failing-attempts")
    ]
    assert len(validate(queue_alerts_present, stack(q, *other))) == 2


def test_unknown_query_matches_by_dependency_in_preview() -> None:
    q = named_queue("orders-abc")
    both = [alert(k, UNKNOWN, depends=q) for k in ("backlog", "failing-attempts")]
    assert validate(queue_alerts_present, stack(q, *both)) == []
