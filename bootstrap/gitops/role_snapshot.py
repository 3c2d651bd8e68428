"""Google's predefined roles as kept in iam_snapshot/ (source commit and date in its
README), and what counts as a read there."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Final

SNAPSHOT_DIR: Final = Path(__file__).resolve().parent / "iam_snapshot" / "roles"

# Google's own read-only roles for the services the program uses ("View topics,
# subscriptions, and snapshots", "Read access to all Cloud Datastore resources", ...).
# The verbs they grant define a read; a permission with any other verb is a write.
VIEWER_ROLES: Final = (
    "roles/pubsub.viewer",
    "roles/run.viewer",
    "roles/cloudtasks.viewer",
    "roles/secretmanager.viewer",
    "roles/datastore.viewer",
    "roles/monitoring.viewer",
    "roles/iam.serviceAccountViewer",
    "roles/serviceusage.serviceUsageViewer",
    "roles/cloudscheduler.viewer",
    "roles/storage.viewer",
)

Roles = Mapping[str, frozenset[str]]
"""Role name (`roles/...`) -> the permissions it includes."""


@cache
def snapshot() -> Roles:
    """Every kept role, read from its file."""
    return {
        f"roles/{path.stem}": frozenset(json.loads(path.read_text())["includedPermissions"])
        for path in sorted(SNAPSHOT_DIR.glob("*.json"))
    }


def verb(permission: str) -> str:
    """`pubsub.topics.getIamPolicy` -> `getIamPolicy`."""
    return permission.rsplit(".", 1)[1]


def read_verbs(roles: Roles) -> frozenset[str]:
    return frozenset(verb(p) for role in VIEWER_ROLES for p in roles[role])


def writes(permissions: Iterable[str], roles: Roles) -> set[str]:
    """The permissions among PERMISSIONS whose verb no Google viewer role grants."""
    reads = read_verbs(roles)
    return {p for p in permissions if verb(p) not in reads}


def covered(roles: Iterable[str], snapshot_roles: Roles) -> frozenset[str]:
    """Everything ROLES grant together; KeyError names a role missing from the snapshot."""
    return frozenset().union(*(snapshot_roles[role] for role in roles))
