"""The documentation's facts about what gets built come from the plans: the counts and the
stack output on the pipelines page, the README's diagram (which the site includes), the
alert table on the operations page and the plan review commands can't drift from the
program."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plan import document, facts
from tests.docs.pages import blocks, snippet, text
from tests.plan.conftest import DEV_CUSTOM_RESOURCES

PIPELINES = text("concepts/pipeline.md")


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    return facts.plans()


def test_the_generated_section_is_current(plans: dict[str, dict[str, Any]]) -> None:
    assert facts.current(PIPELINES) == facts.render(plans), (
        "docs/concepts/pipeline.md's plan-facts section is stale:"
        " run .venv/bin/python -m plan.facts"
    )


def test_the_section_has_the_counts_of_the_stacks(plans: dict[str, dict[str, Any]]) -> None:
    section = facts.current(PIPELINES)
    # dev: orders with a schedule and payloads on (the schedule adds 10 resources in 2
    # components, the payload bucket 4 in 1), and thumbnails, an app behind the handler
    # (the app is a container of the service, no resource of its own).
    assert f"| dev | 2 | {DEV_CUSTOM_RESOURCES} | 16 |" in section
    # Its 5 alert policies and the claims-lost metric among them.
    assert "Per pipeline (dev's `orders`): 32 cloud resources in 8 components" in section
    for component in (
        "IdempotencyStore",
        "StackDashboard",
        "ProjectApis",
        "TaskPipeline",
        "Schedules",
        "PayloadBucket",
    ):
        assert f"| `{component}`" in section


def test_a_stale_count_is_caught(plans: dict[str, dict[str, Any]]) -> None:
    stale = PIPELINES.replace(f"| dev | 2 | {DEV_CUSTOM_RESOURCES} | 16 |", "| dev | 2 | 55 | 15 |")
    assert stale != PIPELINES
    assert facts.current(stale) != facts.render(plans)


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    return {f"{prefix}{k}" for k in value} | {
        key for k, v in value.items() for key in _keys(v, f"{prefix}{k}.")
    }


def test_the_sample_stack_output_has_every_key_dev_exports(
    plans: dict[str, dict[str, Any]],
) -> None:
    """The page's `pipelines` sample is the dev stack's, key for key (it once lacked the
    dead-letter, Firestore and schedule keys)."""
    [sample] = [json.loads(b) for b in blocks(PIPELINES, "json") if '"queueName"' in b]
    exported = plans["dev"]["outputs"]["pipelines"]
    assert _keys(sample) == _keys(exported)
    assert {"deadLetterTopic", "deadLetterSubscription", "firestoreDatabase"} <= set(
        sample["orders"]
    )


def _apis(plans: dict[str, dict[str, Any]]) -> set[str]:
    return {
        r.inputs["service"].removesuffix(".googleapis.com")
        for plan in plans.values()
        for r in document.resources(plan).values()
        if r.type == "gcp:projects/service:Service"
    }


def _diagram() -> str:
    """The README's diagram, which the site's home and pipelines pages include."""
    [diagram] = blocks(snippet("diagram"), "mermaid")
    return diagram


def test_the_diagram_names_every_api_and_stack_component(
    plans: dict[str, dict[str, Any]],
) -> None:
    diagram = _diagram()
    assert '--8<-- "README.md:diagram"' in PIPELINES  # the site shows this one diagram
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
    operations = text("operations.md")
    section = operations[operations.index("| policy (`alert` label)") :]
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
    """The plan page's "Reviewing a branch" block, with this checkout as the base branch's
    worktree (git itself is taken on trust): each plan command exits 0."""
    page = text("plan.md")
    block = page[page.index("Reviewing a branch:") :]
    block = block[block.index("```sh\n") + 6 : block.index("```", block.index("```sh\n") + 6)]
    outputs = []
    for line in block.splitlines():
        command = line.split(" #", 1)[0].strip()
        if not command or command.startswith("git "):
            continue
        command = command.replace("/tmp/base.json", str(tmp_path / "base.json"))
        command = command.replace("/tmp/base", str(facts.ROOT))
        result = subprocess.run(
            ["bash", "-c", command], cwd=facts.ROOT, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{command}: {result.stderr}"
        outputs.append(result.stdout)
    assert len(outputs) == 2
    assert "Plan changes from" in outputs[-1] and "none." in outputs[-1]
