"""The plan document: a recording reduced to what a reviewer compares between branches.

Resources are keyed by their URN without the `urn:pulumi:STACK::PROJECT::` prefix
(`ParentType$Type::name`, as the mock monitor builds URNs), so a key is unique, stable
across runs and the same for two branches of a stack, or for two stacks. Serialised
with sorted keys and a trailing newline, two plans of the same program and config are
byte-identical: fit for `diff`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from plan.recorder import UNKNOWN, Recording

FORMAT = "cloudrun-tasks/plan@1"
"""Names this document's shape; a file without it is refused by `--diff`."""

AUTONAMED_NOTE = (
    "queue and service names get a random suffix when created;"
    " the suffix shown offline is a stand-in"
)


class PlanFileError(ValueError):
    """A file given as a plan is missing, not JSON, or not a plan document."""


def resource_key(urn: str) -> str:
    """`urn:pulumi:dev::proj::a$b::name` -> `a$b::name`: the URN without stack and project."""
    return urn.split("::", 2)[2]


def _numbers(value: Any) -> Any:
    """Pulumi sends every number as a float: give whole numbers back their int form."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def build(recording: Recording) -> dict[str, Any]:
    """The plan document of a recording (a plain, JSON-ready dict)."""
    keys = {r.urn: resource_key(r.urn) for r in recording.resources}
    resources = {
        keys[r.urn]: {
            "type": r.type,
            "name": r.name,
            # Top-level resources hang off the stack, which is not in the document.
            "parent": keys.get(r.parent, ""),
            "component": not r.custom,
            "protect": r.protect,
            "aliases": sorted({resource_key(urn) for urn in r.aliases}),
            "dependsOn": sorted({keys[urn] for urn in r.dependencies if urn in keys}),
            "inputDependencies": {
                prop: sorted({keys[urn] for urn in urns if urn in keys})
                for prop, urns in r.property_dependencies.items()
                if urns
            },
            "inputs": _numbers(dict(r.inputs)),
        }
        for r in recording.resources
    }
    return {
        "format": FORMAT,
        "project": recording.project,
        "stack": recording.stack,
        "unknown": UNKNOWN,
        "resources": resources,
        "outputs": _numbers(recording.outputs),
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: str) -> dict[str, Any]:
    """Read a plan written by `--format json`, or raise PlanFileError saying why not."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except OSError as error:
        raise PlanFileError(f"{path}: cannot read: {error.strerror}") from None
    except ValueError as error:
        raise PlanFileError(f"{path}: not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlanFileError(f"{path}: not a plan written by `--format json` ({FORMAT})")
    return document


@dataclass(frozen=True)
class Resource:
    """One entry of a plan document, with its key, for the renderers."""

    key: str
    type: str
    name: str
    parent: str
    component: bool
    protect: bool
    depends_on: tuple[str, ...]
    input_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    aliases: tuple[str, ...] = ()
    """Keys it had before, by its aliases (the engine moves it rather than re-creating)."""

    @property
    def label(self) -> str:
        return f"{short_type(self.type)} {self.name}"


def resources(document: dict[str, Any]) -> dict[str, Resource]:
    return {
        key: Resource(
            key=key,
            type=entry["type"],
            name=entry["name"],
            parent=entry["parent"],
            component=entry["component"],
            protect=entry["protect"],
            depends_on=tuple(entry["dependsOn"]),
            input_dependencies=entry["inputDependencies"],
            inputs=entry["inputs"],
            # Plans written before aliases were recorded have none.
            aliases=tuple(entry.get("aliases", ())),
        )
        for key, entry in sorted(document["resources"].items())
    }


def short_type(type_: str) -> str:
    """`gcp:cloudtasks/queue:Queue` -> `cloudtasks.Queue`; `pkg:index:TaskQueue` -> `TaskQueue`."""
    package, module, name = type_.split(":")
    if package == "gcp":
        return f"{module.split('/')[0]}.{name}"
    return name
