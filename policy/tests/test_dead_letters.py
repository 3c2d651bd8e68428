"""Dead-letter subscriptions keep their letters; Datastore grants reach one database."""

from __future__ import annotations

from typing import Any

import pytest

from rules.dead_letters import (
    datastore_grants_scoped_to_one_database,
    dead_letter_subscriptions_keep_messages,
)
from support import UNKNOWN, resource_args, validate

SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
MEMBER = "gcp:projects/iAMMember:IAMMember"
ONE_DB = 'resource.name == "projects/acme/databases/tasks-prod"'


@pytest.mark.parametrize(
    ("props", "problems"),
    [
        ({"messageRetentionDuration": "2678400s", "expirationPolicy": {"ttl": ""}}, []),
        ({"messageRetentionDuration": "604800s", "expirationPolicy": {"ttl": ""}}, []),
        ({"messageRetentionDuration": "600s", "expirationPolicy": {"ttl": ""}}, ["keeps"]),
        ({"messageRetentionDuration": "2678400s"}, ["expires after 31 days"]),
        (
            {"messageRetentionDuration": "2678400s", "expirationPolicy": {"ttl": "86400s"}},
            ["expires after 86400s"],
        ),
        ({"messageRetentionDuration": UNKNOWN, "expirationPolicy": {"ttl": UNKNOWN}}, []),
    ],
)
def test_subscriptions_keep_their_letters(props: dict[str, Any], problems: list[str]) -> None:
    messages = validate(
        dead_letter_subscriptions_keep_messages, resource_args(SUBSCRIPTION, props, "dl")
    )
    assert len(messages) == len(problems)
    assert all(p in m for p, m in zip(problems, messages, strict=True))


@pytest.mark.parametrize(
    ("props", "reported"),
    [
        ({"role": "roles/datastore.user", "condition": {"expression": ONE_DB}}, False),
        ({"role": "roles/datastore.user"}, True),
        ({"role": "roles/datastore.owner", "condition": {"expression": "true"}}, True),
        (
            {"role": "roles/datastore.user", "condition": {"expression": ONE_DB + " || true"}},
            True,
        ),
        ({"role": "roles/datastore.user", "condition": {"expression": UNKNOWN}}, False),
        ({"role": "roles/logging.logWriter"}, False),
    ],
)
def test_datastore_grants_reach_one_database(props: dict[str, Any], reported: bool) -> None:
    args = resource_args(MEMBER, {"project": "acme", "member": "serviceAccount:a@b", **props}, "g")
    messages = validate(datastore_grants_scoped_to_one_database, args)
    assert bool(messages) is reported
    assert all("every Firestore database" in m for m in messages)
