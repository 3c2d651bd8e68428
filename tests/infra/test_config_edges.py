"""Config that looks right must deploy exactly what it says, or nothing: every problem at
once, typos never ignored, Cloud Run's limits, and secrets that stay secret."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.settings import ConfigError, gcp_provider_keys
from plan import document, graph, tree
from plan.recorder import Recording, run_program
from plan.stackfile import SECRET
from tests.infra.conftest import ROOT, base_config, record
from tests.infra.expectations import SERVICE

P = "cloudrun-tasks:pipelines"


def problems_of(config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> list[str]:
    recording = Recording(project="cloudrun-tasks", stack="test")
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "test", copy.deepcopy(config), secret_keys=secret_keys, into=recording)
    assert recording.resources == []
    return caught.value.problems


def test_cross_field_rules_are_reported_beside_field_errors_sorted_by_key() -> None:
    """Before: a field error in a model hid the cross-field rules of that model."""
    config = base_config()
    orders = config[P]["orders"]
    orders["dispatchDeadline"] = "900s"
    orders["service"] = {
        "image": "Not An Image",
        "timeout": "300s",
        "minInstances": 5,
        "maxInstances": 2,
        "cpu": "2",
        "memory": "64Gi",
    }
    orders["queue"] = {"minBackoff": "10s", "maxBackoff": "1s", "maxAttempts": 0}
    orders["enqueuers"] = ["user:a@acme.example", "user:a@acme.example"]
    config["cloudrun-tasks:protect"] = "yes"
    assert problems_of(config) == [
        'pipelines.orders.enqueuers.1: is listed twice, got "user:a@acme.example"',
        "pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1 and <= 2147483647,"
        " got 0",
        'pipelines.orders.queue.maxBackoff: must be >= minBackoff (10s), got "1s"',
        "pipelines.orders.service.image: must be a container image reference"
        ' REGISTRY/PATH[:TAG][@sha256:DIGEST] (invalid reference format), got "Not An Image"',
        'pipelines.orders.service.memory: must be >= 128Mi and <= 32Gi, got "64Gi"',
        "pipelines.orders.service.minInstances: must be <= maxInstances (2), got 5",
        'pipelines.orders.service.timeout: must be >= dispatchDeadline (900s), got "300s"',
        'protect: must be true or false, got "yes"',
    ]


def test_a_pipeline_with_a_bad_field_still_gets_its_location_checked() -> None:
    config = base_config()
    del config["gcp:region"]
    config[P]["orders"]["service"]["image"] = "registry.example/Upper"
    assert problems_of(config) == [
        "pipelines.orders.location: is required when gcp:region is not set",
        "pipelines.orders.service.image: must be a container image reference"
        " REGISTRY/PATH[:TAG][@sha256:DIGEST] (repository name must be lowercase),"
        ' got "registry.example/Upper"',
    ]


def test_namespace_typo_does_not_deploy_prod_unprotected() -> None:
    """Before: `cloudrun-task:protect: true` was ignored and everything deployed unprotected."""
    config = {**base_config(), "cloudrun-task:protect": True}
    assert problems_of(config) == [
        "cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
        " cloudrun-tasks:protect? this program reads cloudrun-tasks:* and gcp:* keys"
    ]


def test_known_provider_and_engine_keys_are_accepted() -> None:
    config = {**base_config(), "gcp:zone": "us-central1-a", "pulumi:tags": {"team": "x"}}
    assert record(config).of_type(SERVICE)


def test_provider_keys_come_from_pulumi_gcp() -> None:
    keys = gcp_provider_keys()
    assert {"project", "region", "zone", "accessToken", "addPulumiAttributionLabel"} <= keys
    assert "regoin" not in keys and len(keys) > 100


def test_fractional_cpu_with_concurrency_one_deploys_as_written() -> None:
    config = base_config()
    config[P]["orders"]["service"].update(
        {"cpu": "0.5", "memory": "1Gi", "concurrency": 1, "maxInstances": 50}
    )
    template = record(config).one(SERVICE, "orders").inputs["template"]
    container = template["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "0.5", "memory": "1Gi"}
    assert template["maxInstanceRequestConcurrency"] == 1


@pytest.mark.parametrize(
    ("cpu", "memory"), [("8", "32Gi"), ("4", "2Gi"), ("1000m", "4Gi"), ("0.08", "128Mi")]
)
def test_limits_at_cloud_runs_edges_are_accepted(cpu: str, memory: str) -> None:
    config = base_config()
    config[P]["orders"]["service"].update({"cpu": cpu, "memory": memory, "concurrency": 1})
    limits = record(config).one(SERVICE, "orders").inputs["template"]["containers"][0]
    assert limits["resources"]["limits"] == {"cpu": cpu, "memory": memory}


def test_digest_pinned_image_is_accepted() -> None:
    config = base_config()
    image = "us-docker.pkg.dev/cloudrun/container/hello@sha256:" + "a" * 64
    config[P]["orders"]["service"]["image"] = image
    container = record(config).one(SERVICE, "orders").inputs["template"]["containers"][0]
    assert container["image"] == image


def test_user_labels_with_international_characters_are_kept_beside_the_projects() -> None:
    config = {**base_config(), "cloudrun-tasks:labels": {"équipe": "paiements", "team": ""}}
    labels = record(config).one(SERVICE, "orders").inputs["labels"]
    assert labels == {"équipe": "paiements", "team": "", "pipeline": "orders"}


# --- secrets ------------------------------------------------------------------------

PASSWORD = "hunter2-do-not-print"


def secret_env_config() -> dict[str, Any]:
    config = base_config()
    config[P]["orders"]["service"]["env"] = {"DB_PASSWORD": PASSWORD, "LOG_LEVEL": "info"}
    return config


def env_of(recording: Recording) -> dict[str, Any]:
    container = recording.one(SERVICE, "orders").inputs["template"]["containers"][0]
    return {env["name"]: env.get("value") for env in container["envs"]}


def test_env_from_a_secret_key_reaches_the_engine_as_a_secret() -> None:
    """Before: the value went to state, preview and PR comments in plaintext.

    The Python SDK lifts a secret nested in an input object to the whole top-level
    property, so the engine receives the service's entire `template` as one secret (SECRET
    is how the recorder shows a value the engine received wrapped as a secret).
    """
    recording = run_program(ROOT, "test", secret_env_config(), secret_keys=[P])
    service = recording.one(SERVICE, "orders").inputs
    assert service["template"] == SECRET
    assert service["location"] == "us-central1"  # the rest of the service stays readable
    assert PASSWORD not in json.dumps([r.inputs for r in recording.resources])
    assert PASSWORD not in json.dumps(recording.outputs)


def test_env_from_a_plain_key_stays_plain() -> None:
    """The same config without --secret: the value is plain, so the check above can fail."""
    env = env_of(run_program(ROOT, "test", secret_env_config()))
    assert env["DB_PASSWORD"] == PASSWORD


def test_no_plan_format_prints_a_secret_value() -> None:
    recording = run_program(ROOT, "test", secret_env_config(), secret_keys=[P], preview=True)
    plan = document.build(recording)
    for text in (document.dumps(plan), tree.render(plan), graph.render(plan)):
        assert PASSWORD not in text
    assert SECRET in document.dumps(plan)


def test_secret_labels_are_secret_inputs() -> None:
    config = {**base_config(), "cloudrun-tasks:labels": {"team": "payments"}}
    recording = run_program(ROOT, "test", config, secret_keys=["cloudrun-tasks:labels"])
    assert recording.one(SERVICE, "orders").inputs["labels"] == SECRET


def test_errors_under_a_secret_key_do_not_print_its_values() -> None:
    config = secret_env_config()
    config[P]["orders"]["service"]["env"]["BAD NAME"] = PASSWORD
    config[P]["orders"]["service"]["concurrency"] = PASSWORD
    lines = problems_of(config, secret_keys=(P,))
    assert lines == [
        "pipelines.orders.service.concurrency: must be a whole number, got [secret]",
        "pipelines.orders.service.env.BAD NAME: must be an environment variable name"
        " ([A-Za-z_][A-Za-z0-9_]*), got [secret]",
    ]
    assert not any(PASSWORD in line for line in lines)
