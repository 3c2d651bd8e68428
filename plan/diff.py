"""What changed between two plans: added, removed, moved and changed resources and outputs.

Changes the engine can only apply by deleting and re-creating a resource are flagged
first and loudly, with the input that forces it (from the provider's schema, see
plan.replacement), what the replacement loses, and whether `protect` makes `pulumi up`
refuse it. A resource whose alias names a resource of the base plan is moved there, as
the engine does, not deleted and re-created; its setting changes are compared across
the move. JSON held in an input and long text are compared by key and by line
(plan.readable), so a one-field change reads as one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from plan import readable, replacement
from plan.document import Resource, resources, short_type
from plan.recorder import UNKNOWN


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': [1]}} -> {'a.b[0]': 1}: one entry per leaf, so a change names its key."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            # A list keyed by its items' titles (plan.readable) reads `tiles["Title"]`.
            joint = "" if str(key).startswith("[") else "."
            flat.update(flatten(item, f"{prefix}{joint}{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


ABSENT = "(absent)"
"""Stands for a setting one side of the diff does not have."""


def _changes(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    old, new = flatten(before), flatten(after)
    changes: list[tuple[str, Any, Any]] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, ABSENT), new.get(key, ABSENT)
        if a == b:
            continue
        if readable.is_long_text(a) and readable.is_long_text(b):
            changes += readable.line_changes(key, a, b)
        else:
            changes.append((key, *readable.elide(a, b)))
    return changes


@dataclass(frozen=True)
class Forced:
    """An input change that replaces the resource, and the provider attribute that says so."""

    path: str
    attribute: str


@dataclass
class PlanDiff:
    added: list[Resource] = field(default_factory=list)
    removed: list[Resource] = field(default_factory=list)
    changed: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)
    """Resource key -> (setting, before, after); ABSENT where a side lacks the setting."""
    replaced: dict[str, list[Forced]] = field(default_factory=dict)
    """Resource key -> the input changes that force its replacement."""
    protected: set[str] = field(default_factory=set)
    """Keys of replaced or removed resources the base plan protects: `pulumi up` refuses."""
    moved: dict[str, str] = field(default_factory=dict)
    """Resource key in the head plan -> its key in the base plan, by an alias."""
    outputs: list[tuple[str, Any, Any]] = field(default_factory=list)
    both: dict[str, Resource] = field(default_factory=dict)
    """Every resource of either plan, by key."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.moved or self.changed or self.outputs)


def _moves(old: dict[str, Resource], new: dict[str, Resource]) -> dict[str, str]:
    """New key -> old key, for each new resource the engine would keep from the base.

    First by the resource's own aliases, each old resource claimed once. Then, as the
    engine gives children their parent's aliases: a child whose key changed only
    because its parent changed type (keys hold the parent's type) is the same child.
    """
    gone = old.keys() - new.keys()
    moves: dict[str, str] = {}

    def claim(key: str, candidates: Iterable[str]) -> bool:
        free = (c for c in candidates if c in gone and c not in moves.values())
        former = next(free, None)
        if former is not None:
            moves[key] = former
        return former is not None

    for key in sorted(new.keys() - old.keys()):
        claim(key, new[key].aliases)
    claimed = True
    while claimed:
        claimed = False
        for key in sorted(new.keys() - old.keys() - moves.keys()):
            parent_before = moves.get(new[key].parent)
            if parent_before is not None:
                own_type = parent_before.split("::", 1)[0].split("$")[-1]
                child = new[key]
                claimed |= claim(key, [f"{own_type}${child.type}::{child.name}"])
    return moves


def compare(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    old, new = resources(base), resources(head)
    moved = _moves(old, new)
    diff = PlanDiff(
        added=[new[key] for key in sorted(new.keys() - old.keys() - moved.keys())],
        removed=[old[key] for key in sorted(old.keys() - new.keys() - set(moved.values()))],
        moved=moved,
        outputs=_changes(base["outputs"], head["outputs"]),
        both={**old, **new},
    )
    pairs = {key: key for key in old.keys() & new.keys()} | moved
    for key, old_key in sorted(pairs.items()):
        before, after = old[old_key], new[key]
        changes = _changes(readable.expand(before.inputs), readable.expand(after.inputs))
        if before.protect != after.protect:
            changes.append(("(protect)", before.protect, after.protect))
        if changes:
            diff.changed[key] = changes
        forcing = _forced(after.type, before.inputs, after.inputs)
        if forcing:
            diff.replaced[key] = forcing
            if before.protect:
                diff.protected.add(key)
    diff.protected |= {r.key for r in diff.removed if r.protect}
    return diff


def _forced(type_: str, before: dict[str, Any], after: dict[str, Any]) -> list[Forced]:
    old, new = flatten(before), flatten(after)
    found = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path, ABSENT) != new.get(path, ABSENT):
            attribute = replacement.forcing(type_, path)
            if attribute is not None:
                found.append(Forced(path, attribute))
    return found


def _move(both: dict[str, Resource], key: str, old_key: str) -> str:
    """`TYPE NAME: renamed from OLD, moved from PARENT to PARENT` (what changed of the three)."""
    before, after = both[old_key], both[key]
    how = []
    if before.type != after.type:
        how.append(f"was a {short_type(before.type)}")
    if before.name != after.name:
        how.append(f"renamed from {before.name}")
    if before.parent != after.parent:
        how.append(f"moved from {_place(both, before.parent)} to {_place(both, after.parent)}")
    return f"{after.label}: {', '.join(how)}"


def _place(both: dict[str, Resource], parent: str) -> str:
    return both[parent].label if parent in both else "the stack"


def _refusal(diff: PlanDiff, key: str) -> list[str]:
    if key not in diff.protected:
        return []
    return [
        "   protected: `pulumi up` refuses to delete it and stops; to go ahead, unprotect it"
        " in an update of its own first"
    ]


def _show(value: Any) -> str:
    return value if value in (ABSENT, UNKNOWN) else json.dumps(value, ensure_ascii=False)


def render(diff: PlanDiff, base_name: str, head_name: str) -> str:
    lines = [f"Plan changes from {base_name} to {head_name}:"]
    if diff.empty:
        return lines[0] + " none.\n"
    loud = []
    for key, forced in diff.replaced.items():
        resource = diff.both[key]
        fields = ", ".join(f"{f.path} (ForceNew {f.attribute})" for f in forced)
        loud += [
            f"!! REPLACE {resource.label}: {fields} changed -- deleted and re-created;"
            f" lost: {replacement.lost(resource.type, resource.inputs)}",
            *_refusal(diff, key),
        ]
    for r in (r for r in diff.removed if r.type in replacement.LOST):
        lost = replacement.lost(r.type, r.inputs)
        loud += [f"!! DELETE {r.label}: lost: {lost}", *_refusal(diff, r.key)]
    if diff.replaced:
        loud.append(f"   (ForceNew from the provider's schema: {replacement.source()})")
    if loud:
        lines += ["", *loud]
    if diff.added:
        lines += ["", "Added:", *(f"  + {r.label}" for r in diff.added)]
    if diff.removed:
        lines += ["", "Removed:", *(f"  - {r.label}" for r in diff.removed)]
    if diff.moved:
        lines += ["", "Kept by an alias (not re-created):"]
        lines += [f"  > {_move(diff.both, key, old_key)}" for key, old_key in diff.moved.items()]
    if diff.changed:
        lines += ["", "Changed:"]
        for key, changes in diff.changed.items():
            lines.append(f"  ~ {diff.both[key].label}")
            lines += [f"      {prop}: {_show(a)} -> {_show(b)}" for prop, a, b in changes]
    if diff.outputs:
        lines += ["", "Stack outputs:"]
        lines += [f"  ~ {prop}: {_show(a)} -> {_show(b)}" for prop, a, b in diff.outputs]
    lines += [
        "",
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.moved)} moved,"
        f" {len(diff.changed)} changed, {len(diff.replaced)} replaced.",
    ]
    return "\n".join(lines) + "\n"
