"""The resource graph as a Mermaid flowchart, which GitHub draws in a PR comment.

Components are subgraphs, resources are nodes, and an arrow runs from a dependency to
the resource that waits for it. `depends_on=[component]` reaches the engine as one
dependency per resource in that component; when a resource waits for every resource
of a component, one arrow from the component says the same with less ink.
"""

from __future__ import annotations

from typing import Any

from plan.document import Resource, resources, short_type


def _text(label: str) -> str:
    return label.replace('"', "#quot;")


def _ancestors(key: str, by_key: dict[str, Resource]) -> list[str]:
    found = []
    while by_key[key].parent:
        key = by_key[key].parent
        found.append(key)
    return found


def _sources(
    resource: Resource, by_key: dict[str, Resource], members: dict[str, set[str]]
) -> list[str]:
    """The keys arrows into RESOURCE start from: whole components where possible."""
    pending = set(resource.depends_on)
    own = set(_ancestors(resource.key, by_key))
    sources = []
    # Outermost components first, so a resource waiting for all of `apis` gets one arrow.
    candidates = {a for dep in pending for a in _ancestors(dep, by_key)} - own
    for component in sorted(candidates, key=lambda c: (-len(members[c]), c)):
        if members[component] and members[component] <= pending:
            sources.append(component)
            pending -= members[component]
    return sorted(sources) + sorted(pending)


def render(document: dict[str, Any]) -> str:
    by_key = resources(document)
    ids = {key: f"r{index}" for index, key in enumerate(by_key)}
    children: dict[str, list[Resource]] = {}
    members: dict[str, set[str]] = {key: set() for key in by_key}
    for resource in by_key.values():
        children.setdefault(resource.parent, []).append(resource)
        if not resource.component:
            for ancestor in _ancestors(resource.key, by_key):
                members[ancestor].add(resource.key)
    lines = ["flowchart LR"]

    def walk(parent: str, indent: str) -> None:
        for resource in children.get(parent, []):
            lock = " 🔒" if resource.protect else ""
            label = _text(f"{short_type(resource.type)}{lock}<br/>{resource.name}")
            if resource.component:
                lines.append(f'{indent}subgraph {ids[resource.key]}["{label}"]')
                walk(resource.key, indent + "  ")
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{ids[resource.key]}["{label}"]')

    walk("", "  ")
    for resource in by_key.values():
        if not resource.component:
            lines.extend(
                f"  {ids[source]} --> {ids[resource.key]}"
                for source in _sources(resource, by_key, members)
            )
    return "\n".join(lines) + "\n"
