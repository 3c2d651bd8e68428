"""`payloads` under mocks: the payload bucket, its lifecycle and its IAM, the handler's
setting and the stack output the client reads."""

from __future__ import annotations

from typing import Any

import pytest

from components.durations import Duration
from components.name_rules import payload_bucket_name
from components.settings import ConfigError, parse_settings
from components.settings.payloads import object_age_days
from components.settings.queue import QueueSettings
from components.task_size import MAX_TASK_BYTES
from tests.infra.conftest import ENQUEUER, PROJECT, base_config, record

BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
SERVICE = "gcp:cloudrunv2/service:Service"
REPLAYER = "serviceAccount:ops@acme-tasks-test.iam.gserviceaccount.com"


def with_payloads(payloads: dict[str, Any], **pipeline: Any) -> dict[str, Any]:
    config = base_config()
    config["cloudrun-tasks:pipelines"]["orders"].update(payloads=payloads, **pipeline)
    return config


def test_without_payloads_there_is_no_bucket_and_no_output() -> None:
    rec = record(base_config())
    assert rec.of_type(BUCKET) == []
    assert rec.of_type(BUCKET_MEMBER) == []
    assert "payloadBucket" not in rec.outputs["pipelines"]["orders"]


def test_the_bucket_is_private_unversioned_and_deletes_after_the_windows() -> None:
    rec = record(with_payloads({"enabled": True}))
    bucket = rec.one(BUCKET, "orders-payloads")
    assert bucket.inputs["name"] == payload_bucket_name(PROJECT, "test", "orders")
    assert bucket.inputs["name"].startswith("orders-payloads-")
    assert bucket.inputs["location"] == "US-CENTRAL1"
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": False}
    assert bucket.inputs["forceDestroy"] is False
    # Defaults: 20 attempts x 600 s deadline + 19 x 300 s backoff = 17700 s (4.9 h) >
    # maxRetryDuration 1 h + the deadline; 30 days of schedule + 2 x 4.9 h + 31 days of
    # dead letter = 61.4 days -> 62.
    assert bucket.inputs["lifecycleRules"] == [
        {"action": {"type": "Delete"}, "condition": {"age": 62}}
    ]
    assert bucket.inputs["labels"]["pipeline"] == "orders"
    component = rec.one("cloudrun-tasks:index:PayloadBucket", "orders-payloads")
    assert bucket.parent == component.urn
    assert rec.outputs["pipelines"]["orders"]["payloadBucket"] == bucket.inputs["name"]
    assert "payloadThreshold" not in rec.outputs["pipelines"]["orders"]


def test_bucket_names_differ_per_project_and_stack_and_fit_the_rule() -> None:
    names = {
        payload_bucket_name(project, stack, "orders")
        for project in ("acme-a", "acme-b")
        for stack in ("dev", "prod")
    }
    assert len(names) == 4
    longest = payload_bucket_name("p" * 30, "prod", "a" * 22)
    assert len(longest) <= 63


def test_iam_enqueuers_and_replayers_create_the_runtime_account_reads_nobody_deletes() -> None:
    rec = record(with_payloads({"enabled": True}, replayers=[REPLAYER]))
    grants = {(m.inputs["role"], m.inputs["member"]) for m in rec.of_type(BUCKET_MEMBER)}
    runtime = rec.one("gcp:serviceaccount/account:Account", "orders-runtime").outputs["email"]
    assert grants == {
        ("roles/storage.objectCreator", ENQUEUER),
        ("roles/storage.objectCreator", REPLAYER),
        ("roles/storage.objectViewer", f"serviceAccount:{runtime}"),
    }
    bucket = rec.one(BUCKET, "orders-payloads")
    for member in rec.of_type(BUCKET_MEMBER):
        assert member.inputs["bucket"] == bucket.outputs["name"]


def test_the_handler_gets_the_bucket_and_starts_after_its_read_grant() -> None:
    rec = record(with_payloads({"enabled": True, "threshold": 100_000}))
    service = rec.one(SERVICE, "orders")
    [container] = service.inputs["template"]["containers"]
    bucket = rec.one(BUCKET, "orders-payloads").inputs["name"]
    assert {"name": "TASK_PAYLOAD_BUCKET", "value": bucket} in container["envs"]
    read = next(
        m for m in rec.of_type(BUCKET_MEMBER) if m.inputs["role"] == "roles/storage.objectViewer"
    )
    assert read.urn in service.dependencies
    assert rec.outputs["pipelines"]["orders"]["payloadThreshold"] == "100000"


def test_protected_stacks_protect_the_bucket() -> None:
    config = with_payloads({"enabled": True})
    config["cloudrun-tasks:protect"] = True
    assert record(config).one(BUCKET, "orders-payloads").protect is True
    assert record(with_payloads({"enabled": True})).one(BUCKET, "orders-payloads").protect is False


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ({"enabled": "yes"}, "payloads.enabled"),
        ({"enabled": True, "threshold": 0}, "payloads.threshold"),
        ({"enabled": True, "threshold": MAX_TASK_BYTES + 1}, "payloads.threshold"),
        ({"enabled": True, "bucket": "mine"}, "payloads.bucket"),
        ({"threshold": 1000}, "payloads.threshold: needs payloads.enabled: true"),
    ],
)
def test_bad_payload_settings_name_the_key(payloads: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_settings(with_payloads(payloads))


def test_a_pipeline_name_that_breaks_the_bucket_rule_is_refused() -> None:
    config = base_config()
    config["cloudrun-tasks:pipelines"]["my-g00gle"] = config["cloudrun-tasks:pipelines"].pop(
        "orders"
    )
    with pytest.raises(ConfigError, match="payload bucket"):
        parse_settings(config)


@pytest.mark.parametrize(
    ("queue", "days"),
    [
        # By time: the last attempt starts before the day is over and may run its 600 s
        # deadline, twice: 30 + 2 x (1 day + 600 s) + 31 days -> 64, not 63.
        ({"maxAttempts": 2, "maxRetryDuration": "86400s"}, 64),
        ({"maxAttempts": -1, "maxRetryDuration": "86400s"}, 64),
        # Exactly whole days: 30 + 2 x (85800 s + 600 s) + 31 = 63 days.
        ({"maxAttempts": -1, "maxRetryDuration": "85800s"}, 63),
        # By count: 100 x 600 s + 99 x 3600 s = 416400 s (4.8 days), twice: 70.6 -> 71.
        ({"maxAttempts": 100, "maxBackoff": "3600s", "maxRetryDuration": "0s"}, 71),
    ],
)
def test_objects_outlive_two_retry_windows_and_the_dead_letters(
    queue: dict[str, Any], days: int
) -> None:
    deadline = Duration.of_seconds(600)
    assert object_age_days(QueueSettings.model_validate(queue), deadline) == days
