"""Resource policies on keys, APIs, Cloud Run and queues: passing, failing, unknown."""

from __future__ import annotations

from typing import Any

import pytest

from rules.apis import apis_never_disabled_on_destroy
from rules.cloudrun import cloudrun_dedicated_service_account, cloudrun_ingress_not_all
from rules.queues import queue_retries_bounded
from rules.service_accounts import no_service_account_keys
from support import UNKNOWN, resource_args, validate

RUN = "gcp:cloudrunv2/service:Service"
QUEUE = "gcp:cloudtasks/queue:Queue"
API = "gcp:projects/service:Service"
RUNTIME = "orders-runtime@p.iam.gserviceaccount.com"


def test_service_account_key_is_reported() -> None:
    args = resource_args("gcp:serviceaccount/key:Key", {"serviceAccountId": "sa"}, "k")
    [message] = validate(no_service_account_keys, args)
    assert "'k' creates a service-account key" in message and "Workload Identity" in message


def test_service_account_itself_is_fine() -> None:
    args = resource_args("gcp:serviceaccount/account:Account", {"accountId": "orders-invoker"})
    assert validate(no_service_account_keys, args) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"disableOnDestroy": False, "disableDependentServices": False}, 0),
        ({"disableOnDestroy": False}, 0),
        ({"disableOnDestroy": True, "disableDependentServices": False}, 1),
        ({"disableDependentServices": False}, 1),  # provider default is true
        ({"disableOnDestroy": True, "disableDependentServices": True}, 2),
        ({"disableOnDestroy": UNKNOWN, "disableDependentServices": False}, 0),
    ],
)
def test_apis_never_disabled(props: dict[str, Any], expected: int) -> None:
    args = resource_args(API, {"service": "run.googleapis.com", **props}, "api")
    messages = validate(apis_never_disabled_on_destroy, args)
    assert len(messages) == expected
    assert all("disable_on_destroy=False" in m for m in messages)


def _service(**template: Any) -> dict[str, Any]:
    return {"location": "us-central1", "template": {"containers": [{"image": "i"}], **template}}


@pytest.mark.parametrize(
    ("resource_type", "props", "runs_as"),
    [
        (RUN, _service(), "the default compute account"),
        (
            RUN,
            _service(serviceAccount="123456789-compute@developer.gserviceaccount.com"),
            "-compute@",
        ),
        (RUN, _service(serviceAccount="acme@appspot.gserviceaccount.com"), "@appspot"),
        ("gcp:cloudrunv2/job:Job", {"template": {"template": {}}}, "the default compute account"),
        ("gcp:cloudrun/service:Service", {"template": {"spec": {}}}, "the default compute account"),
    ],
)
def test_default_runtime_account_is_reported(
    resource_type: str, props: dict[str, Any], runs_as: str
) -> None:
    [message] = validate(
        cloudrun_dedicated_service_account, resource_args(resource_type, props, "svc")
    )
    assert "'svc' runs as" in message and runs_as in message
    assert "dedicated gcp.serviceaccount.Account" in message


@pytest.mark.parametrize(
    "props",
    [_service(serviceAccount=RUNTIME), _service(serviceAccount=UNKNOWN), {"template": UNKNOWN}],
)
def test_dedicated_or_unknown_runtime_account_passes(props: dict[str, Any]) -> None:
    assert validate(cloudrun_dedicated_service_account, resource_args(RUN, props)) == []


@pytest.mark.parametrize(
    ("ingress", "expected"),
    [
        ("INGRESS_TRAFFIC_ALL", 1),
        (None, 1),  # Cloud Run's default
        ("INGRESS_TRAFFIC_INTERNAL_ONLY", 0),
        ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", 0),
        (UNKNOWN, 0),
    ],
)
def test_ingress_all_is_advised_against(ingress: str | None, expected: int) -> None:
    props = _service(serviceAccount=RUNTIME) | ({} if ingress is None else {"ingress": ingress})
    messages = validate(cloudrun_ingress_not_all, resource_args(RUN, props))
    assert len(messages) == expected
    assert all("INGRESS_TRAFFIC_INTERNAL_ONLY" in m for m in messages)


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ({"maxAttempts": -1}, 1),
        ({"maxAttempts": -1, "maxRetryDuration": "0s"}, 1),
        ({"maxAttempts": -1, "maxRetryDuration": "3600s"}, 0),
        ({"maxAttempts": 20, "maxRetryDuration": "0s"}, 0),
        ({"maxAttempts": 20}, 0),
        ({}, 0),  # Cloud Tasks' default is a bounded number of attempts
        ({"maxAttempts": UNKNOWN}, 0),
        ({"maxAttempts": -1, "maxRetryDuration": UNKNOWN}, 0),
    ],
)
def test_retries_bounded(retry: dict[str, Any], expected: int) -> None:
    args = resource_args(QUEUE, {"location": "us-central1", "retryConfig": retry}, "q")
    messages = validate(queue_retries_bounded, args)
    assert len(messages) == expected
    assert all("'q' retries failing tasks without end" in m for m in messages)


def test_queue_without_retry_config_passes() -> None:
    assert validate(queue_retries_bounded, resource_args(QUEUE, {"location": "x"})) == []
