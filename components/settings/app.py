"""The team's own container beside the handler: Cloud Run's multi-container (sidecar) limits.

The handler stays the ingress container (the one with a port); the app is a sidecar it
forwards each claimed task to on localhost. An instance has exactly one ingress container
and optional sidecars; a sidecar gets no port and no PORT variable, and `depends_on` holds a
container back until the ones it names pass their startup probes (Cloud Run container
contract, run/docs/reference/container-contract; run/docs/deploying, "Deploy multiple
containers": up to 10 containers per instance, two here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from .container import EnvName, SecretRef, check_cpu, check_image, check_memory, cpu_memory_rules
from .validation import INVALID, Problem, Settings, fail, known, within

# The handler's port, where Cloud Run sends requests: the container contract's default
# (8080; run/docs/reference/container-contract, "Listening for requests on the correct
# port"). The app listens on another port of the instance's shared localhost.
HANDLER_PORT = 8080
# A TCP port, as google.cloud.run.v2.ContainerPort.container_port: 0 < port < 65536.
MAX_PORT = 65535
DEFAULT_APP_PORT = 8081
# Startup probe limits, from google.cloud.run.v2.Probe's field text (google-cloud-run,
# run_v2/types/k8s_min.py): initialDelaySeconds 0..240 and periodSeconds 1..240 for a
# startup probe; timeoutSeconds 1..3600 and not above periodSeconds (periodSeconds: "Must
# be greater or equal than timeout_seconds"; timeoutSeconds' own text says "smaller than":
# the two disagree, the looser one is enforced, as the contract's defaults are 1 and 1);
# failureThreshold >= 1.
MAX_PROBE_DELAY_SECONDS = 240
MAX_PROBE_PERIOD_SECONDS = 240
MAX_PROBE_TIMEOUT_SECONDS = 3600
# A startup probe that has not passed after failureThreshold x periodSeconds shuts the
# container down, and that window can't exceed 240 s (run/docs/configuring/healthchecks,
# "Probe requirements and behavior").
MAX_PROBE_WINDOW_SECONDS = 240
# Cloud Run's own variables (container contract, "Environment variables"): refused in the
# app's env as in the handler's. Cloud Run sets PORT in the ingress container only.
APP_RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})


def _probe_path(value: str) -> str:
    # An HTTP GET path on the app's port: absolute, no scheme or host, no whitespace.
    if not value.startswith("/") or any(c.isspace() for c in value) or "#" in value:
        raise fail("must be an absolute path such as '/healthz' (no spaces, no '#')")
    return value


def _command_word(value: str) -> str:
    if not value or "\x00" in value:
        raise fail("must be a non-empty string without NUL")
    return value


class StartupProbeSettings(Settings):
    """When the app counts as started: the handler starts only once this passes."""

    path: Annotated[str, AfterValidator(_probe_path)] | None = None
    """An HTTP GET path on the app's port (`/healthz`), any answer 200..399 passing; unset:
    a TCP connection to `port`."""
    initial_delay_seconds: Annotated[int, within(0, MAX_PROBE_DELAY_SECONDS)] = Field(
        0, alias="initialDelaySeconds"
    )
    """Seconds before the first probe, 0..240."""
    period_seconds: Annotated[int, within(1, MAX_PROBE_PERIOD_SECONDS)] = Field(
        1, alias="periodSeconds"
    )
    """Seconds between probes, 1..240, at least `timeoutSeconds`."""
    timeout_seconds: Annotated[int, within(1, MAX_PROBE_TIMEOUT_SECONDS)] = Field(
        1, alias="timeoutSeconds"
    )
    """Seconds one probe may take, 1..3600, at most `periodSeconds`."""
    failure_threshold: Annotated[int, within(1, MAX_PROBE_WINDOW_SECONDS)] = Field(
        60, alias="failureThreshold"
    )
    """Failed probes before the container is shut down, 1..240, with `failureThreshold` x
    `periodSeconds` at most 240 s."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        if known(view.timeout_seconds, view.period_seconds) and (
            view.timeout_seconds > view.period_seconds
        ):
            yield (
                ("timeoutSeconds",),
                f"must be <= periodSeconds ({view.period_seconds}), Cloud Run's probe rule",
                view.timeout_seconds,
            )
        if known(view.failure_threshold, view.period_seconds):
            window = view.failure_threshold * view.period_seconds
            if window > MAX_PROBE_WINDOW_SECONDS:
                yield (
                    ("failureThreshold",),
                    f"times periodSeconds ({view.period_seconds}) must be <="
                    f" {MAX_PROBE_WINDOW_SECONDS} s, Cloud Run's startup probe window (is"
                    f" {window} s)",
                    view.failure_threshold,
                )


class AppSettings(Settings):
    """The team's own container behind the handler: each claimed task is forwarded to it on
    localhost (the handler's proxy mode, `TASK_APP_URL`). In the Cloud Run service the
    handler's container is named `handler` and this one `app`."""

    image: Annotated[str, AfterValidator(check_image)]
    """Container image, `REGISTRY/PATH[:TAG][@sha256:DIGEST]`; in prod pinned by digest
    (policy `cloudrun-image-pinned-by-digest` checks every container)."""
    port: Annotated[int, within(1, MAX_PORT)] = DEFAULT_APP_PORT
    """Where the app listens on the instance's localhost, 1..65535, not 8080 (the
    handler's). Cloud Run gives a sidecar no `PORT`: the app listens here by itself
    (`make local` passes it as `PORT`)."""
    cpu: Annotated[str, AfterValidator(check_cpu)] = "1"
    """vCPUs, as `service.cpu`; with the handler's at most 8 per instance."""
    memory: Annotated[str, AfterValidator(check_memory)] = "512Mi"
    """Memory, as `service.memory`, within what this container's cpu allows; with the
    handler's at most 32Gi per instance."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """The app's environment variables (plain text in state): names
    `[A-Za-z_][A-Za-z0-9_]*`, not `PORT` nor `K_*`."""
    secrets: dict[EnvName, SecretRef] = Field(default_factory=dict)
    """`ENV: "SECRET:VERSION"` from Secret Manager, as `service.secrets`; the runtime
    account gets one accessor grant per distinct secret of both containers."""
    startup_probe: StartupProbeSettings = Field(
        default_factory=lambda: StartupProbeSettings.model_validate({}), alias="startupProbe"
    )
    """When the app counts as started (default: TCP on `port`, every 1 s, 60 tries)."""
    local_command: list[Annotated[str, AfterValidator(_command_word)]] | None = Field(
        None, alias="localCommand", min_length=1
    )
    """What `make local` runs instead of the image (no container engine there), from the
    repository's root with `PORT` set, e.g. `["node", "examples/node-app/server.js"]`;
    `make local` refuses a pipeline with an app and no `localCommand`."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        if view.port == HANDLER_PORT:  # INVALID, a port that failed, is never equal
            yield (
                ("port",),
                f"must differ from {HANDLER_PORT}, the handler's port (the containers share"
                " localhost)",
                view.port,
            )
        for section in ("env", "secrets"):
            names = getattr(view, section)
            if names is INVALID:
                continue
            for name in sorted(APP_RESERVED_ENV.intersection(names)):
                yield ((section, name), "is set by Cloud Run and may not be overridden", name)
        if known(view.env, view.secrets):
            for name in sorted(set(view.env).intersection(view.secrets)):
                yield (("secrets", name), "is also set in env: pick one", name)
        if known(view.cpu, view.memory):
            yield from cpu_memory_rules(view.cpu, view.memory)
