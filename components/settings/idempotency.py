"""The stack's idempotency store: one Firestore database, where it lives, how long records stay.

`cloudrun-tasks:idempotency` (all keys optional):
- `database`: the database id; default `tasks-<stack>` (StackSettings.resolve_database).
- `location`: a Firestore location; default the one nearest every pipeline (`default_location`).
- `ttl`: how long a record is kept after its last write; default and minimum 31 days, the
  dead letters' retention, so that a replay always finds its task's record.

The handler keeps one record per task, claimed in a transaction; the TTL policy deletes it
`ttl` after the record's last write, so a record must outlive every redelivery Cloud
Tasks can still make (`retry_window`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator

from ..durations import NANOS_PER_SECOND, Duration
from ..name_rules import FIRESTORE_DATABASE_ID
from .validation import Settings, fail, matching

# Database ids: components.name_rules.FIRESTORE_DATABASE_ID. `(default)` is the project's
# default database, which this program never uses (its location is tied to the project's
# default resource location, and it may hold other data).
DATABASE_ID = FIRESTORE_DATABASE_ID.pattern
DATABASE_ID_ALLOWED = f"a database id: {FIRESTORE_DATABASE_ID.allowed}"
DEFAULT_DATABASE_PREFIX = "tasks"

# Firestore locations (firestore/native/docs/locations): multi-regions and the regions
# they replicate in, and the regional locations, as listed by the Firestore API's
# projects.locations (firestore/docs/reference/rest/v1/projects.locations/get).
MULTI_REGIONS = {
    "nam5": "us-",  # United States: us-central1, us-central2 (witness us-east1)
    "nam7": "us-",  # United States: us-central1, us-east1 (witness us-east4)
    "eur3": "europe-",  # Europe: europe-west1, europe-west4 (witness europe-north1)
}
# The multi-region a stack whose pipelines all run in one geography defaults to.
GEOGRAPHY_DEFAULT = {"us-": "nam5", "europe-": "eur3"}
REGIONS = frozenset(
    [
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "asia-southeast3",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west10",
        "europe-west12",
        "europe-west15",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    ]
)
LOCATIONS = frozenset(REGIONS | MULTI_REGIONS.keys())

# TTL policies take an expiration offset of whole seconds, 1..2,147,483,647
# (firestore Admin API, Field.TtlConfig.expiration_offset; sub-second values are rejected).
MAX_TTL = Duration.of_seconds(2**31 - 1)
# Pub/Sub's longest subscription retention, 31 days (pubsub/docs/subscription-properties:
# message retention duration 10 minutes..31 days): dead letters wait that long for a replay,
# and a replay is keyed on its task's record, which must still be there (handler/task.py).
DEAD_LETTER_RETENTION = Duration.of_seconds(31 * 24 * 3600)
DEFAULT_TTL = DEAD_LETTER_RETENTION


def _location(value: str) -> str:
    if value not in LOCATIONS:
        raise fail(
            f"must be a Firestore location: a multi-region ({', '.join(sorted(MULTI_REGIONS))})"
            " or a region such as 'us-central1' (firestore/native/docs/locations)"
        )
    return value


def _ttl(value: Duration) -> Duration:
    if value.nanos % NANOS_PER_SECOND:
        raise fail("must be a whole number of seconds (Firestore TTL offsets are)")
    if not DEAD_LETTER_RETENTION <= value <= MAX_TTL:
        raise fail(
            f"must be >= {DEAD_LETTER_RETENTION} and <= {MAX_TTL}: dead letters are kept 31"
            " days, and a replay whose task's record is gone could run a task that had"
            " finished after all"
        )
    return value


DatabaseId = Annotated[str, matching(DATABASE_ID, DATABASE_ID_ALLOWED)]


class IdempotencySettings(Settings):
    """The stack's Firestore database for the handler's idempotency records."""

    database: DatabaseId | None = None
    """Firestore database id, default `tasks-<stack>`: 4..63 of `[a-z0-9-]`, starting with a
    letter, ending with a letter or digit."""
    location: Annotated[str, AfterValidator(_location)] | None = None
    """A Firestore location (`nam5`, `nam7`, `eur3` or a region); default and rule: near the
    pipelines (see Concepts: Claims). A database's location can't change later."""
    ttl: Annotated[Duration, AfterValidator(_ttl)] = DEFAULT_TTL
    """Whole seconds, `2678400s` (31 days, the dead letters' retention, so that a replay finds its
    task's record)..`2147483647s`, and at least every pipeline's retry window. Default `744h`."""


def near(location: str, region: str) -> bool:
    """A pipeline in REGION is near a database in LOCATION: the same region, or the
    multi-region of the pipeline's geography (nam5, nam7: us-*; eur3: europe-*)."""
    if location == region:
        return True
    geography = MULTI_REGIONS.get(location)
    return geography is not None and region.startswith(geography)


def default_location(regions: Iterable[str], stack_region: str | None) -> str | None:
    """Where the database goes when `idempotency.location` is not set.

    One location near every pipeline if there is one: their shared region, else the
    multi-region of their shared geography (nam5 for us-*, eur3 for europe-*). Pipelines on
    several continents can't all be near one database: then the location near the stack's
    gcp:region (its geography's multi-region, else the region), and the others reach it
    across regions. None when there is nothing to go by.
    """
    regions = sorted(set(regions))
    if len(regions) == 1 and regions[0] in REGIONS:
        return regions[0]
    for prefix, multi in GEOGRAPHY_DEFAULT.items():
        if regions and all(r.startswith(prefix) for r in regions):
            return multi
    if stack_region is None:
        return None
    for prefix, multi in GEOGRAPHY_DEFAULT.items():
        if stack_region.startswith(prefix):
            return multi
    return stack_region if stack_region in REGIONS else None


def database_for_stack(stack: str) -> str:
    """`tasks-<stack>`, the stack name lowercased and cut to a valid database id."""
    slug = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-")
    # An empty slug leaves `tasks-`, and the cut's rstrip makes that `tasks`.
    return f"{DEFAULT_DATABASE_PREFIX}-{slug}"[:63].rstrip("-")


def retry_window(
    max_attempts: int,
    max_retry_duration: Duration,
    max_backoff: Duration,
    dispatch_deadline: Duration,
) -> Duration:
    """The longest a task can still be delivered after its first attempt.

    Cloud Tasks stops retrying only once BOTH limits are spent: maxRetryDuration has passed
    (0s: no time limit) and maxAttempts attempts were made (-1: no count limit)
    (tasks/docs/reference/rest/v2/projects.locations.queues#RetryConfig). By time: the last
    attempt starts before maxRetryDuration ends and may run a dispatchDeadline. By count:
    each attempt may run a dispatchDeadline and each wait between attempts is at most
    maxBackoff. The window is the longer of the limits that apply (the queue settings
    refuse -1 attempts with 0s, which would retry forever).
    """
    spans = []
    if max_retry_duration.nanos:
        spans.append(max_retry_duration.nanos + dispatch_deadline.nanos)
    if max_attempts != -1:
        spans.append(
            max_attempts * dispatch_deadline.nanos + (max_attempts - 1) * max_backoff.nanos
        )
    return Duration(max(spans, default=0))


NEAR_RULE = (
    "the pipeline's own region, or the multi-region of its geography"
    " (nam5 or nam7 for us-*, eur3 for europe-*)"
)


def location_problem(
    location: str | None, regions: dict[str, str], stack_region: str | None
) -> str | None:
    """Why LOCATION (None: not set) can't hold the database of pipelines in REGIONS
    (pipeline -> region), or None when it can.

    The rule: a database must be near every pipeline when one location can be (all
    pipelines in one region, or all in us-*, or all in europe-*); when the pipelines span
    geographies it must be near at least one of them, and the others make a cross-region
    round trip per claim.
    """
    shared = default_location(regions.values(), None)
    if location is None:
        if default_location(regions.values(), stack_region) is not None:
            return None
        where = ", ".join(f"{p} ({r})" for p, r in sorted(regions.items()))
        return (
            f"is required: no Firestore location is near every pipeline ({where}) and"
            f" gcp:region suggests none; pick one near at least one of them ({NEAR_RULE})"
        )
    far = sorted(p for p, r in regions.items() if not near(location, r))
    if shared is not None and far:
        return (
            f"must be near every pipeline ({NEAR_RULE}), e.g. {shared!r}; not near:"
            f" {', '.join(f'{p} ({regions[p]})' for p in far)}"
        )
    if len(far) == len(regions):
        return f"must be near at least one pipeline ({NEAR_RULE}); it is near none"
    return None
