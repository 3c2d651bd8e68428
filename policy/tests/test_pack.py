"""The pack as a whole: every stack of the project passes, the insecure fixture doesn't."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, Policy

from plan.recorder import Recording, run_program
from policies import POLICIES
from rules.routing import queue_targets
from support import POLICY_DIR, REPO, evaluate, policy_resources, stack_config

STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO.glob("Pulumi.*.yaml")
)
INSECURE = Path(__file__).parent / "fixtures" / "insecure"
ADVISORY = {"cloudrun-ingress-not-all", "queue-within-service-capacity"}


def test_policy_names_are_unique_and_levels_as_documented() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) == 17
    advisory = {p.name for p in POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == ADVISORY
    assert all(
        p.enforcement_level == EnforcementLevel.MANDATORY
        for p in POLICIES
        if p.name not in ADVISORY
    )


def test_the_project_has_stacks_and_each_has_a_policy_config() -> None:
    assert {"dev", "staging", "prod"} <= set(STACKS)
    configs = {p.stem for p in (POLICY_DIR / "config").glob("*.json")}
    assert configs == set(STACKS)
    # Fail-safe: the prod policies are at their default (mandatory) unless a stack's
    # config lowers them.
    assert "prod-resources-protected" not in stack_config("prod")
    assert "cloudrun-image-pinned-by-digest" not in stack_config("prod")
    assert "queue-alerts-present" not in stack_config("prod")


# What each stack file is known to draw, on each Cloud Run service: dev and staging deploy
# images by tag, which the digest policy reports there without blocking; prod's file is a
# template whose images carry placeholder digests, which the pack refuses until a release
# writes the images' real ones (the test after this one).
KNOWN_VIOLATIONS = {
    "dev": ("cloudrun-image-pinned-by-digest", EnforcementLevel.ADVISORY),
    "staging": ("cloudrun-image-pinned-by-digest", EnforcementLevel.ADVISORY),
    "prod": ("cloudrun-image-pinned-by-digest", EnforcementLevel.MANDATORY),
}
RELEASED_DIGEST = "sha256:" + "5f1d2c3b4a69788796a5b4c3d2e1f0a9" * 2


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_draws_only_its_known_violations(stack: str, preview: bool) -> None:
    recording = run_program(REPO, stack, preview=preview)
    assert len([r for r in recording.resources if r.custom]) >= 10  # the program really ran
    violations = evaluate(POLICIES, recording, stack_config(stack))
    services = {r.urn for r in recording.of_type("gcp:cloudrunv2/service:Service")}
    assert services
    policy, level = KNOWN_VIOLATIONS[stack]
    assert {(v.policy, v.level, v.urn) for v in violations} == {
        (policy, level, urn) for urn in services
    }
    # One per container: dev's thumbnails runs its app beside the handler, both by tag.
    containers = sum(
        len(r.inputs["template"]["containers"])
        for r in recording.of_type("gcp:cloudrunv2/service:Service")
    )
    assert len(violations) == containers == len(services) + (stack == "dev")
    if stack == "prod":
        assert all("whose digest is a placeholder" in v.message for v in violations)


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_prod_stack_passes_the_pack_once_its_images_carry_real_digests(preview: bool) -> None:
    recording = run_program(REPO, "prod", _released_prod_config(), preview=preview)
    assert len(recording.of_type("gcp:cloudrunv2/service:Service")) == 2
    assert evaluate(POLICIES, recording, stack_config("prod")) == []


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_stack_policies_see_each_queue_routed_to_its_service(preview: bool) -> None:
    """Without this, 'no routing violation' could mean 'no queue linked to a service'."""
    recording = run_program(REPO, "prod", preview=preview)
    resources = policy_resources(recording)
    pairs = {(q.name, s.name) for q, s in queue_targets(resources)}
    assert pairs == {("orders", "orders"), ("reports", "reports")}


def test_prod_stack_would_fail_with_protection_turned_off() -> None:
    """The stack test above proves something: prod passes because it is protected."""
    config = {**_released_prod_config(), "cloudrun-tasks:protect": False}
    violations = evaluate(POLICIES, run_program(REPO, "prod", config), stack_config("prod"))
    assert {v.policy for v in violations} == {"prod-resources-protected"}
    assert (
        len(violations) >= 4
    )  # two pipelines: queue + service unprotected, deletion protection off


def test_prod_stack_would_fail_with_an_image_by_tag() -> None:
    """Released, prod passes the digest policy because it pins every image."""
    config = _released_prod_config()
    pipelines = copy.deepcopy(config["cloudrun-tasks:pipelines"])
    assert isinstance(pipelines, dict)
    for pipeline in pipelines.values():
        pipeline["service"]["image"] = pipeline["service"]["image"].split("@")[0] + ":1.0"
    config["cloudrun-tasks:pipelines"] = pipelines
    violations = evaluate(POLICIES, run_program(REPO, "prod", config), stack_config("prod"))
    assert {(v.policy, v.level) for v in violations} == {
        ("cloudrun-image-pinned-by-digest", EnforcementLevel.MANDATORY)
    }
    assert len(violations) == len(pipelines) == 2


def test_prod_stack_with_an_app_needs_both_images_pinned() -> None:
    """The app beside the handler is a container like any other: by tag, prod refuses it;
    pinned by its digest, the stack passes."""
    config = _released_prod_config()
    pipelines = copy.deepcopy(config["cloudrun-tasks:pipelines"])
    assert isinstance(pipelines, dict)
    pipelines["orders"]["service"]["app"] = {"image": "europe-docker.pkg.dev/acme/apps/web:3"}
    config["cloudrun-tasks:pipelines"] = pipelines
    recording = run_program(REPO, "prod", config)
    [violation] = evaluate(POLICIES, recording, stack_config("prod"))
    assert (violation.policy, violation.level) == (
        "cloudrun-image-pinned-by-digest",
        EnforcementLevel.MANDATORY,
    )
    assert "(template.containers[1].image, container 'app')" in violation.message
    pipelines["orders"]["service"]["app"]["image"] = (
        f"europe-docker.pkg.dev/acme/apps/web@{RELEASED_DIGEST}"
    )
    recording = run_program(REPO, "prod", config)
    assert (
        len(
            recording.one("gcp:cloudrunv2/service:Service", "orders").inputs["template"][
                "containers"
            ]
        )
        == 2
    )
    assert evaluate(POLICIES, recording, stack_config("prod")) == []


def test_prod_stack_would_fail_with_a_pipeline_alert_disabled() -> None:
    """Turning a prod pipeline's alerts off is a mandatory violation, per required alert."""
    config = _released_prod_config()
    pipelines = copy.deepcopy(config["cloudrun-tasks:pipelines"])
    assert isinstance(pipelines, dict)
    pipelines["reports"]["alerts"] = {"enabled": False}
    config["cloudrun-tasks:pipelines"] = pipelines
    violations = evaluate(POLICIES, run_program(REPO, "prod", config), stack_config("prod"))
    assert {(v.policy, v.level) for v in violations} == {
        ("queue-alerts-present", EnforcementLevel.MANDATORY)
    }
    messages = sorted(v.message for v in violations)
    assert len(messages) == 2
    assert "no enabled backlog alert" in messages[0] and "is disabled" in messages[0]
    assert "no enabled failing-attempts alert" in messages[1]
    assert all("Queue 'reports'" in m for m in messages)
    # In dev the same is advisory.
    dev = evaluate(POLICIES, run_program(REPO, "prod", config), stack_config("dev"))
    assert {v.level for v in dev if v.policy == "queue-alerts-present"} == {
        EnforcementLevel.ADVISORY
    }


def _released_prod_config() -> dict[str, Any]:
    """Pulumi.prod.yaml as a release deploys it: each placeholder digest replaced."""
    from plan.recorder import stack_config as stack_file

    config = copy.deepcopy(stack_file(REPO, "prod"))
    for pipeline in config["cloudrun-tasks:pipelines"].values():
        repository, digest = pipeline["service"]["image"].split("@")
        assert digest == "sha256:" + "0" * 64  # what the template holds
        pipeline["service"]["image"] = f"{repository}@{RELEASED_DIGEST}"
    return config


@pytest.fixture(scope="module")
def insecure() -> Recording:
    return run_program(INSECURE, "prod")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_insecure_fixture_is_caught_by_each_policy(insecure: Recording, policy: Policy) -> None:
    violations = evaluate([policy], insecure, stack_config("prod"))
    assert violations, f"{policy.name} let the insecure fixture through"
    assert all(v.policy == policy.name and v.message for v in violations)


def test_insecure_fixture_violation_counts(insecure: Recording) -> None:
    counts = Counter(v.policy for v in evaluate(POLICIES, insecure, stack_config("prod")))
    assert counts == {
        "no-public-iam-members": 1,
        "no-authoritative-iam": 1,
        "no-project-level-scoped-roles": 1,
        "no-service-account-keys": 1,
        "cloudrun-dedicated-service-account": 1,
        "queue-and-service-same-location": 1,
        "apis-never-disabled-on-destroy": 1,
        "queue-retries-bounded": 1,
        "prod-resources-protected": 3,
        "cloudrun-image-pinned-by-digest": 1,
        "queue-alerts-present": 2,  # neither backlog nor failing-attempts
        "cloudrun-ingress-not-all": 1,
        "queue-within-service-capacity": 1,
        "dead-letter-subscriptions-keep-messages": 2,  # expires, keeps 10 minutes
        "datastore-grants-scoped-to-one-database": 1,
        "schedule-identity-least-privilege": 1,
        "buckets-private": 3,  # public access, ACLs, versions
    }


def test_dev_config_disables_only_the_prod_policy(insecure: Recording) -> None:
    policies = {v.policy for v in evaluate(POLICIES, insecure, stack_config("dev"))}
    assert "prod-resources-protected" not in policies
    assert len(policies) == len(POLICIES) - 1
