"""Every stack file in the repo, run through __main__.py under mocks."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from plan.recorder import Recording
from tests.infra.conftest import ROOT, STACKS
from tests.infra.expectations import check_pipeline, security_violations

# Per pipeline: 2 accounts (+ their components), queue, service, 3 components,
# run.invoker on the service, the agent's token-creator grant on the invoker.
PER_PIPELINE_TYPES = {
    "cloudrun-tasks:index:TaskPipeline": 1,
    "cloudrun-tasks:index:ServiceAccount": 2,
    "cloudrun-tasks:index:TaskService": 1,
    "cloudrun-tasks:index:TaskQueue": 1,
    "gcp:serviceaccount/account:Account": 2,
    "gcp:cloudtasks/queue:Queue": 1,
    "gcp:cloudrunv2/service:Service": 1,
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 3,
}


def stack_file(stack: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_the_three_environments_exist() -> None:
    assert STACKS == ["dev", "prod", "staging"]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_builds_every_pipeline_completely(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    rec = stack_recordings[stack]
    config = stack_file(stack)
    pipelines = config["cloudrun-tasks:pipelines"]
    protect = config.get("cloudrun-tasks:protect", False)
    assert sorted(rec.outputs["pipelines"]) == sorted(pipelines)
    for name, pipeline in pipelines.items():
        check_pipeline(
            rec,
            name,
            location=pipeline.get("location", config["gcp:region"]),
            protect=protect,
            enqueuers=pipeline.get("enqueuers", []),
            secrets=pipeline["service"].get("secrets"),
        )


@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_scale_with_pipelines(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    rec = stack_recordings[stack]
    pipelines = stack_file(stack)["cloudrun-tasks:pipelines"]
    counts = Counter(r.type for r in rec.resources)
    for type_, per_pipeline in PER_PIPELINE_TYPES.items():
        assert counts[type_] == per_pipeline * len(pipelines), type_
    enqueuers = sum(len(p.get("enqueuers", [])) for p in pipelines.values())
    assert counts["gcp:cloudtasks/queueIamMember:QueueIamMember"] == enqueuers
    # Each enqueuer acts as the invoker; plus the agent's OIDC grant per pipeline.
    assert counts["gcp:serviceaccount/iAMMember:IAMMember"] == enqueuers + len(pipelines)
    assert counts["cloudrun-tasks:index:ProjectApis"] == 1
    uses_secrets = any(p["service"].get("secrets") for p in pipelines.values())
    assert counts["gcp:projects/service:Service"] == 4 + uses_secrets


@pytest.mark.parametrize("stack", STACKS)
def test_security_model_holds(stack: str, stack_recordings: dict[str, Recording]) -> None:
    assert security_violations(stack_recordings[stack]) == []


@pytest.mark.parametrize("stack", STACKS)
def test_only_prod_is_protected(stack: str, stack_recordings: dict[str, Recording]) -> None:
    rec = stack_recordings[stack]
    protected = {(r.type, r.name) for r in rec.resources if r.protect}
    stateful = {
        (r.type, r.name)
        for r in rec.resources
        if r.type in ("gcp:cloudtasks/queue:Queue", "gcp:cloudrunv2/service:Service")
    }
    assert protected == (stateful if stack == "prod" else set())
    deletion = {
        r.inputs["deletionProtection"] for r in rec.of_type("gcp:cloudrunv2/service:Service")
    }
    assert deletion == {stack == "prod"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_sits_in_a_component(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    rec = stack_recordings[stack]
    components = {r.urn: r for r in rec.resources if not r.custom}
    for resource in rec.resources:
        if resource.custom:
            assert resource.parent in components, f"{resource.name} has no component parent"
        else:
            assert resource.type.startswith("cloudrun-tasks:index:"), resource.type


def test_stack_files_name_their_own_project() -> None:
    projects = {stack: stack_file(stack)["gcp:project"] for stack in STACKS}
    assert len(set(projects.values())) == len(STACKS), projects
    for stack, project in projects.items():
        assert project.endswith(stack), f"Pulumi.{stack}.yaml deploys to {project}"
