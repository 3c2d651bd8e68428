"""Additive, resource-scoped IAM: the one way every component grants a role.

Each component takes `iam_members` (a list of `IamMember`) and turns each entry into one
`*IamMember` resource on the resource it owns. Authoritative `*IamBinding`/`*IamPolicy`
resources would wipe members granted elsewhere, and project-level grants reach every
resource in the project, so neither is ever used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class IamMember:
    """One additive grant of `role` to `member`.

    `key` names the grant in the logical resource name. It must stay stable across runs,
    since a new name replaces the grant, so members known only after deployment (an
    `Output`) get a fixed key such as "invoker".
    """

    role: str
    member: pulumi.Input[str]
    key: str


def members(role: str, names: Iterable[str]) -> list[IamMember]:
    """Grants of one role to members spelled out in config: each is its own stable key."""
    return [IamMember(role=role, member=name, key=name) for name in names]


def grant_name(owner: str, grant: IamMember) -> str:
    role = grant.role.removeprefix("roles/").replace(".", "-")
    return f"{owner}-{role}-{re.sub(r'[^A-Za-z0-9@._-]+', '-', grant.key)}"


def grant_all(
    owner: str,
    grants: Sequence[IamMember],
    create: Callable[[str, IamMember], pulumi.Resource],
) -> list[pulumi.Resource]:
    """Create one member resource per grant, named after the owner, role and key."""
    names = [grant_name(owner, grant) for grant in grants]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"iam_members: the same role and key are granted twice: {duplicates}")
    return [create(name, grant) for name, grant in zip(names, grants, strict=True)]
