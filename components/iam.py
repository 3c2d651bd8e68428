"""Additive, resource-scoped IAM: the one way every component grants a role.

Each component takes `iam_members` (a list of `IamMember`) and turns each entry into one
`*IamMember` resource on the resource it owns. Authoritative `*IamBinding`/`*IamPolicy`
resources would wipe members granted elsewhere, and project-level grants reach every
resource in the project, so neither is ever used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pulumi

from . import names


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


def grant_all(
    owner: str,
    grants: Sequence[IamMember],
    create: Callable[[str, IamMember, list[pulumi.Alias] | None], pulumi.Resource],
) -> list[pulumi.Resource]:
    """Create one member resource per grant, named after the owner, role and key
    (components.names), with an alias to the name's former spelling when it changed."""
    derived = [names.grant(owner, grant.role, grant.key) for grant in grants]
    spelled = [name.name for name in derived]
    # Config-derived keys were checked up front (components.names.check_names); this
    # catches keys a program sets twice, such as one written out and one from config.
    duplicates = sorted({name for name in spelled if spelled.count(name) > 1})
    if duplicates:
        raise ValueError(f"iam_members: the same role and key are granted twice: {duplicates}")
    # Former spellings meet only among one owner's grants, so this owner's grants decide.
    unaliased = names.unaliased(derived)
    return [
        create(name.name, grant, name.aliases(unaliased))
        for name, grant in zip(derived, grants, strict=True)
    ]
