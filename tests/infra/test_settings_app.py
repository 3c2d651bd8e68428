"""`service.app` validated without running the program (components/settings/app.py): each
refusal's whole line, several problems at once, and the typed values a good app yields."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import ConfigError, parse_pipeline
from components.settings.app import AppSettings

IMAGE = "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0"


def app_problems(app: dict[str, Any], **service: Any) -> list[str]:
    """The problems of a pipeline whose service has APP (key paths from the pipeline)."""
    with pytest.raises(ConfigError) as caught:
        parse_pipeline({"service": {"image": IMAGE, **service, "app": {"image": IMAGE, **app}}})
    return caught.value.problems


def app_of(app: dict[str, Any], **service: Any) -> AppSettings:
    pipeline = parse_pipeline({"service": {"image": IMAGE, **service, "app": app}})
    assert pipeline.service.app is not None
    return pipeline.service.app


PROBE_HELP = "must be an absolute path such as '/healthz' (no spaces, no '#')"


@pytest.mark.parametrize("path", ["healthz", "http://x/healthz", "/health z", "/a\tb", "/a#b"])
def test_a_probe_path_must_be_absolute_without_spaces_or_fragment(path: str) -> None:
    assert app_problems({"startupProbe": {"path": path}}) == [
        f"service.app.startupProbe.path: {PROBE_HELP}, got {json_text(path)}"
    ]


@pytest.mark.parametrize("path", ["/", "/healthz", "/ready?full=1"])
def test_a_plain_probe_path_is_kept(path: str) -> None:
    assert app_of({"image": IMAGE, "startupProbe": {"path": path}}).startup_probe.path == path


def json_text(value: str) -> str:
    import json

    return json.dumps(value)


@pytest.mark.parametrize(
    ("command", "index"), [([""], 0), (["node", "a\x00b"], 1), (["node", "x", ""], 2)]
)
def test_a_local_command_word_must_be_non_empty_without_nul(command: list[str], index: int) -> None:
    assert app_problems({"localCommand": command}) == [
        f"service.app.localCommand.{index}: must be a non-empty string without NUL,"
        f" got {json_text(command[index])}"
    ]


def test_a_local_command_is_kept_word_for_word() -> None:
    app = app_of({"image": IMAGE, "localCommand": ["node", "server.js", "--port=1"]})
    assert app.local_command == ["node", "server.js", "--port=1"]


def test_an_empty_local_command_is_refused() -> None:
    [line] = app_problems({"localCommand": []})
    assert line.startswith("service.app.localCommand: List should have at least 1 item")


def test_defaults_of_an_app_are_those_documented() -> None:
    app = app_of({"image": IMAGE})
    probe = app.startup_probe
    assert (app.port, app.cpu, app.memory, app.env, app.secrets, app.local_command) == (
        8081,
        "1",
        "512Mi",
        {},
        {},
        None,
    )
    assert (
        probe.path,
        probe.initial_delay_seconds,
        probe.period_seconds,
        probe.timeout_seconds,
        probe.failure_threshold,
    ) == (None, 0, 1, 1, 60)


def test_the_handlers_port_is_refused_and_its_neighbours_taken() -> None:
    assert app_problems({"port": 8080}) == [
        "service.app.port: must differ from 8080, the handler's port (the containers share"
        " localhost), got 8080"
    ]
    assert app_of({"image": IMAGE, "port": 8079}).port == 8079
    assert app_of({"image": IMAGE, "port": 8082}).port == 8082


def test_cloud_runs_variables_are_refused_in_env_and_secrets_each_named() -> None:
    problems = app_problems(
        {
            "env": {"PORT": "1", "K_REVISION": "r", "MODE": "x"},
            "secrets": {"K_SERVICE": "s:1", "K_CONFIGURATION": "c:latest", "TOKEN": "t:2"},
        }
    )
    reserved = "is set by Cloud Run and may not be overridden"
    assert problems == [
        f'service.app.env.K_REVISION: {reserved}, got "K_REVISION"',
        f'service.app.env.PORT: {reserved}, got "PORT"',
        f'service.app.secrets.K_CONFIGURATION: {reserved}, got "K_CONFIGURATION"',
        f'service.app.secrets.K_SERVICE: {reserved}, got "K_SERVICE"',
    ]


def test_the_handlers_own_variables_are_the_apps_to_set() -> None:
    app = app_of({"image": IMAGE, "env": {"TASK_MAX_ATTEMPTS": "3", "TASK_APP_URL": "x"}})
    assert app.env == {"TASK_MAX_ATTEMPTS": "3", "TASK_APP_URL": "x"}


def test_a_name_in_both_env_and_secrets_is_refused_once_per_name() -> None:
    problems = app_problems(
        {"env": {"B": "1", "A": "2", "C": "3"}, "secrets": {"A": "a:1", "B": "b:1", "D": "d:1"}}
    )
    assert problems == [
        'service.app.secrets.A: is also set in env: pick one, got "A"',
        'service.app.secrets.B: is also set in env: pick one, got "B"',
    ]


def test_reserved_names_are_still_found_when_the_other_section_is_bad() -> None:
    problems = app_problems({"env": {"PORT": "1"}, "secrets": {"K_SERVICE": 5}})
    assert problems == [
        'service.app.env.PORT: is set by Cloud Run and may not be overridden, got "PORT"',
        "service.app.secrets.K_SERVICE: must be a string, got 5",
    ]
    problems = app_problems({"env": {"PORT": 1}, "secrets": {"K_SERVICE": "s:1"}})
    assert problems == [
        "service.app.env.PORT: must be a string, got 1",
        "service.app.secrets.K_SERVICE: is set by Cloud Run and may not be overridden, got"
        ' "K_SERVICE"',
    ]


def test_the_apps_cpu_and_memory_follow_cloud_runs_table_without_a_concurrency_rule() -> None:
    assert app_problems({"cpu": "0.5", "memory": "2Gi"}) == [
        "service.app.memory: must be >= 128Mi and <= 1Gi with cpu '0.5' (Cloud Run's vCPU and"
        ' memory table), got "2Gi"'
    ]
    # A sidecar takes no requests: a fraction of a vCPU is fine with any concurrency.
    app = app_of({"image": IMAGE, "cpu": "0.5", "memory": "1Gi"}, concurrency=80)
    assert (app.cpu, app.memory) == ("0.5", "1Gi")


@pytest.mark.parametrize(
    ("probe", "lines"),
    [
        (
            # 60 (the default threshold) x 4 s: the window's edge.
            {"periodSeconds": 4, "timeoutSeconds": 5},
            [
                "service.app.startupProbe.timeoutSeconds: must be <= periodSeconds (4), Cloud"
                " Run's probe rule, got 5"
            ],
        ),
        (
            {"periodSeconds": 10, "failureThreshold": 25},
            [
                "service.app.startupProbe.failureThreshold: times periodSeconds (10) must be <="
                " 240 s, Cloud Run's startup probe window (is 250 s), got 25"
            ],
        ),
        (
            {"periodSeconds": 3, "timeoutSeconds": 4, "failureThreshold": 81},
            [
                "service.app.startupProbe.failureThreshold: times periodSeconds (3) must be <="
                " 240 s, Cloud Run's startup probe window (is 243 s), got 81",
                "service.app.startupProbe.timeoutSeconds: must be <= periodSeconds (3), Cloud"
                " Run's probe rule, got 4",
            ],
        ),
    ],
)
def test_probe_rules_name_the_key_and_the_limit(probe: dict[str, Any], lines: list[str]) -> None:
    assert app_problems({"startupProbe": probe}) == lines


def test_probe_limits_at_their_edges_are_taken() -> None:
    probe = app_of(
        {
            "image": IMAGE,
            "startupProbe": {"periodSeconds": 8, "timeoutSeconds": 8, "failureThreshold": 30},
        }
    ).startup_probe
    assert (probe.period_seconds, probe.timeout_seconds, probe.failure_threshold) == (8, 8, 30)


def test_a_probe_rule_skips_a_field_that_failed_on_its_own() -> None:
    assert app_problems({"startupProbe": {"periodSeconds": 0, "timeoutSeconds": 5}}) == [
        "service.app.startupProbe.periodSeconds: must be >= 1 and <= 240, got 0"
    ]
    assert app_problems({"startupProbe": {"periodSeconds": 2, "failureThreshold": "9"}}) == [
        'service.app.startupProbe.failureThreshold: must be a whole number, got "9"'
    ]
    assert app_problems({"startupProbe": {"periodSeconds": 2, "timeoutSeconds": 3601}}) == [
        "service.app.startupProbe.timeoutSeconds: must be >= 1 and <= 3600, got 3601"
    ]


def test_the_cpu_memory_rule_skips_a_bad_cpu_or_memory() -> None:
    assert app_problems({"cpu": "0.5", "memory": "1Pi"}) == [
        "service.app.memory: must be a size such as '512Mi' or '2Gi' (units k, K, M, G, Ki,"
        ' Mi, Gi), got "1Pi"'
    ]
    assert app_problems({"cpu": "0.01", "memory": "8Gi"}) == [
        "service.app.cpu: must be 0.08..1 in steps of 0.001 (e.g. '0.5' or '500m'), or '1',"
        " '2', '4', '6', '8', got \"0.01\""
    ]
    assert app_problems({"port": "8080"}) == [
        'service.app.port: must be a whole number, got "8080"'
    ]
