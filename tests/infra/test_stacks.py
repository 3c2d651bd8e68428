"""Every stack file in the repo, run through __main__.py under mocks."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from plan.recorder import Recording
from tests.infra.conftest import ROOT, STACKS
from tests.infra.expectations import check_pipeline, security_violations

# Per pipeline: 2 accounts (+ their components), queue, service, 3 components,
# run.invoker on the service, the agent's token-creator grant on the invoker, 5 alert
# policies and the logs-based metric the claims-lost one reads, the dead-letter topic and
# subscription, the runtime account's publish grant on the topic and its data access to the
# stack's database.
PER_PIPELINE_TYPES = {
    "cloudrun-tasks:index:TaskPipeline": 1,
    "cloudrun-tasks:index:ServiceAccount": 2,
    "cloudrun-tasks:index:TaskService": 1,
    "cloudrun-tasks:index:TaskQueue": 1,
    "gcp:serviceaccount/account:Account": 2,
    "gcp:cloudtasks/queue:Queue": 1,
    "gcp:cloudrunv2/service:Service": 1,
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 5,
    "gcp:logging/metric:Metric": 1,
    "gcp:pubsub/topic:Topic": 1,
    "gcp:pubsub/subscription:Subscription": 1,
    "gcp:pubsub/topicIAMMember:TopicIAMMember": 1,
    "gcp:projects/iAMMember:IAMMember": 1,
}
# Per pipeline with schedules (components/schedule.py), and per schedule.
SCHEDULED_TYPES = {
    "cloudrun-tasks:index:Schedules": 1,
    "cloudrun-tasks:index:ServiceAccount": 1,
    "gcp:serviceaccount/account:Account": 1,
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 1,
    "gcp:logging/metric:Metric": 1,
}
PER_SCHEDULE_TYPES = {
    "gcp:cloudscheduler/job:Job": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 1,
}
# Per stack: one idempotency store (component, database, TTL policy).
PER_STACK_TYPES = {
    "cloudrun-tasks:index:IdempotencyStore": 1,
    "gcp:firestore/database:Database": 1,
    "gcp:firestore/field:Field": 1,
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
            replayers=pipeline.get("replayers", []),
            secrets=pipeline["service"].get("secrets"),
        )


@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_scale_with_pipelines(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    rec = stack_recordings[stack]
    pipelines = stack_file(stack)["cloudrun-tasks:pipelines"]
    counts = Counter(r.type for r in rec.resources)
    # A pipeline with schedules adds one of each SCHEDULED type, a schedule its job and alert.
    scheduled = sum(bool(p.get("schedules")) for p in pipelines.values())
    schedules = sum(len(p.get("schedules", {})) for p in pipelines.values())
    for type_, per_pipeline in PER_PIPELINE_TYPES.items():
        extra = SCHEDULED_TYPES.get(type_, 0) * scheduled + PER_SCHEDULE_TYPES.get(type_, 0) * (
            schedules
        )
        assert counts[type_] == per_pipeline * len(pipelines) + extra, type_
    for type_ in {*SCHEDULED_TYPES, *PER_SCHEDULE_TYPES} - set(PER_PIPELINE_TYPES):
        expected = SCHEDULED_TYPES.get(type_, 0) * scheduled
        assert counts[type_] == expected + PER_SCHEDULE_TYPES.get(type_, 0) * schedules, type_
    for type_, per_stack in PER_STACK_TYPES.items():
        assert counts[type_] == per_stack, type_
    # Enqueuers and replayers create tasks; one grant each even when a member is both; the
    # runtime account of a pipeline with schedules creates its ticks' tasks.
    creators = sum(
        len({*p.get("enqueuers", []), *p.get("replayers", [])}) for p in pipelines.values()
    )
    replayers = sum(len(p.get("replayers", [])) for p in pipelines.values())
    assert counts["gcp:cloudtasks/queueIamMember:QueueIamMember"] == creators + scheduled
    assert counts["gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"] == replayers
    # Each task creator acts as the invoker; plus the agents' OIDC grants (Cloud Tasks on
    # every invoker, Cloud Scheduler on every ticker).
    assert counts["gcp:serviceaccount/iAMMember:IAMMember"] == (
        creators + len(pipelines) + scheduled
    )
    assert counts["cloudrun-tasks:index:ProjectApis"] == 1
    uses_secrets = any(
        p["service"].get("secrets") or p["service"].get("app", {}).get("secrets")
        for p in pipelines.values()
    )
    # Seven APIs always (Logging for every pipeline's claims-lost metric); schedules add
    # Cloud Scheduler.
    assert counts["gcp:projects/service:Service"] == 7 + uses_secrets + bool(scheduled)
    assert counts["gcp:projects/serviceIdentity:ServiceIdentity"] == 1 + bool(scheduled)


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
        if r.type
        in (
            "gcp:cloudtasks/queue:Queue",
            "gcp:cloudrunv2/service:Service",
            "gcp:firestore/database:Database",
        )
    }
    assert protected == (stateful if stack == "prod" else set())
    deletion = {
        r.inputs["deletionProtection"] for r in rec.of_type("gcp:cloudrunv2/service:Service")
    }
    assert deletion == {stack == "prod"}
    [database] = rec.of_type("gcp:firestore/database:Database")
    assert (database.inputs["deleteProtectionState"], database.inputs["deletionPolicy"]) == (
        ("DELETE_PROTECTION_ENABLED", "ABANDON")
        if stack == "prod"
        else ("DELETE_PROTECTION_DISABLED", "DELETE")
    )


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
