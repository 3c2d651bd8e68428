"""Every policy of the pack, importable without starting the policy server."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from rules.alerts import queue_alerts_present
from rules.apis import apis_never_disabled_on_destroy
from rules.buckets import buckets_private
from rules.cloudrun import cloudrun_dedicated_service_account, cloudrun_ingress_not_all
from rules.dead_letters import (
    datastore_grants_scoped_to_one_database,
    dead_letter_subscriptions_keep_messages,
)
from rules.iam import no_authoritative_iam, no_project_level_scoped_roles, no_public_iam_members
from rules.images import cloudrun_image_pinned_by_digest
from rules.protection import prod_resources_protected
from rules.queues import queue_retries_bounded
from rules.routing import queue_and_service_same_location, queue_within_service_capacity
from rules.schedules import schedule_identity_least_privilege
from rules.service_accounts import no_service_account_keys

POLICIES: Final[list[Policy]] = [
    # Mandatory: a violation stops the preview or update.
    no_public_iam_members,
    no_authoritative_iam,
    no_project_level_scoped_roles,
    no_service_account_keys,
    cloudrun_dedicated_service_account,
    queue_and_service_same_location,
    apis_never_disabled_on_destroy,
    queue_retries_bounded,
    prod_resources_protected,
    dead_letter_subscriptions_keep_messages,
    datastore_grants_scoped_to_one_database,
    schedule_identity_least_privilege,
    buckets_private,
    # Mandatory in prod; policy/config/{dev,staging}.json make it advisory there.
    cloudrun_image_pinned_by_digest,
    queue_alerts_present,
    # Advisory: reported, never blocking.
    cloudrun_ingress_not_all,
    queue_within_service_capacity,
]
