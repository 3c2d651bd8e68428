"""A pipeline's Cloud Run service validated without running the program
(components/settings/service.py): its cross-key rules, each line whole, several at once."""

from __future__ import annotations

from typing import Any

import pytest

from components.durations import Duration
from components.settings import ConfigError, ServiceSettings, parse_pipeline

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
APP_IMAGE = "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0"
RESERVED = "is set by Cloud Run or by the pipeline and may not be overridden"


def service(**fields: Any) -> ServiceSettings:
    return parse_pipeline({"service": {"image": IMAGE, **fields}}).service


def problems(**fields: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline({"service": {"image": IMAGE, **fields}})
    return caught.value.problems


def test_defaults_are_those_documented() -> None:
    s = service()
    assert (s.ingress, s.concurrency, s.min_instances, s.max_instances, s.cpu, s.memory) == (
        "internal",
        80,
        0,
        10,
        "1",
        "512Mi",
    )
    assert (s.env, s.secrets, s.app, s.capacity) == ({}, {}, None, 800)


def test_min_instances_may_equal_max_instances_and_not_exceed_it() -> None:
    assert (service(minInstances=4, maxInstances=4).min_instances) == 4
    assert problems(minInstances=5, maxInstances=4) == [
        "service.minInstances: must be <= maxInstances (4), got 5"
    ]
    # maxInstances bad on its own: nothing to compare minInstances with.
    assert problems(minInstances=5, maxInstances=0) == [
        "service.maxInstances: must be >= 1 and <= 1000, got 0"
    ]
    assert problems(minInstances="5", maxInstances=4) == [
        'service.minInstances: must be a whole number, got "5"'
    ]


@pytest.mark.parametrize(
    "name",
    [
        "PORT",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "TASK_APP_URL",
        "TASK_MAX_ATTEMPTS",
        "TASK_MAX_RETRY_DURATION",
        "TASK_FIRESTORE_DATABASE",
        "TASK_DEAD_LETTER_TOPIC",
        "TASK_DISPATCH_DEADLINE",
        "TASK_PAYLOAD_BUCKET",
        "TASK_SCHEDULES",
        "TASK_CONCURRENCY",
        "GOOGLE_CLOUD_PROJECT",
    ],
)
def test_each_variable_the_stack_sets_is_refused_in_env_and_secrets(name: str) -> None:
    assert problems(env={name: "x"}, secrets={name: "s:1"}) == [
        f'service.env.{name}: {RESERVED}, got "{name}"',
        f'service.secrets.{name}: {RESERVED}, got "{name}"',
        f'service.secrets.{name}: is also set in env: pick one, got "{name}"',
    ]


def test_the_teams_own_variables_are_kept() -> None:
    s = service(env={"LEVEL": "debug", "TASK_PROCESSOR": "jobs:run"}, secrets={"KEY": "k:3"})
    assert (s.env, s.secrets) == ({"LEVEL": "debug", "TASK_PROCESSOR": "jobs:run"}, {"KEY": "k:3"})


def test_reserved_names_in_one_section_are_found_when_the_other_is_bad() -> None:
    assert problems(env={"PORT": "1"}, secrets={"KEY": 3}) == [
        f'service.env.PORT: {RESERVED}, got "PORT"',
        "service.secrets.KEY: must be a string, got 3",
    ]
    assert problems(env={"LEVEL": 3}, secrets={"PORT": "p:1"}) == [
        "service.env.LEVEL: must be a string, got 3",
        f'service.secrets.PORT: {RESERVED}, got "PORT"',
    ]


def test_each_name_in_both_env_and_secrets_is_named_once_in_order() -> None:
    assert problems(env={"B": "1", "A": "2", "C": "3"}, secrets={"B": "b:1", "A": "a:1"}) == [
        'service.secrets.A: is also set in env: pick one, got "A"',
        'service.secrets.B: is also set in env: pick one, got "B"',
    ]


def test_a_processor_is_refused_beside_an_app_in_either_section() -> None:
    why = (
        "can't be set with app: the handler forwards each task to the app (TASK_APP_URL)"
        ' instead of calling a processor, got "TASK_PROCESSOR"'
    )
    app = {"image": APP_IMAGE}
    assert problems(env={"TASK_PROCESSOR": "jobs:run"}, app=app) == [
        f"service.env.TASK_PROCESSOR: {why}"
    ]
    assert problems(secrets={"TASK_PROCESSOR": "p:1"}, app=app) == [
        f"service.secrets.TASK_PROCESSOR: {why}"
    ]
    # An app that is itself bad still rules the processor out.
    assert problems(env={"TASK_PROCESSOR": "jobs:run"}, app={"image": APP_IMAGE, "port": 0}) == [
        "service.app.port: must be >= 1 and <= 65535, got 0",
        f"service.env.TASK_PROCESSOR: {why}",
    ]
    assert problems(env={"TASK_PROCESSOR": "x"}, secrets={"K": 1}, app=app) == [
        f"service.env.TASK_PROCESSOR: {why}",
        "service.secrets.K: must be a string, got 1",
    ]
    # Not a mapping: no app to forward to, nothing to say about the processor.
    assert problems(env={"TASK_PROCESSOR": "x"}, app="node") == [
        'service.app: must be a mapping, got "node"'
    ]


def test_the_handlers_cpu_and_memory_follow_cloud_runs_table() -> None:
    assert problems(cpu="2", memory="16Gi") == [
        "service.memory: must be >= 128Mi and <= 8Gi with cpu '2' (Cloud Run's vCPU and memory"
        ' table), got "16Gi"'
    ]
    assert problems(cpu="0.5", concurrency=2) == [
        "service.concurrency: must be 1 with less than 1 vCPU (cpu '0.5'): Cloud Run's rule"
        " for fractional CPU, got 2"
    ]
    assert service(cpu="0.5", concurrency=1).concurrency == 1
    # A bad cpu: no table row to check the memory against.
    assert problems(cpu="3", memory="16Gi") == [
        "service.cpu: must be 0.08..1 in steps of 0.001 (e.g. '0.5' or '500m'), or '1', '2',"
        " '4', '6', '8', got \"3\""
    ]


def test_both_containers_fit_one_instance_at_the_edge_and_not_beyond() -> None:
    edge = service(cpu="4", memory="16Gi", app={"image": APP_IMAGE, "cpu": "4", "memory": "16Gi"})
    assert edge.app is not None and (edge.app.cpu, edge.app.memory) == ("4", "16Gi")
    assert problems(
        cpu="6", memory="24Gi", app={"image": APP_IMAGE, "cpu": "4", "memory": "16Gi"}
    ) == [
        "service.app.cpu: plus the handler's cpu ('6') must be <= 8 vCPU, Cloud Run's limit"
        ' per instance (is 10), got "4"',
        "service.app.memory: plus the handler's memory ('24Gi') must be <= 32Gi, Cloud Run's"
        ' limit per instance (is 40Gi), got "16Gi"',
    ]
    assert problems(
        cpu="8", memory="4Gi", app={"image": APP_IMAGE, "cpu": "0.5", "memory": "512Mi"}
    ) == [
        "service.app.cpu: plus the handler's cpu ('8') must be <= 8 vCPU, Cloud Run's limit"
        ' per instance (is 8.5), got "0.5"'
    ]


def test_the_instance_rule_skips_a_container_whose_limits_are_bad() -> None:
    assert problems(cpu="8", memory="32Gi", app={"image": APP_IMAGE, "cpu": "9"}) == [
        "service.app.cpu: must be 0.08..1 in steps of 0.001 (e.g. '0.5' or '500m'), or '1',"
        " '2', '4', '6', '8', got \"9\""
    ]
    assert problems(cpu="8", memory="40Gi", app={"image": APP_IMAGE, "cpu": "1"}) == [
        'service.memory: must be >= 128Mi and <= 32Gi, got "40Gi"'
    ]


def test_a_timeout_is_unresolved_until_its_pipeline_resolves_it() -> None:
    bare = ServiceSettings.model_validate({"image": IMAGE})
    with pytest.raises(RuntimeError, match="resolved by PipelineSettings"):
        _ = bare.resolved_timeout
    assert service(timeout="1200s").resolved_timeout == Duration.of_seconds(1200)
    assert problems(timeout="3601s") == [
        'service.timeout: must be >= 1s and <= 3600s, got "3601s"',
    ]
