"""Which input changes make the engine delete and re-create a resource, and what that loses.

Read from plan/forcenew/table.json, generated from the provider's own schema (the
`ForceNew` attributes of terraform-provider-google-beta, which pulumi-gcp bridges) by
`python -m plan.forcenew.generate`; its `source` names the tag, commit and date.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("forcenew") / "table.json"

# What a replacement destroys, by type: the data or identity the new resource does not get.
LOST = {
    "gcp:firestore/database:Database": (
        "every document in the database (the idempotency records: tasks already done may run again)"
    ),
    "gcp:cloudtasks/queue:Queue": (
        "every task waiting in the queue; the deleted queue's name stays blocked for up"
        " to 3 days, so re-creating it under the same name can fail"
    ),
    "gcp:cloudrunv2/service:Service": (
        "the service's URL (a new one is minted) and its revisions; requests in flight are cut"
    ),
    "gcp:pubsub/topic:Topic": "messages not yet delivered to a subscription",
    "gcp:pubsub/subscription:Subscription": (
        "every undelivered message in the subscription (the dead letters waiting for a replay)"
    ),
    "gcp:serviceaccount/account:Account": (
        "the account's unique id: grants made outside this stack to the old account stop working"
    ),
    "gcp:firestore/field:Field": "nothing stored; TTL deletion pauses until it is re-applied",
    "gcp:monitoring/alertPolicy:AlertPolicy": "the policy's open incidents and their history",
    "gcp:monitoring/notificationChannel:NotificationChannel": (
        "the channel's verification; policies pointing at its id lose it"
    ),
    # A tick's task is named from the job id and the schedule time (handler/tick_wire.py):
    # under a new id, a tick both the old and the new job fire names two tasks.
    "gcp:cloudscheduler/job:Job": (
        "the job's last-attempt status; ticks due while no job exists are not fired, and"
        " under a new job id a tick both jobs fire becomes two tasks"
    ),
    # A logs-based metric counts the entries that arrive while it exists.
    "gcp:logging/metric:Metric": (
        "entries logged while it is gone (tick attempts, lost claims) are never counted: the"
        " alert reading it cannot see them"
    ),
}
ACCESS_GAP = "the grant is removed before it is made again: access stops for a moment"


@functools.cache
def table() -> dict[str, Any]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def source() -> str:
    """`terraform-provider-google-beta v7.45.0 (3dc173a, 2026-08-18)`: where the table is from."""
    src = table()["source"]
    return (
        f"{src['repository'].rsplit('/', 1)[1]} {src['tag']}"
        f" ({src['commit'][:7]}, {src['commitDate']})"
    )


ABANDONED = (
    "the old database is abandoned (deletionPolicy ABANDON), not deleted: its documents"
    " stay there, but the program's new database starts empty"
)


def lost(type_: str, inputs: dict[str, Any]) -> str:
    if type_ == "gcp:firestore/database:Database" and inputs.get("deletionPolicy") == "ABANDON":
        return ABANDONED
    if type_ in LOST:
        return LOST[type_]
    return ACCESS_GAP if "iam" in type_.lower() else "nothing stored"


def schema_path(type_: str, path: str) -> str | None:
    """The table's path for a flattened input path (`a.b[0].c` -> `a.b[].c`), or None when
    the table does not know it. Keys inside a map input (labels) are the map's."""
    inputs = table()["types"].get(type_, {}).get("inputs", {})
    prefix = ""
    parts = re.sub(r"\[\d+\]", "[]", path).split(".")
    for index, part in enumerate(parts):
        name = part.removesuffix("[]")
        prefix = f"{prefix}.{name}" if prefix else name
        entry = inputs.get(prefix)
        if entry is None:
            return None
        if entry["kind"] == "map":
            return prefix
        if index == len(parts) - 1:
            # A whole item of a list of values (`args[]`) has its own entry.
            return f"{prefix}[]" if part != name and f"{prefix}[]" in inputs else prefix
        if part != name:  # an item of a list of blocks: its fields are `envs[].name`
            prefix += "[]"
    return None


def forcing(type_: str, path: str) -> str | None:
    """The Terraform attribute whose ForceNew makes a change at PATH replace the resource."""
    known = schema_path(type_, path)
    if known is None:
        return None
    entry = table()["types"][type_]["inputs"][known]
    if not entry["forceNew"]:
        return None
    return entry.get("inheritedFrom", entry["terraform"])
