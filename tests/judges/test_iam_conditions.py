"""Every IAM condition compiled and evaluated by a CEL implementation (cel-python): true for
the resource it is about, false for its neighbours: the project's `(default)` database,
every other stack's database, and the same database id in another project.

IAM evaluates a Firestore data-access condition with `resource.name` =
`projects/P/databases/D` (firestore/docs/manage-databases, "Configure per-database
access permissions"); the activation holds `resource` alone, so a condition reading
anything else fails to evaluate."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError

from plan.recorder import RecordedResource, Recording
from tests.judges.conftest import EVERY_OPTION_STACK
from tests.judges.test_api_types import JUDGED

MEMBER = "gcp:projects/iAMMember:IAMMember"
DATABASE = "gcp:firestore/database:Database"


def grants(rec: Recording) -> list[RecordedResource]:
    return [r for r in rec.of_type(MEMBER) if "condition" in r.inputs]


def evaluate(expression: str, resource_name: str) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return program.evaluate({"resource": json_to_cel({"name": resource_name})})


def database_path(project: str, database: str) -> str:
    return f"projects/{project}/databases/{database}"


def misjudged(expression: str, project: str, database: str, others: set[str]) -> list[str]:
    """Resource names the condition judges wrongly: its own database refused, or a
    neighbour admitted."""
    own = database_path(project, database)
    neighbours = [
        database_path(project, "(default)"),
        *(database_path(project, other) for other in sorted(others)),
        database_path(f"{project}-other", database),
        f"{own}-copy",
    ]
    wrong = [] if evaluate(expression, own) == BoolType(True) else [own]
    return wrong + [n for n in neighbours if evaluate(expression, n)]


@pytest.mark.parametrize("stack", JUDGED)
def test_each_condition_admits_its_database_and_no_neighbour(
    stack: str, judged: dict[str, Recording]
) -> None:
    rec = judged[stack]
    conditioned = grants(rec)
    # One conditioned grant per pipeline: its runtime account's records.
    assert len(conditioned) == len(rec.outputs["pipelines"])
    [database] = rec.of_type(DATABASE)
    others = {
        other.inputs["name"]
        for name, r in judged.items()
        if name != stack
        for other in r.of_type(DATABASE)
    } - {database.inputs["name"]}
    assert others
    for grant in conditioned:
        expression = grant.inputs["condition"]["expression"]
        assert not misjudged(expression, grant.inputs["project"], database.inputs["name"], others)


# --- the judge can fail ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "wrong"),
    [
        # Every database of the project, (default) included.
        ('resource.name.startsWith("projects/p/databases/")', "projects/p/databases/(default)"),
        # A prefix: matches tasks-dev-copy too.
        ('resource.name.startsWith("projects/p/databases/tasks-dev")', "tasks-dev-copy"),
        # Any project's database of that id.
        ('resource.name.endsWith("/databases/tasks-dev")', "projects/p-other/"),
        # Another stack's database.
        ('resource.name == "projects/p/databases/tasks-staging"', "projects/p/databases/tasks-dev"),
    ],
)
def test_a_condition_that_misjudges_a_database_is_caught(expression: str, wrong: str) -> None:
    found = misjudged(expression, "p", "tasks-dev", {"tasks-staging"})
    assert any(wrong in name for name in found), found


@pytest.mark.parametrize(
    "expression",
    ['resource.name == "projects/p/databases/d', "resource.name ==", "resource.name = 'x'"],
)
def test_broken_cel_does_not_compile(expression: str) -> None:
    with pytest.raises(CELParseError):
        celpy.Environment().compile(expression)


def test_a_condition_on_what_iam_does_not_pass_fails_to_evaluate() -> None:
    with pytest.raises(CELEvalError):
        evaluate('request.auth.claims.email == "x"', "projects/p/databases/d")


def test_every_option_stack_names_its_own_database(judged: dict[str, Recording]) -> None:
    [database] = judged[EVERY_OPTION_STACK].of_type(DATABASE)
    assert database.inputs["name"] == "judged-records"
