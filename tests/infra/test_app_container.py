"""`service.app`: the team's container behind the handler, as a multi-container service."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import ENQUEUER, base_config, record
from tests.infra.expectations import API, SERVICE, check_pipeline
from tests.infra.test_invalid_config import run_invalid

P = "cloudrun-tasks:pipelines"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
APP_IMAGE = "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0"


def with_app(app: dict[str, Any], **service: Any) -> dict[str, Any]:
    config = base_config()
    config[P]["orders"]["service"].update(service, app=app)
    return config


def containers(config: dict[str, Any]) -> list[dict[str, Any]]:
    return record(config).one(SERVICE, "orders").inputs["template"]["containers"]


def test_handler_is_the_ingress_container_and_waits_for_the_app() -> None:
    handler, app = containers(with_app({"image": APP_IMAGE}))
    assert handler["name"] == "handler"
    assert handler["ports"] == {"containerPort": 8080}
    assert handler["dependsOns"] == ["app"]
    handler_env = {e["name"]: e.get("value") for e in handler["envs"]}
    assert handler_env["TASK_APP_URL"] == "http://localhost:8081"
    assert app["name"] == "app"
    assert app["image"] == APP_IMAGE
    assert "ports" not in app, "only the ingress container has a port"
    assert "dependsOns" not in app
    assert app["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    # Default probe: TCP on the app's port, every second, for at most 60 s.
    assert app["startupProbe"] == {
        "initialDelaySeconds": 0,
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 60,
        "tcpSocket": {"port": 8081},
    }
    # The pipeline's settings are the handler's, never the app's.
    assert not [e for e in app.get("envs") or [] if e["name"].startswith("TASK_")]


def test_every_app_setting_reaches_its_container() -> None:
    app_settings = {
        "image": APP_IMAGE,
        "port": 9000,
        "cpu": "2",
        "memory": "2Gi",
        "env": {"NODE_ENV": "production"},
        # One secret both containers read, and one only the app reads.
        "secrets": {"DB_PASSWORD": "db-password:latest", "TOKEN": "api-key:2"},
        "startupProbe": {
            "path": "/healthz",
            "initialDelaySeconds": 5,
            "periodSeconds": 4,
            "timeoutSeconds": 2,
            "failureThreshold": 30,
        },
        "localCommand": ["node", "server.js"],
    }
    config = with_app(app_settings, secrets={"API_KEY": "api-key:3"})
    rec = record(config)
    service = rec.one(SERVICE, "orders").inputs
    handler, app = service["template"]["containers"]
    assert {e["name"]: e.get("value") for e in handler["envs"]}["TASK_APP_URL"] == (
        "http://localhost:9000"
    )
    assert app["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert app["envs"] == [
        {"name": "NODE_ENV", "value": "production"},
        {
            "name": "DB_PASSWORD",
            "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "latest"}},
        },
        {"name": "TOKEN", "valueSource": {"secretKeyRef": {"secret": "api-key", "version": "2"}}},
    ]
    assert app["startupProbe"] == {
        "initialDelaySeconds": 5,
        "periodSeconds": 4,
        "timeoutSeconds": 2,
        "failureThreshold": 30,
        "httpGet": {"path": "/healthz", "port": 9000},
    }
    # One accessor grant per distinct secret of both containers, all before the service.
    check_pipeline(
        rec,
        "orders",
        location="us-central1",
        protect=False,
        enqueuers=[ENQUEUER],
        secrets={"API_KEY": "api-key:3", "DB_PASSWORD": "db-password:latest"},
    )
    grants = sorted(r.inputs["secretId"] for r in rec.of_type(SECRET_MEMBER))
    assert grants == ["api-key", "db-password"]


def test_app_secrets_alone_enable_secret_manager() -> None:
    rec = record(with_app({"image": APP_IMAGE, "secrets": {"TOKEN": "api-key:1"}}))
    assert "secretmanager.googleapis.com" in {r.inputs["service"] for r in rec.of_type(API)}
    assert [r.inputs["secretId"] for r in rec.of_type(SECRET_MEMBER)] == ["api-key"]


def test_without_app_the_service_keeps_one_unnamed_container() -> None:
    [container] = containers(base_config())
    assert {"name", "ports", "dependsOns"}.isdisjoint(container)
    assert "TASK_APP_URL" not in {e["name"] for e in container["envs"]}


def test_every_app_problem_is_named_at_once_and_nothing_registered() -> None:
    config = with_app(
        {
            "image": "Not An Image",
            "port": 8080,
            "cpu": "4",
            "memory": "16Gi",
            "env": {"PORT": "9000"},
            "startupProbe": {"periodSeconds": 10, "timeoutSeconds": 11, "failureThreshold": 25},
            "localCommand": [],
            "ports": 1,
        },
        cpu="6",
        memory="24Gi",
        concurrency=80,
        env={"TASK_APP_URL": "http://localhost:1", "TASK_PROCESSOR": "jobs:run"},
    )
    error, recording = run_invalid(config)
    at = "pipelines.orders.service"
    assert [line.split(":")[0] for line in error.problems] == [
        f"{at}.app.cpu",
        f"{at}.app.env.PORT",
        f"{at}.app.image",
        f"{at}.app.localCommand",
        f"{at}.app.memory",
        f"{at}.app.port",
        f"{at}.app.ports",
        f"{at}.app.startupProbe.failureThreshold",
        f"{at}.app.startupProbe.timeoutSeconds",
        f"{at}.env.TASK_APP_URL",
        f"{at}.env.TASK_PROCESSOR",
    ]
    text = "\n".join(error.problems)
    assert "must be <= 8 vCPU, Cloud Run's limit per instance (is 10)" in text
    assert "must be <= 32Gi, Cloud Run's limit per instance (is 40Gi)" in text
    assert "must differ from 8080, the handler's port" in text
    assert "Cloud Run's startup probe window (is 250 s)" in text
    assert "did you mean port?" in text
    assert "env.TASK_PROCESSOR: can't be set with app" in text
    assert recording.resources == []


def test_limits_at_their_edges_pass() -> None:
    # 8 vCPU and 32Gi in all, a 240 s probe window, the highest port.
    app = {
        "image": APP_IMAGE,
        "port": 65535,
        "cpu": "2",
        "memory": "8Gi",
        "startupProbe": {"periodSeconds": 240, "timeoutSeconds": 240, "failureThreshold": 1},
    }
    handler, sidecar = containers(with_app(app, cpu="6", memory="24Gi"))
    assert sidecar["startupProbe"]["tcpSocket"] == {"port": 65535}
    assert handler["resources"]["limits"] == {"cpu": "6", "memory": "24Gi"}


def test_a_processor_without_an_app_is_still_allowed() -> None:
    config = base_config()
    config[P]["orders"]["service"]["env"] = {"TASK_PROCESSOR": "jobs:run"}
    [container] = containers(config)
    assert {"name": "TASK_PROCESSOR", "value": "jobs:run"} in container["envs"]
