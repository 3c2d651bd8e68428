"""Dead letters and idempotency records: kept where they can be replayed, reachable by
the one database they belong to."""

from __future__ import annotations

import re
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import UNKNOWN, known_str, lookup

SUBSCRIPTION: Final = "gcp:pubsub/subscription:Subscription"
PROJECT_MEMBER: Final = "gcp:projects/iAMMember:IAMMember"
# Pub/Sub's default retention (7 days): a dead-letter subscription keeping less than that
# loses letters before anyone looks (cloud.google.com/pubsub/docs/subscription-properties).
MIN_RETENTION_S: Final = 7 * 24 * 3600
_SECONDS: Final = re.compile(r"^(\d+)(?:\.\d+)?s$")
# The per-database scope documented for Firestore (firestore/docs/manage-databases,
# "per-database access permissions"): resource.name == "projects/P/databases/D".
_ONE_DATABASE: Final = re.compile(r'^resource\.name == "projects/[^/"]+/databases/[^/"]+"$')


def _keeps_letters(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != SUBSCRIPTION:
        return
    ttl = lookup(args.props, "expirationPolicy", "ttl")
    if ttl is not UNKNOWN and ttl != "":
        report_violation(
            f"'{args.name}' expires after {ttl or '31 days'} without activity, and its"
            ' dead letters with it: set expiration_policy ttl to "" (never).',
            None,
        )
    retention = known_str(args.props, "messageRetentionDuration")
    match = _SECONDS.match(retention or "")
    if retention is not None and (match is None or int(match.group(1)) < MIN_RETENTION_S):
        report_violation(
            f"'{args.name}' keeps messages for {retention}: at least {MIN_RETENTION_S}s"
            " (7 days) so dead letters can still be replayed.",
            None,
        )


def _datastore_one_database(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    if args.resource_type != PROJECT_MEMBER:
        return
    role = known_str(args.props, "role")
    if role is None or not role.startswith("roles/datastore."):
        return
    expression = lookup(args.props, "condition", "expression")
    if expression is UNKNOWN:
        return
    if not isinstance(expression, str) or not _ONE_DATABASE.match(expression):
        report_violation(
            f"'{args.name}' grants {role} project-wide: every Firestore database of the"
            ' project. Add the condition resource.name == "projects/P/databases/D".',
            None,
        )


dead_letter_subscriptions_keep_messages = ResourceValidationPolicy(
    name="dead-letter-subscriptions-keep-messages",
    description="Pub/Sub subscriptions never expire and keep messages at least 7 days.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_keeps_letters,
)

datastore_grants_scoped_to_one_database = ResourceValidationPolicy(
    name="datastore-grants-scoped-to-one-database",
    description="A project-level Datastore/Firestore role carries a one-database condition.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_datastore_one_database,
)
