"""A pull request from a fork never reaches a job that can get a Google Cloud identity.

Layers, each tested here or in tests/bootstrap/:
1. GitHub gives `pull_request` runs from public forks no id-token at all ("Maximum access
   for pull requests from public forked repositories: id-token none",
   docs.github.com/actions/reference/github_token-reference); a private repository's
   "send write tokens to workflows from fork pull requests" setting can lift that, so:
2. every job that asks for `id-token: write` on a pull request runs only for branches of
   this repository (a job-level `if:` on the head repository), and no workflow uses
   `pull_request_target` or `workflow_run`, which run fork-triggered work with this
   repository's privileges (this file);
3. the Workload Identity provider accepts only `push`, `pull_request` and `schedule` tokens
   of this repository, and the previewer only the subject of environment `<env>-preview`
   (tests/bootstrap/test_bootstrap.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
# Triggers that run on behalf of a fork's pull request with this repository's token,
# secrets and id-token.
PRIVILEGED_FORK_TRIGGERS = ("pull_request_target", "workflow_run")
PULL_REQUEST_TRIGGERS = ("pull_request", *PRIVILEGED_FORK_TRIGGERS)


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on}
    return set(on)


def grants_id_token(permissions: Any) -> bool:
    if permissions == "write-all":
        return True
    return isinstance(permissions, dict) and permissions.get("id-token") == "write"


def _condition(expression: str) -> str:
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return " ".join(text.split())


def only_same_repository(condition: Any) -> bool:
    """True when CONDITION can be true only for a branch of this repository: the guard is
    one of its top-level `&&` terms and nothing can bypass it (`||`, `always()` in an
    alternative, `!`)."""
    if not isinstance(condition, str):
        return False
    text = _condition(condition)
    if "||" in text:
        return False
    terms = [t.strip() for t in re.split(r"&&", text)]
    return SAME_REPOSITORY in terms


def fork_problems(workflow: dict[str, Any]) -> list[str]:
    """Every way a fork's pull request could reach a job that can request an id-token."""
    on = triggers(workflow)
    problems = [f"triggered by {t}" for t in PRIVILEGED_FORK_TRIGGERS if t in on]
    if not on & set(PULL_REQUEST_TRIGGERS):
        return problems
    top = workflow.get("permissions")
    if top is None:
        problems.append("no workflow-level permissions: jobs get the repository default")
    elif grants_id_token(top):
        problems.append("workflow-level permissions grant id-token to every job")
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions", top)
        if grants_id_token(permissions) and not only_same_repository(job.get("if")):
            problems.append(f"job {name} gets an id-token without the same-repository guard")
    return problems


def all_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("path", all_workflows(), ids=lambda p: p.name)
def test_no_fork_pull_request_reaches_an_identity(path: Path) -> None:
    assert fork_problems(load(path)) == []


def test_the_check_examines_the_preview_job() -> None:
    """Not vacuous: pull-request.yml has an id-token job, and it is the guarded preview."""
    workflow = load(WORKFLOWS / "pull-request.yml")
    identity_jobs = {
        name
        for name, job in workflow["jobs"].items()
        if grants_id_token(job.get("permissions", workflow.get("permissions")))
    }
    assert identity_jobs == {"preview"}
    assert only_same_repository(workflow["jobs"]["preview"]["if"])


def test_the_stack_workflow_can_only_be_called() -> None:
    """pulumi-stack.yml signs in; it has no trigger of its own a pull request could fire,
    and grants itself nothing: it runs with its caller's (guarded) permissions."""
    workflow = load(WORKFLOWS / "pulumi-stack.yml")
    assert triggers(workflow) == {"workflow_call"}
    assert "permissions" not in workflow
    assert all("permissions" not in job for job in workflow["jobs"].values())


def test_identity_workflows_are_called_only_from_guarded_or_push_jobs() -> None:
    """Every caller of pulumi-stack.yml is either a push to main or a guarded PR job."""
    callers = [
        (path.name, name, job, triggers(workflow))
        for path in all_workflows()
        for workflow in [load(path)]
        for name, job in workflow["jobs"].items()
        if job.get("uses") == "./.github/workflows/pulumi-stack.yml"
    ]
    assert {(file, name) for file, name, _, _ in callers} == {
        ("deploy.yml", "dev"),
        ("deploy.yml", "staging"),
        ("deploy.yml", "prod"),
        ("pull-request.yml", "preview"),
    }
    for _, _, job, on in callers:
        assert on == {"push"} or only_same_repository(job.get("if"))


PR = {"pull_request": {"branches": ["main"]}}
GUARDED_ID_JOB = {
    "if": SAME_REPOSITORY,
    "permissions": {"contents": "read", "id-token": "write"},
    "uses": "./.github/workflows/pulumi-stack.yml",
}


@pytest.mark.parametrize(
    ("workflow", "problem"),
    [
        (
            {"on": PR, "permissions": {"contents": "read"}, "jobs": {"p": {**GUARDED_ID_JOB}}},
            None,
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {**GUARDED_ID_JOB, "if": f"${{{{ {SAME_REPOSITORY} }}}}"}},
            },
            None,
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {**GUARDED_ID_JOB, "if": f"{SAME_REPOSITORY} && !cancelled()"}},
            },
            None,
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {k: v for k, v in GUARDED_ID_JOB.items() if k != "if"}},
            },
            "job p gets an id-token without the same-repository guard",
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {**GUARDED_ID_JOB, "if": f"{SAME_REPOSITORY} || always()"}},
            },
            "job p gets an id-token without the same-repository guard",
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {**GUARDED_ID_JOB, "if": f"!({SAME_REPOSITORY})"}},
            },
            "job p gets an id-token without the same-repository guard",
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read"},
                "jobs": {"p": {**GUARDED_ID_JOB, "permissions": "write-all", "if": "true"}},
            },
            "job p gets an id-token without the same-repository guard",
        ),
        (
            {
                "on": PR,
                "permissions": {"contents": "read", "id-token": "write"},
                "jobs": {"t": {"runs-on": "ubuntu-24.04", "steps": []}},
            },
            "workflow-level permissions grant id-token to every job"
            " | job t gets an id-token without the same-repository guard",
        ),
        (
            {"on": PR, "jobs": {"t": {"runs-on": "ubuntu-24.04", "steps": []}}},
            "no workflow-level permissions: jobs get the repository default",
        ),
        (
            {"on": ["pull_request_target"], "permissions": {}, "jobs": {}},
            "triggered by pull_request_target",
        ),
        (
            {
                "on": {"workflow_run": {"workflows": ["pull-request"]}},
                "permissions": {},
                "jobs": {},
            },
            "triggered by workflow_run",
        ),
    ],
)
def test_the_check_catches_each_way_in(workflow: dict[str, Any], problem: str | None) -> None:
    """PROBLEM: the expected problems, ' | '-separated; None when the workflow is safe."""
    assert fork_problems(workflow) == ([] if problem is None else problem.split(" | "))
