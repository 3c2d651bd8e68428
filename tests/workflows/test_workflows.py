"""The GitOps workflows: schema-valid, keyless, gated and serialized as documented.

`make workflows` validates the files against the GitHub workflow schema; these tests
check what a schema can't: the promotion order, the gates and the identity wiring.
Pins (actions, Pulumi CLI, locks) are in test_supply_chain.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
STACKS = ["dev", "staging", "prod"]


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def test_the_workflows_exist() -> None:
    assert all_workflows() == [
        "deploy.yml",
        "drift.yml",
        "image.yml",
        "promote.yml",
        "pull-request.yml",
        "pulumi-stack.yml",
    ]


@pytest.mark.parametrize("name", all_workflows())
def test_no_keys_or_long_lived_credentials(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for forbidden in ("credentials_json", "GOOGLE_CREDENTIALS", "PULUMI_ACCESS_TOKEN", "secrets."):
        assert forbidden not in text, forbidden


def test_stack_job_signs_in_with_workload_identity_and_passes_the_token() -> None:
    workflow = load("pulumi-stack.yml")
    [job] = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    by_action = {s["uses"].split("@")[0]: s for s in job["steps"] if "uses" in s}
    auth = by_action["google-github-actions/auth"]
    assert (
        auth["with"]["workload_identity_provider"] == "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"
    )
    assert auth["with"]["token_format"] == "access_token"
    pulumi = by_action["pulumi/actions"]
    assert pulumi["env"]["GOOGLE_OAUTH_ACCESS_TOKEN"] == "${{ steps.auth.outputs.access_token }}"
    assert pulumi["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["policyPackConfigs"] == "policy/config/${{ inputs.stack }}.json"
    # The virtualenvs Pulumi.yaml and PulumiPolicy.yaml point at are built first.
    names = [s.get("name") or s["uses"] for s in job["steps"]]
    assert names.index("Build virtualenvs") < names.index("pulumi ${{ inputs.command }}")


def test_every_stack_has_a_policy_config_for_the_stack_job() -> None:
    config_dir = WORKFLOWS.parents[1] / "policy" / "config"
    assert sorted(p.stem for p in config_dir.glob("*.json")) == sorted(STACKS)


def test_pull_request_tests_everyone_and_previews_only_same_repo_branches() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"] and "pull_request_target" not in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    test, preview = workflow["jobs"]["test"], workflow["jobs"]["preview"]
    assert any(s.get("run", "").split()[:2] == ["make", "test"] for s in test["steps"])
    assert "permissions" not in test  # forks: read-only token, no id-token
    assert preview["needs"] == "test"
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["strategy"]["matrix"]["stack"] == STACKS
    assert preview["permissions"]["id-token"] == "write"
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["environment"] == "${{ matrix.stack }}-preview"


def test_deploy_promotes_dev_staging_prod_after_green_tests_one_run_per_stack() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert any(s.get("run", "").split()[:2] == ["make", "test"] for s in jobs["test"]["steps"])
    previous = "test"
    for stack in STACKS:
        job = jobs[stack]
        assert job["needs"] == previous, f"{stack} must wait for {previous}"
        assert job["uses"] == "./.github/workflows/pulumi-stack.yml"
        assert job["with"] == {"stack": stack, "command": "up", "environment": stack}
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        assert "pull-requests" not in job["permissions"]
        previous = stack


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert found, "check-jsonschema is pinned in requirements-dev.txt"
    return found


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """`make workflows` can fail: a job without runs-on or uses is not a workflow."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    stepz: []\n")
    command = [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows"]
    bad = subprocess.run([*command, str(broken)], capture_output=True, text=True, check=False)
    good = subprocess.run(
        [*command, *map(str, sorted(WORKFLOWS.glob("*.yml")))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0, bad.stdout
    assert good.returncode == 0, good.stdout + good.stderr


def test_offline_plan_reaches_every_pull_request() -> None:
    plan = load("pull-request.yml")["jobs"]["plan"]
    assert plan["needs"] == "test"
    assert "if" not in plan, "forks get the offline plan too: it needs no cloud identity"
    assert plan["strategy"]["matrix"]["stack"] == STACKS
    assert "id-token" not in plan["permissions"], "the offline plan must not get a cloud identity"
    runs = [s.get("run", "") for s in plan["steps"]]
    assert any("python -m plan" in r and "--format json" in r for r in runs), "base plan"
    assert any("--format markdown" in r and "--diff base.json" in r for r in runs), "PR plan"
    assert any("GITHUB_STEP_SUMMARY" in r for r in runs)
    [comment] = [s for s in plan["steps"] if "gh pr comment" in s.get("run", "")]
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_offline_plan_keeps_the_full_plan_and_comments_a_fitted_summary() -> None:
    steps = load("pull-request.yml")["jobs"]["plan"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    # The comment is never cut mid-line: no byte-count truncation, plan.comment fits it.
    assert "head -c" not in runs
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "plan-out/"
    assert upload["with"]["if-no-files-found"] == "error"
    [comment] = [s for s in steps if "gh pr comment" in s.get("run", "")]
    assert "python -m plan.comment" in comment["run"]
    assert comment["env"]["ARTIFACT_URL"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"
    # Base plan: only a diff base; this PR's plan: verdicts shown, the preview enforces.
    assert "--policy off" in runs and "--policy report" in runs
    for output in ("plan-out/plan.json", "plan-out/plan.md", "plan-out/changes.md"):
        assert output in runs
