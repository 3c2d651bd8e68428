"""How each config key lands on the resources: defaults, limits and overrides."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.conftest import ENQUEUER, INVOKER_EMAIL, RUNTIME_EMAIL, base_config, record
from tests.infra.expectations import (
    ACCOUNT_MEMBER,
    API,
    DATABASE,
    QUEUE,
    SERVICE,
    SUBSCRIPTION,
    TTL_FIELD,
    check_pipeline,
)

P = "cloudrun-tasks:pipelines"


def orders(config: dict[str, Any]) -> dict[str, Any]:
    return config[P]["orders"]


def test_defaults() -> None:
    rec = record(base_config())
    queue = rec.one(QUEUE, "orders").inputs
    assert queue["rateLimits"] == {"maxDispatchesPerSecond": 10, "maxConcurrentDispatches": 800}
    assert queue["retryConfig"] == {
        "maxAttempts": 20,
        "maxRetryDuration": "3600s",
        "minBackoff": "1s",
        "maxBackoff": "300s",
        "maxDoublings": 5,
    }
    assert queue["stackdriverLoggingConfig"] == {"samplingRatio": 1}
    assert queue["desiredState"] == "RUNNING"
    assert "name" not in queue, "queues are auto-named so a replacement never hits a tombstone"
    service = rec.one(SERVICE, "orders").inputs
    assert "name" not in service
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert "launchStage" not in service
    template = service["template"]
    assert template["timeout"] == "600s", "timeout defaults to the dispatch deadline"
    assert template["maxInstanceRequestConcurrency"] == 80
    assert template["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 10}
    assert service["scaling"] == {"minInstanceCount": 0}
    [container] = template["containers"]
    assert container["image"] == "us-docker.pkg.dev/cloudrun/container/hello"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    topic = rec.one("gcp:pubsub/topic:Topic", "orders-dead-letters").outputs["name"]
    assert container["envs"] == [
        {"name": "GOOGLE_CLOUD_PROJECT", "value": "acme-tasks-test"},
        {"name": "TASK_CONCURRENCY", "value": "80"},
        {"name": "TASK_DEAD_LETTER_TOPIC", "value": f"projects/acme-tasks-test/topics/{topic}"},
        {"name": "TASK_DISPATCH_DEADLINE", "value": "600s"},
        {"name": "TASK_FIRESTORE_DATABASE", "value": "tasks-test"},
        {"name": "TASK_MAX_ATTEMPTS", "value": "20"},
        {"name": "TASK_MAX_RETRY_DURATION", "value": "3600s"},
    ]
    database = rec.one(DATABASE, "idempotency").inputs
    assert database == {
        "project": "acme-tasks-test",
        "name": "tasks-test",
        "locationId": "us-central1",
        "type": "FIRESTORE_NATIVE",
        "deleteProtectionState": "DELETE_PROTECTION_DISABLED",
        "deletionPolicy": "DELETE",
    }
    ttl = rec.one(TTL_FIELD, "idempotency").inputs
    assert ttl == {
        "project": "acme-tasks-test",
        "database": "tasks-test",
        "collection": "idempotency",
        "field": "updatedAt",
        "ttlConfig": {"expirationOffset": "2678400s"},
        "indexConfig": {"indexes": []},
    }
    subscription = rec.one(SUBSCRIPTION, "orders-dead-letters").inputs
    assert subscription["ackDeadlineSeconds"] == 60
    assert subscription["labels"] == {"pipeline": "orders"}
    assert rec.outputs["pipelines"]["orders"]["dispatchDeadline"] == "600s"
    assert rec.outputs["pipelines"]["orders"]["invokerServiceAccount"] == INVOKER_EMAIL
    assert rec.outputs["pipelines"]["orders"]["runtimeServiceAccount"] == RUNTIME_EMAIL
    assert {r.inputs["service"] for r in rec.of_type(API)} == {
        "cloudtasks.googleapis.com",
        "run.googleapis.com",
        "iam.googleapis.com",
        "monitoring.googleapis.com",
        "logging.googleapis.com",
        "firestore.googleapis.com",
        "pubsub.googleapis.com",
    }


def test_every_setting_reaches_its_resource() -> None:
    config = base_config()
    config["cloudrun-tasks:labels"] = {"team": "payments"}
    orders(config).update(
        location="europe-west1",
        dispatchDeadline="20m",
        service={
            "image": "europe-docker.pkg.dev/acme/tasks/handler:1.2.3",
            "ingress": "internal-and-cloud-load-balancing",
            "timeout": "1h",
            "concurrency": 4,
            "minInstances": 1,
            "maxInstances": 5,
            "cpu": "2",
            "memory": "1Gi",
            "env": {"LOG_LEVEL": "info"},
            "secrets": {"API_KEY": "api-key:3"},
        },
        queue={
            "maxDispatchesPerSecond": 2.5,
            "maxConcurrentDispatches": 20,
            "maxAttempts": -1,
            "maxRetryDuration": "2h",
            "minBackoff": "0.5s",
            "maxBackoff": "10m",
            "maxDoublings": 3,
            "loggingSamplingRatio": 0.25,
            "paused": True,
        },
    )
    rec = record(config)
    check_pipeline(
        rec,
        "orders",
        location="europe-west1",
        protect=False,
        enqueuers=[ENQUEUER],
        secrets={"API_KEY": "api-key:3"},
    )
    queue = rec.one(QUEUE, "orders").inputs
    assert queue["rateLimits"] == {"maxDispatchesPerSecond": 2.5, "maxConcurrentDispatches": 20}
    assert queue["retryConfig"] == {
        "maxAttempts": -1,
        "maxRetryDuration": "7200s",
        "minBackoff": "0.5s",
        "maxBackoff": "600s",
        "maxDoublings": 3,
    }
    assert queue["stackdriverLoggingConfig"] == {"samplingRatio": 0.25}
    assert queue["desiredState"] == "PAUSED"
    service = rec.one(SERVICE, "orders").inputs
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert service["labels"] == {"team": "payments", "pipeline": "orders"}
    assert service["template"]["timeout"] == "3600s"
    assert service["template"]["maxInstanceRequestConcurrency"] == 4
    assert service["template"]["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 5}
    assert service["scaling"] == {"minInstanceCount": 1}
    [container] = service["template"]["containers"]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    envs = {e["name"]: e for e in container["envs"]}
    assert [e["name"] for e in container["envs"]][-1] == "API_KEY"
    assert envs["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "info"}
    assert envs["TASK_MAX_ATTEMPTS"]["value"] == "-1"
    assert envs["TASK_MAX_RETRY_DURATION"]["value"] == "7200s"
    assert envs["TASK_CONCURRENCY"]["value"] == "4"
    assert envs["TASK_DISPATCH_DEADLINE"]["value"] == "1200s"
    assert envs["API_KEY"] == {
        "name": "API_KEY",
        "valueSource": {"secretKeyRef": {"secret": "api-key", "version": "3"}},
    }
    # The database goes where the only pipeline runs.
    assert rec.one(DATABASE, "idempotency").inputs["locationId"] == "europe-west1"
    assert "secretmanager.googleapis.com" in {r.inputs["service"] for r in rec.of_type(API)}
    assert rec.outputs["pipelines"]["orders"]["dispatchDeadline"] == "1200s"


def test_queue_concurrency_default_is_capped_at_the_cloud_tasks_limit() -> None:
    config = base_config()
    orders(config)["service"].update(concurrency=1000, maxInstances=100)
    queue = record(config).one(QUEUE, "orders").inputs
    assert queue["rateLimits"]["maxConcurrentDispatches"] == 5000


def test_pipeline_without_enqueuers_grants_only_the_agent() -> None:
    config = base_config()
    del orders(config)["enqueuers"]
    rec = record(config)
    check_pipeline(rec, "orders", location="us-central1", protect=False, enqueuers=[])
    assert [r.inputs["role"] for r in rec.of_type(ACCOUNT_MEMBER)] == [
        "roles/iam.serviceAccountOpenIdTokenCreator"
    ]


def test_several_pipelines_share_one_set_of_apis() -> None:
    config = base_config()
    config[P]["invoices"] = {"location": "asia-northeast1", "service": {"image": "img"}}
    rec = record(config)
    check_pipeline(rec, "orders", location="us-central1", protect=False, enqueuers=[ENQUEUER])
    check_pipeline(rec, "invoices", location="asia-northeast1", protect=False, enqueuers=[])
    assert len(rec.of_type(API)) == 7
    assert sorted(rec.outputs["pipelines"]) == ["invoices", "orders"]
    # One database for both, in the multi-region of gcp:region's geography: invoices
    # reaches it across regions (components/settings/idempotency.py).
    assert rec.one(DATABASE, "idempotency").inputs["locationId"] == "nam5"


def test_protect_turns_on_both_kinds_of_protection() -> None:
    config = base_config()
    config["cloudrun-tasks:protect"] = True
    rec = record(config)
    check_pipeline(rec, "orders", location="us-central1", protect=True, enqueuers=[ENQUEUER])


def test_preview_leaves_cloud_computed_values_unknown() -> None:
    rec = record(base_config(), preview=True)
    unknown = "<unknown until deployed>"
    queue_name = rec.one(QUEUE, "orders").outputs["name"]
    topic = rec.one("gcp:pubsub/topic:Topic", "orders-dead-letters").outputs["name"]
    subscription = rec.one(SUBSCRIPTION, "orders-dead-letters").outputs["name"]
    assert rec.outputs["pipelines"] == {
        "orders": {
            # Auto-names are known at preview (the provider's check assigns them).
            "queue": f"projects/acme-tasks-test/locations/us-central1/queues/{queue_name}",
            "queueName": queue_name,
            "location": "us-central1",
            "serviceName": rec.one(SERVICE, "orders").outputs["name"],
            "serviceUrl": unknown,
            "invokerServiceAccount": unknown,
            "runtimeServiceAccount": unknown,
            "dispatchDeadline": "600s",
            # Auto-named too, and the database id comes from config.
            "deadLetterTopic": f"projects/acme-tasks-test/topics/{topic}",
            "deadLetterSubscription": f"projects/acme-tasks-test/subscriptions/{subscription}",
            "firestoreDatabase": "tasks-test",
        }
    }
    queue = rec.one(QUEUE, "orders").inputs
    assert queue["httpTarget"]["oidcToken"]["audience"] == "<unknown until deployed>"


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("15s", "15s"),
        ("0.1s", "0.1s"),
        ("10m", "600s"),
        ("1h", "3600s"),
        ("720h", "2592000s"),
        ("1.25h", "4500s"),
        ("0.00001s", "0.00001s"),
        ("250ms", "0.25s"),
        ("0.000000001s", "0.000000001s"),
    ],
)
def test_durations_reach_google_as_exact_decimal_seconds(text: str, sent: str) -> None:
    """No float formatting: `720h` once became `2.592e+06s`, which Google rejects."""
    config = base_config()
    orders(config)["queue"] = {"minBackoff": "0s", "maxBackoff": text, "maxRetryDuration": text}
    # Records must outlive the longest retry window these limits allow.
    config["cloudrun-tasks:idempotency"] = {"ttl": "2147483647s"}
    rec = record(config)
    retry = rec.one(QUEUE, "orders").inputs["retryConfig"]
    assert (retry["maxBackoff"], retry["maxRetryDuration"]) == (sent, sent)
    assert re.fullmatch(r"[0-9]+(\.[0-9]{1,9})?s", sent)


def test_service_timeout_and_deadline_output_use_the_same_form() -> None:
    config = base_config()
    orders(config)["dispatchDeadline"] = "0.25h"
    orders(config)["service"]["timeout"] = "1h"
    rec = record(config)
    template = rec.one(SERVICE, "orders").inputs["template"]
    assert template["timeout"] == "3600s"
    assert rec.outputs["pipelines"]["orders"]["dispatchDeadline"] == "900s"
