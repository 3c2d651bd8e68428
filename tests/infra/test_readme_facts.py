"""The README's facts about what gets built come from the plans: counts, APIs, components,
the diagram's parts and the alert table can't drift from the program."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plan import document, readme

README = readme.README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    return readme.plans()


def test_the_generated_section_is_current(plans: dict[str, dict[str, Any]]) -> None:
    assert readme.current(README) == readme.render(plans), (
        "README.md's plan-facts section is stale: run .venv/bin/python -m plan.readme"
    )


def test_the_section_has_the_counts_the_issue_found(plans: dict[str, dict[str, Any]]) -> None:
    section = readme.current(README)
    # Issue 20 found 29 and 8 for dev; its schedule (issue 21) added 10 resources
    # (APIs, agent, ticker, grants, job, tick metric, alert) in 2 components.
    assert "| dev | 1 | 39 | 10 |" in section
    assert "Per pipeline (dev's `orders`): 26 cloud resources in 7 components" in section
    for component in (
        "IdempotencyStore",
        "StackDashboard",
        "ProjectApis",
        "TaskPipeline",
        "Schedules",
    ):
        assert f"| `{component}`" in section


def test_a_stale_count_is_caught(plans: dict[str, dict[str, Any]]) -> None:
    stale = README.replace("| dev | 1 | 39 | 10 |", "| dev | 1 | 29 | 8 |")
    assert stale != README
    assert readme.current(stale) != readme.render(plans)


def _apis(plans: dict[str, dict[str, Any]]) -> set[str]:
    return {
        r.inputs["service"].removesuffix(".googleapis.com")
        for plan in plans.values()
        for r in document.resources(plan).values()
        if r.type == "gcp:projects/service:Service"
    }


def _diagram() -> str:
    section = README[README.index("## What gets built") :]
    return section[section.index("```mermaid") : section.index("```\n", 10)]


def test_the_diagram_names_every_api_and_stack_component(
    plans: dict[str, dict[str, Any]],
) -> None:
    diagram = _diagram()
    [listed] = re.findall(r"ProjectApis: ([a-z, ]+)\]", diagram)
    assert set(listed.split(", ")) == _apis(plans)
    stack_components = {
        r.type.rsplit(":", 1)[1]
        for plan in plans.values()
        for r in document.resources(plan).values()
        if r.component and not r.parent
    }
    missing = {c for c in stack_components if c not in diagram}
    assert missing == set()
    for product in (
        "Firestore",
        "Pub/Sub",
        "Cloud Monitoring",
        "Cloud Tasks",
        "Cloud Run",
        "Cloud Scheduler",
    ):
        assert product in diagram


def test_the_alert_table_has_every_alert_the_plans_create(
    plans: dict[str, dict[str, Any]],
) -> None:
    section = README[README.index("| policy (`alert` label)") :]
    table = section[: section.index("\n\n")]
    rows = dict(re.findall(r"^\| `([a-z-]+)` \(([A-Z]+)\)", table, re.M))
    planned = {
        r.inputs["userLabels"]["alert"]: r.inputs["severity"]
        for plan in plans.values()
        for r in document.resources(plan).values()
        if r.type == "gcp:monitoring/alertPolicy:AlertPolicy"
    }
    assert rows == planned
    assert "not yet" not in table


def test_the_plan_review_commands_run_as_written(tmp_path: Path) -> None:
    """The README's "Reviewing a branch" block, with this checkout as the base branch's
    worktree (git itself is taken on trust): each plan command exits 0."""
    block = README[README.index("Reviewing a branch:") :]
    block = block[block.index("```sh\n") + 6 : block.index("```", block.index("```sh\n") + 6)]
    outputs = []
    for line in block.splitlines():
        command = line.split(" #", 1)[0].strip()
        if not command or command.startswith("git "):
            continue
        command = command.replace("/tmp/base.json", str(tmp_path / "base.json"))
        command = command.replace("/tmp/base", str(readme.ROOT))
        result = subprocess.run(
            ["bash", "-c", command], cwd=readme.ROOT, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{command}: {result.stderr}"
        outputs.append(result.stdout)
    assert len(outputs) == 2
    assert "Plan changes from" in outputs[-1] and "none." in outputs[-1]
