"""The public interface as a consumer sees it, from the provider's inferred schema: each
component's inputs and outputs and each type's properties, with type, required-ness and
description. A change to any of them must be announced in CHANGELOG.md."""

from __future__ import annotations

import json
import re
from typing import Any

UNRELEASED = re.compile(r"^## Unreleased\n(.*?)(?=^## |\Z)", re.M | re.S)


def members(schema: dict[str, Any]) -> dict[str, str]:
    """`Owner.property` (owner a component or type, by its short name) -> its shape."""
    found: dict[str, str] = {}
    for token, resource in schema.get("resources", {}).items():
        owner = token.rsplit(":", 1)[-1]
        found[owner] = json.dumps(resource.get("description"))
        for kind, required in (("inputProperties", "requiredInputs"), ("properties", "required")):
            for name, prop in resource.get(kind, {}).items():
                shape = {"in" if kind == "inputProperties" else "out": prop}
                shape["required"] = name in resource.get(required, [])
                found[f"{owner}.{name}"] = json.dumps(shape, sort_keys=True)
    for token, type_ in schema.get("types", {}).items():
        owner = token.rsplit(":", 1)[-1]
        found[owner] = json.dumps(type_.get("description"))
        for name, prop in type_.get("properties", {}).items():
            shape = {"prop": prop, "required": name in type_.get("required", [])}
            found[f"{owner}.{name}"] = json.dumps(shape, sort_keys=True)
    return found


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every member added, removed or changed between two schemas."""
    old, new = members(before), members(after)
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def unannounced(changed: list[str], changelog: str) -> list[str]:
    """The changes CHANGELOG's "## Unreleased" section doesn't name (as `Owner.member`)."""
    section = UNRELEASED.search(changelog)
    named = set(re.findall(r"`([A-Za-z]+(?:\.[A-Za-z]+)?)`", section.group(1) if section else ""))
    return [name for name in changed if name not in named]
