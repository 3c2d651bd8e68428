"""A payload bucket without public access prevention, with ACLs or with versioning is
refused."""

from __future__ import annotations

from typing import Any

import pytest

from rules.buckets import buckets_private
from support import UNKNOWN, resource_args, validate

BUCKET = "gcp:storage/bucket:Bucket"
PRIVATE = {
    "publicAccessPrevention": "enforced",
    "uniformBucketLevelAccess": True,
    "versioning": {"enabled": False},
}


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({}, []),
        ({"publicAccessPrevention": "inherited"}, ["publicAccessPrevention inherited"]),
        ({"publicAccessPrevention": None}, ["publicAccessPrevention unset"]),
        ({"uniformBucketLevelAccess": False}, ["allows object ACLs"]),
        ({"uniformBucketLevelAccess": None}, ["allows object ACLs"]),
        ({"versioning": {"enabled": True}}, ["keeps old object versions"]),
        (
            {"publicAccessPrevention": "inherited", "versioning": {"enabled": True}},
            ["publicAccessPrevention", "versions"],
        ),
        ({"publicAccessPrevention": UNKNOWN, "uniformBucketLevelAccess": UNKNOWN}, []),
    ],
)
def test_buckets_are_private(changes: dict[str, Any], problems: list[str]) -> None:
    props = {k: v for k, v in {**PRIVATE, **changes}.items() if v is not None}
    messages = validate(buckets_private, resource_args(BUCKET, props, "orders-payloads"))
    assert len(messages) == len(problems), messages
    assert all(p in m for p, m in zip(problems, messages, strict=True))


def test_other_types_are_not_judged() -> None:
    args = resource_args("gcp:pubsub/topic:Topic", {"publicAccessPrevention": "inherited"}, "t")
    assert validate(buckets_private, args) == []
