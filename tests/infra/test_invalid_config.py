"""A catalogue of bad stack configs: each names its key path, and nothing is registered."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from components.settings import ConfigError
from plan.recorder import Recording, run_program
from tests.infra.conftest import ROOT, base_config

P = "cloudrun-tasks:pipelines"


class _Delete:
    """The key removed rather than set; its repr names the test (pytest-xdist workers must
    collect the same ids, so no address in it)."""

    def __repr__(self) -> str:
        return "<deleted>"


DELETE = _Delete()


def with_value(path: str, value: Any) -> dict[str, Any]:
    """base_config() with the dotted PATH (first part is the config key) set or deleted."""
    config = base_config()
    key, *rest = path.split(".")
    if not rest:
        if value is DELETE:
            config.pop(key)
        else:
            config[key] = value
        return config
    node = config.setdefault(key, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(rest[-1])
    else:
        node[rest[-1]] = value
    return config


ORDERS = f"{P}.orders"
CASES: list[tuple[str, Any, str]] = [
    # (config path, bad value, expected start of the error line)
    ("gcp:project", DELETE, "gcp:project: is required"),
    ("gcp:project", "Acme_Prod", "gcp:project: must be a project id"),
    ("gcp:region", "us-central1-a", "gcp:region: must be a region"),
    ("cloudrun-tasks:protect", "yes", 'protect: must be true or false, got "yes"'),
    ("cloudrun-tasks:labels", {"Team": "x"}, "labels.Team: must be a label key"),
    ("cloudrun-tasks:labels", {"team": "Payments!"}, "labels.team: must be a label value"),
    (
        "cloudrun-tasks:pipeline",
        {},
        "pipeline: unknown key; did you mean pipelines? allowed keys: gcp:project",
    ),
    (P, DELETE, "pipelines: is required"),
    (P, {}, "pipelines: must declare at least one pipeline"),
    (P, ["orders"], "pipelines: must be a mapping"),
    (f"{P}.Orders_1", {"service": {"image": "x"}}, "pipelines.Orders_1: must be 1..22 lowercase"),
    (
        f"{P}.a-very-long-pipeline-name",
        {"service": {"image": "x"}},
        "pipelines.a-very-long-pipeline-name: must be 1..22",
    ),
    (f"{P}.trailing-", {"service": {"image": "x"}}, "pipelines.trailing-: must be 1..22"),
    (f"{ORDERS}.location", "us", "pipelines.orders.location: must be a region"),
    (
        f"{ORDERS}.dispatchDeadline",
        "10s",
        "pipelines.orders.dispatchDeadline: must be >= 15s and <= 1800s",
    ),
    (
        f"{ORDERS}.dispatchDeadline",
        "31m",
        "pipelines.orders.dispatchDeadline: must be >= 15s and <= 1800s",
    ),
    (f"{ORDERS}.dispatchDeadline", 600, "pipelines.orders.dispatchDeadline: must be a duration"),
    (
        f"{ORDERS}.dispatchDeadline",
        "ten minutes",
        "pipelines.orders.dispatchDeadline: must be a duration",
    ),
    (f"{ORDERS}.service", DELETE, "pipelines.orders.service: is required"),
    (f"{ORDERS}.service.image", DELETE, "pipelines.orders.service.image: is required"),
    (
        f"{ORDERS}.service.image",
        "my image",
        "pipelines.orders.service.image: must be a container image",
    ),
    (
        f"{ORDERS}.service.ingress",
        "public",
        "pipelines.orders.service.ingress: must be one of 'internal'",
    ),
    (
        f"{ORDERS}.service.timeout",
        "61m",
        "pipelines.orders.service.timeout: must be >= 1s and <= 3600s",
    ),
    (
        f"{ORDERS}.service.timeout",
        "300s",
        "pipelines.orders.service.timeout: must be >= dispatchDeadline (600s)",
    ),
    (
        f"{ORDERS}.service.concurrency",
        "80",
        'pipelines.orders.service.concurrency: must be a whole number, got "80"',
    ),
    (
        f"{ORDERS}.service.concurrency",
        0,
        "pipelines.orders.service.concurrency: must be >= 1 and <= 1000",
    ),
    (
        f"{ORDERS}.service.maxInstances",
        0,
        "pipelines.orders.service.maxInstances: must be >= 1 and <= 1000",
    ),
    (
        f"{ORDERS}.service.minInstances",
        11,
        "pipelines.orders.service.minInstances: must be <= maxInstances (10)",
    ),
    (f"{ORDERS}.service.cpu", 2, "pipelines.orders.service.cpu: must be a string, got 2"),
    (f"{ORDERS}.service.memory", "512MB", "pipelines.orders.service.memory: must be a size"),
    (
        f"{ORDERS}.service.env",
        {"PORT": "9000"},
        "pipelines.orders.service.env.PORT: is set by Cloud Run",
    ),
    (
        f"{ORDERS}.service.env",
        {"TASK_MAX_ATTEMPTS": "3"},
        "pipelines.orders.service.env.TASK_MAX_ATTEMPTS: is set by Cloud Run or by the pipeline",
    ),
    (
        f"{ORDERS}.service.env",
        {"9LIVES": "x"},
        "pipelines.orders.service.env.9LIVES: must be an environment variable name",
    ),
    (
        f"{ORDERS}.service.env",
        {"LEVEL": 3},
        "pipelines.orders.service.env.LEVEL: must be a string, got 3",
    ),
    (
        f"{ORDERS}.service.secrets",
        {"KEY": "api-key"},
        "pipelines.orders.service.secrets.KEY: must be 'SECRET:VERSION'",
    ),
    (
        f"{ORDERS}.service.secrets",
        {"KEY": "api-key:v1"},
        "pipelines.orders.service.secrets.KEY: must be 'SECRET:VERSION'",
    ),
    (
        f"{ORDERS}.service.replicas",
        3,
        "pipelines.orders.service.replicas: unknown key; allowed keys: image, ingress",
    ),
    (
        f"{ORDERS}.queue.maxDispatchesPerSecond",
        900,
        "pipelines.orders.queue.maxDispatchesPerSecond: must be > 0 and <= 500, got 900",
    ),
    (
        f"{ORDERS}.queue.maxDispatchesPerSecond",
        0,
        "pipelines.orders.queue.maxDispatchesPerSecond: must be > 0 and <= 500, got 0",
    ),
    (
        f"{ORDERS}.queue.maxConcurrentDispatches",
        5001,
        "pipelines.orders.queue.maxConcurrentDispatches: must be >= 1 and <= 5000",
    ),
    (
        f"{ORDERS}.queue.maxConcurrentDispatches",
        801,
        "pipelines.orders.queue.maxConcurrentDispatches: must be <= service capacity"
        " maxInstances x concurrency (800)",
    ),
    (
        f"{ORDERS}.queue.maxAttempts",
        0,
        "pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1",
    ),
    (
        f"{ORDERS}.queue.maxAttempts",
        -5,
        "pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1",
    ),
    (
        f"{ORDERS}.queue.maxBackoff",
        "0.5s",
        "pipelines.orders.queue.maxBackoff: must be >= minBackoff (1s)",
    ),
    (f"{ORDERS}.queue.minBackoff", "-1s", "pipelines.orders.queue.minBackoff: must be a duration"),
    (
        f"{ORDERS}.queue.maxDoublings",
        -1,
        "pipelines.orders.queue.maxDoublings: must be >= 0 and <= 2147483647",
    ),
    (
        f"{ORDERS}.queue.loggingSamplingRatio",
        1.5,
        "pipelines.orders.queue.loggingSamplingRatio: must be >= 0 and <= 1",
    ),
    (
        f"{ORDERS}.queue.paused",
        "no",
        'pipelines.orders.queue.paused: must be true or false, got "no"',
    ),
    (f"{ORDERS}.queue.maxBurstSize", 10, "pipelines.orders.queue.maxBurstSize: unknown key"),
    (f"{ORDERS}.enqueuers", ["allUsers"], "pipelines.orders.enqueuers.0: public members"),
    (
        f"{ORDERS}.enqueuers",
        ["allAuthenticatedUsers"],
        "pipelines.orders.enqueuers.0: public members",
    ),
    (
        f"{ORDERS}.enqueuers",
        ["api@acme.iam.gserviceaccount.com"],
        "pipelines.orders.enqueuers.0: must be an IAM member",
    ),
    (
        f"{ORDERS}.enqueuers",
        ["group:a@b.c", "group:a@b.c"],
        "pipelines.orders.enqueuers.1: is listed twice",
    ),
    (f"{ORDERS}.enqueuers", "group:a@b.c", "pipelines.orders.enqueuers: must be a list"),
    # Cloud Run's own limits (run/docs/configuring/services/cpu and .../memory-limits).
    (
        f"{ORDERS}.service.memory",
        "64Gi",
        "pipelines.orders.service.memory: must be >= 128Mi and <= 32Gi",
    ),
    (
        f"{ORDERS}.service.memory",
        "1Mi",
        "pipelines.orders.service.memory: must be >= 128Mi and <= 32Gi",
    ),
    (
        f"{ORDERS}.service.memory",
        "512.0000001Mi",
        "pipelines.orders.service.memory: must be a size",
    ),
    (f"{ORDERS}.service.cpu", "0.07", "pipelines.orders.service.cpu: must be 0.08..1"),
    (f"{ORDERS}.service.cpu", "0.0805", "pipelines.orders.service.cpu: must be 0.08..1"),
    (f"{ORDERS}.service.cpu", "3", "pipelines.orders.service.cpu: must be 0.08..1"),
    (f"{ORDERS}.service.cpu", "1500m", "pipelines.orders.service.cpu: must be 0.08..1"),
    (
        f"{ORDERS}.service",
        {"image": "us-docker.pkg.dev/cloudrun/container/hello", "cpu": "1", "memory": "32Gi"},
        "pipelines.orders.service.memory: must be >= 128Mi and <= 4Gi with cpu '1'",
    ),
    (
        f"{ORDERS}.service",
        {"image": "us-docker.pkg.dev/cloudrun/container/hello", "cpu": "4", "memory": "1Gi"},
        "pipelines.orders.service.memory: must be >= 2Gi and <= 16Gi with cpu '4'",
    ),
    (
        f"{ORDERS}.service",
        {"image": "us-docker.pkg.dev/cloudrun/container/hello", "cpu": "0.4", "memory": "1Gi"},
        "pipelines.orders.service.memory: must be >= 128Mi and <= 512Mi with cpu '0.4'",
    ),
    (
        f"{ORDERS}.service",
        {"image": "us-docker.pkg.dev/cloudrun/container/hello", "cpu": "500m"},
        "pipelines.orders.service.concurrency: must be 1 with less than 1 vCPU",
    ),
    (
        f"{ORDERS}.service.image",
        "us-docker.pkg.dev/Cloudrun/hello",
        "pipelines.orders.service.image: must be a container image reference",
    ),
    (
        f"{ORDERS}.service.image",
        "us-docker.pkg.dev/cloudrun/hello@sha256:abc",
        "pipelines.orders.service.image: must be a container image reference",
    ),
    (
        f"{ORDERS}.service.image",
        "us-docker.pkg.dev/cloudrun/hello:",
        "pipelines.orders.service.image: must be a container image reference",
    ),
    # The app beside the handler (service.app).
    (f"{ORDERS}.service.app", {}, "pipelines.orders.service.app.image: is required"),
    (f"{ORDERS}.service.app", "node", "pipelines.orders.service.app: must be a mapping"),
    (
        f"{ORDERS}.service.app",
        {"image": "a/b", "port": 0},
        "pipelines.orders.service.app.port: must be >= 1 and <= 65535, got 0",
    ),
    (
        f"{ORDERS}.service.app",
        {"image": "a/b", "startupProbe": {"initialDelaySeconds": 241}},
        "pipelines.orders.service.app.startupProbe.initialDelaySeconds: must be >= 0 and <= 240",
    ),
    (
        f"{ORDERS}.service.app",
        {"image": "a/b", "localCommand": "node server.js"},
        "pipelines.orders.service.app.localCommand: must be a list",
    ),
    (
        f"{ORDERS}.service.app",
        {"image": "a/b", "secrets": {"K_SERVICE": "s:1"}},
        "pipelines.orders.service.app.secrets.K_SERVICE: is set by Cloud Run",
    ),
    # Numbers the APIs take: finite, and int32 where the field is an int32.
    (
        f"{ORDERS}.queue.maxDispatchesPerSecond",
        float("nan"),
        "pipelines.orders.queue.maxDispatchesPerSecond: must be a finite number",
    ),
    (
        f"{ORDERS}.queue.loggingSamplingRatio",
        float("inf"),
        "pipelines.orders.queue.loggingSamplingRatio: must be a finite number",
    ),
    (
        f"{ORDERS}.queue.maxAttempts",
        10_000_000_000,
        "pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1 and <= 2147483647",
    ),
    (
        f"{ORDERS}.queue.maxDoublings",
        2**31,
        "pipelines.orders.queue.maxDoublings: must be >= 0 and <= 2147483647",
    ),
    (
        f"{ORDERS}.queue.maxRetryDuration",
        "0.0000000001s",
        "pipelines.orders.queue.maxRetryDuration: has more than nanosecond precision",
    ),
    # Labels: Google's syntax, the 64-label limit with the project's own, no overriding them.
    (
        "cloudrun-tasks:labels",
        {"pipeline": "x"},
        "labels.pipeline: is set by the project itself (reserved label keys: pipeline,",
    ),
    (
        "cloudrun-tasks:labels",
        {"goog-pulumi-provisioned": "false"},
        "labels.goog-pulumi-provisioned: is set by the project itself",
    ),
    (
        "cloudrun-tasks:labels",
        {f"k{i}": "v" for i in range(63)},
        "labels: has 63 labels: at most 62, since Cloud Run takes 64",
    ),
    ("cloudrun-tasks:labels", {"team": "x" * 64}, "labels.team: must be a label value"),
    ("cloudrun-tasks:labels", {"9team": "x"}, "labels.9team: must be a label key"),
    # Config keys outside the namespaces the program reads.
    (
        "cloudrun-task:protect",
        False,
        "cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
        " cloudrun-tasks:protect?",
    ),
    (
        "gcp:regoin",
        "us-central1",
        "gcp:regoin: unknown key of the gcp provider; did you mean gcp:region?",
    ),
    ("protect", True, "protect: config keys are NAMESPACE:NAME, e.g. cloudrun-tasks:protect"),
]


def run_invalid(config: dict[str, Any]) -> tuple[ConfigError, Recording]:
    recording = Recording(project="cloudrun-tasks", stack="test")
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "test", copy.deepcopy(config), into=recording)
    return caught.value, recording


@pytest.mark.parametrize(
    ("path", "value", "expected"), CASES, ids=[f"{p}={v!r}" for p, v, _ in CASES]
)
def test_bad_value_is_named_and_nothing_registered(path: str, value: Any, expected: str) -> None:
    error, recording = run_invalid(with_value(path, value))
    assert [p for p in error.problems if p.startswith(expected)], error.problems
    assert recording.resources == []


def test_catalogue_is_large_and_distinct() -> None:
    assert len(CASES) >= 80
    assert len({(p, repr(v)) for p, v, _ in CASES}) == len(CASES)


def test_missing_location_without_region() -> None:
    error, recording = run_invalid(with_value("gcp:region", DELETE))
    assert error.problems == ["pipelines.orders.location: is required when gcp:region is not set"]
    assert recording.resources == []


def test_every_problem_is_reported_at_once() -> None:
    config = with_value(f"{ORDERS}.queue.maxDispatchesPerSecond", 900)
    config["cloudrun-tasks:protect"] = "maybe"
    config[P]["orders"]["service"]["ingress"] = "open"
    config[P]["second"] = {"service": {}, "enqueuers": ["allUsers"]}
    error, recording = run_invalid(config)
    assert sorted(error.problems) == sorted(
        [
            'protect: must be true or false, got "maybe"',
            "pipelines.orders.service.ingress: must be one of 'internal', "
            "'internal-and-cloud-load-balancing' or 'all', got \"open\"",
            "pipelines.orders.queue.maxDispatchesPerSecond: must be > 0 and <= 500, got 900",
            "pipelines.second.service.image: is required",
            "pipelines.second.enqueuers.0: public members (allUsers, allAuthenticatedUsers)"
            ' may not enqueue tasks, got "allUsers"',
        ]
    )
    assert recording.resources == []


def test_error_is_a_run_error_pulumi_prints_without_traceback() -> None:
    error, _ = run_invalid(with_value(f"{ORDERS}.service.cpu", "3"))
    assert isinstance(error, pulumi.RunError)
    assert str(error).splitlines() == [
        "invalid stack config (1 problem):",
        "  pipelines.orders.service.cpu: must be 0.08..1 in steps of 0.001 (e.g. '0.5' or"
        " '500m'), or '1', '2', '4', '6', '8', got \"3\"",
    ]
