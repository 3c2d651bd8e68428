"""The stack's idempotency store: a Firestore database and the TTL policy that empties it.

What the handler and this program agree on (the handler writes, this program deletes):
records live in collection group RECORDS, and each carries a Timestamp field UPDATED_AT
set on every write. The TTL policy deletes a record `ttl` after that time (TTL field plus
expiration offset; firestore/native/docs/ttl, Admin API Field.TtlConfig), so retention is
set here, in stack config, and a change applies to records already written.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from .durations import Duration

RECORDS = "idempotency"
"""Collection group of the handler's records."""
UPDATED_AT = "updatedAt"
"""Timestamp of a record's last write: the TTL field."""
NATIVE = "FIRESTORE_NATIVE"


@dataclass
class IdempotencyStoreArgs:
    project: pulumi.Input[str]
    database: str
    """Database id (components.settings.idempotency: 4..63 of [a-z0-9-])."""
    location: str
    """A Firestore region or multi-region near the pipelines (validated by settings)."""
    ttl: Duration
    """How long a record is kept after its last write: at least every retry window."""
    protect: bool = False
    """Pulumi protect, Firestore delete protection, and a destroy that keeps the data."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """The ProjectApis component: the Firestore API must be on first."""


class IdempotencyStore(pulumi.ComponentResource):
    """A Native-mode Firestore database of its own (never the project's `(default)`, whose
    location is tied to the project and which may hold other data), so access can be
    granted to this database alone (components.pipeline: an IAM condition on its name)."""

    database_id: pulumi.Output[str]
    """The database id, from the created database: grants and env vars wait for it."""

    def __init__(
        self, name: str, args: IdempotencyStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:IdempotencyStore", name, None, opts)
        database = gcp.firestore.Database(
            name,
            project=args.project,
            name=args.database,
            location_id=args.location,
            type=NATIVE,
            # Protected: Firestore refuses to delete it, and a destroy that gets past Pulumi
            # protect only drops it from the state (ABANDON). Unprotected stacks (dev) are
            # torn down whole (DELETE).
            delete_protection_state="DELETE_PROTECTION_ENABLED"
            if args.protect
            else "DELETE_PROTECTION_DISABLED",
            deletion_policy="ABANDON" if args.protect else "DELETE",
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=list(args.depends_on)
            ),
        )
        # A record is deleted `ttl` after its last write, typically within 24 h after that
        # (firestore/native/docs/ttl). The timestamp is exempt from indexing (an empty
        # index config): TTL needs no index, and an index on an ever-increasing timestamp
        # is a write hotspot (the same page's best practices).
        gcp.firestore.Field(
            name,
            project=args.project,
            database=database.name,
            collection=RECORDS,
            field=UPDATED_AT,
            ttl_config=gcp.firestore.FieldTtlConfigArgs(expiration_offset=str(args.ttl)),
            index_config=gcp.firestore.FieldIndexConfigArgs(indexes=[]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.database_id = database.name
        self.register_outputs({"databaseId": self.database_id})
