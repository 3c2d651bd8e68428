"""`--format mermaid`: components as subgraphs, resources as nodes, dependency arrows."""

from __future__ import annotations

import re
from typing import Any

from plan import graph
from plan.document import resources
from tests.plan.conftest import DEV_RESOURCES


def _ids(text: str) -> dict[str, str]:
    """Mermaid id -> label, for nodes and subgraphs."""
    return {m[1]: m[2] for m in re.finditer(r'(?:subgraph )?(r\d+)\["(.*?)"\]', text)}


def _edges(text: str, ids: dict[str, str]) -> set[tuple[str, str]]:
    return {(ids[a], ids[b]) for a, b in re.findall(r"^  (r\d+) --> (r\d+)$", text, re.M)}


def test_every_resource_is_drawn_once(dev_plan: dict[str, Any]) -> None:
    text = graph.render(dev_plan)
    assert text.startswith("flowchart LR\n")
    ids = _ids(text)
    assert len(ids) == len(resources(dev_plan)) == DEV_RESOURCES
    assert text.count("subgraph ") == text.count("  end\n") == 16  # one per component
    assert "cloudtasks.Queue<br/>orders" in ids.values()


def test_arrows_run_from_dependency_to_dependent(dev_plan: dict[str, Any]) -> None:
    text = graph.render(dev_plan)
    edges = _edges(text, _ids(text))
    queue = "cloudtasks.Queue<br/>orders"
    assert ("cloudrunv2.Service<br/>orders", queue) in edges
    assert ("serviceaccount.Account<br/>orders-invoker", queue) in edges
    # depends_on=[apis] reaches every resource of `apis`: one arrow from the component.
    assert ("ProjectApis<br/>apis", queue) in edges
    assert not any(a.startswith("projects.Service") and b == queue for a, b in edges)
    # The agent waits for one API only: that arrow is not collapsed into the component.
    agent = "projects.ServiceIdentity<br/>apis-cloudtasks-agent"
    assert ("projects.Service<br/>apis-cloudtasks", agent) in edges
    assert ("ProjectApis<br/>apis", agent) not in edges


def test_protected_resources_carry_a_lock(prod_plan: dict[str, Any]) -> None:
    labels = _ids(graph.render(prod_plan)).values()
    assert "cloudtasks.Queue 🔒<br/>orders" in labels
    assert "serviceaccount.Account<br/>orders-invoker" in labels


def test_quotes_in_names_cannot_break_the_chart(dev_plan: dict[str, Any]) -> None:
    key = next(iter(dev_plan["resources"]))
    entry = {**dev_plan["resources"][key], "name": 'say "hi"'}
    text = graph.render({**dev_plan, "resources": {**dev_plan["resources"], key: entry}})
    assert "say #quot;hi#quot;" in text
    assert 'say "hi"' not in text
