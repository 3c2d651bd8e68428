"""Settings of the Cloud Run service that handles a pipeline's tasks, with Cloud Run's limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ..durations import Duration
from .app import AppSettings
from .container import (
    MAX_INSTANCE_MEMORY,
    MAX_INSTANCE_MILLICPU,
    EnvName,
    SecretRef,
    check_cpu,
    check_image,
    check_memory,
    cpu_memory_rules,
    memory_bytes,
    millicpu,
    size_text,
)
from .validation import INVALID, Problem, Settings, duration_within, known, within

# Cloud Run request timeout: at most 60 min (run/docs/configuring/request-timeout).
MAX_REQUEST_TIMEOUT = Duration.of_seconds(3600)
# Concurrency per instance: 1..1000 (run/docs/about-concurrency).
MAX_CONCURRENCY = 1000
# Instances: Cloud Run's default regional baseline allows 1000 instances of a 1-CPU
# service (run/docs/configuring/max-instances-limits); beyond that needs a quota increase,
# so we refuse it rather than deploy a ceiling the region will not honour.
MAX_INSTANCES = 1000
# Set by Cloud Run, or by TaskService from the pipeline's settings: the handler's
# last-attempt check, its idempotency store, dead-letter topic, claim lease and threads.
PIPELINE_ENV = (
    "TASK_MAX_ATTEMPTS",
    "TASK_MAX_RETRY_DURATION",
    "TASK_FIRESTORE_DATABASE",
    "TASK_DEAD_LETTER_TOPIC",
    "TASK_DISPATCH_DEADLINE",
    "TASK_PAYLOAD_BUCKET",
    "TASK_SCHEDULES",
    "TASK_CONCURRENCY",
    "GOOGLE_CLOUD_PROJECT",
)
# TASK_APP_URL: set by TaskService when the service has an app (the handler's proxy mode).
RESERVED_ENV = frozenset(
    {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "TASK_APP_URL", *PIPELINE_ENV}
)


class ServiceSettings(Settings):
    """The Cloud Run service that handles the pipeline's tasks."""

    image: Annotated[str, AfterValidator(check_image)]
    """Container image, `REGISTRY/PATH[:TAG][@sha256:DIGEST]`, lowercase path; in prod pinned by
    digest, not a placeholder such as `sha256:000…0` (policy `cloudrun-image-pinned-by-digest`,
    advisory in dev and staging)."""
    ingress: Literal["internal", "internal-and-cloud-load-balancing", "all"] = "internal"
    """`internal`, `internal-and-cloud-load-balancing` or `all`."""
    # Defaults to the pipeline's dispatchDeadline (resolved by PipelineSettings).
    timeout: (
        Annotated[Duration, duration_within(Duration.of_seconds(1), MAX_REQUEST_TIMEOUT)] | None
    ) = None
    """Request timeout, `1s`..`3600s` and at least `dispatchDeadline` (its default), else Cloud
    Tasks retries work still running."""
    concurrency: Annotated[int, within(1, MAX_CONCURRENCY)] = 80
    """Requests per instance, 1..1000; 1 below 1 vCPU."""
    min_instances: Annotated[int, within(0, MAX_INSTANCES)] = Field(0, alias="minInstances")
    """0..1000, at most `maxInstances`."""
    max_instances: Annotated[int, within(1, MAX_INSTANCES)] = Field(10, alias="maxInstances")
    """1..1000."""
    cpu: Annotated[str, AfterValidator(check_cpu)] = "1"
    """vCPUs as a string: `"0.08"`..`"1"` in steps of 0.001 (or millicpu, `"500m"`), or `"1"`,
    `"2"`, `"4"`, `"6"`, `"8"`; below 1 vCPU `concurrency` must be 1."""
    memory: Annotated[str, AfterValidator(check_memory)] = "512Mi"
    """A number and `k`/`K`/`M`/`G`/`Ki`/`Mi`/`Gi`, `128Mi`..`32Gi`, within what the cpu allows: <
    0.5 vCPU up to 512Mi, < 1 up to 1Gi, 1 up to 4Gi, 2 up to 8Gi, 4: 2-16Gi, 6: 4-24Gi, 8:
    4-32Gi."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """Environment variables (plain text in state): names `[A-Za-z_][A-Za-z0-9_]*`, not
    `PORT`/`K_*` nor the `TASK_*` variables the stack sets for the handler."""
    secrets: dict[EnvName, SecretRef] = Field(default_factory=dict)
    """`ENV: "SECRET:VERSION"` (version `latest` or a number) from Secret Manager in the same
    project; not also in `env`."""
    app: AppSettings | None = None
    """The team's own container, in any language, behind the handler (a Cloud Run sidecar):
    the handler claims each task and forwards it there (its proxy mode, `TASK_APP_URL`)."""

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        if (
            known(view.min_instances, view.max_instances)
            and view.min_instances > view.max_instances
        ):
            yield (
                ("minInstances",),
                f"must be <= maxInstances ({view.max_instances})",
                view.min_instances,
            )
        for section in ("env", "secrets"):
            names = getattr(view, section)
            if names is INVALID:
                continue
            for name in sorted(RESERVED_ENV.intersection(names)):
                yield (
                    (section, name),
                    "is set by Cloud Run or by the pipeline and may not be overridden",
                    name,
                )
        if known(view.env, view.secrets):
            for name in sorted(set(view.env).intersection(view.secrets)):
                yield (("secrets", name), "is also set in env: pick one", name)
        if view.app not in (None, INVALID):
            # The handler refuses TASK_PROCESSOR beside TASK_APP_URL (handler settings):
            # said here, before a revision that could not start is deployed.
            for section in ("env", "secrets"):
                names = getattr(view, section)
                if names is not INVALID and "TASK_PROCESSOR" in names:
                    yield (
                        (section, "TASK_PROCESSOR"),
                        "can't be set with app: the handler forwards each task to the app"
                        " (TASK_APP_URL) instead of calling a processor",
                        "TASK_PROCESSOR",
                    )
        if known(view.cpu, view.memory):
            yield from cpu_memory_rules(view.cpu, view.memory, view.concurrency)
            if view.app not in (None, INVALID) and known(view.app.cpu, view.app.memory):
                yield from _instance_rules(view.cpu, view.memory, view.app.cpu, view.app.memory)

    @property
    def resolved_timeout(self) -> Duration:
        if self.timeout is None:
            raise RuntimeError("timeout is resolved by PipelineSettings validation")
        return self.timeout

    @property
    def capacity(self) -> int:
        """Requests the service can take at once at full scale."""
        return self.max_instances * self.concurrency


def _instance_rules(cpu: str, memory: str, app_cpu: str, app_memory: str) -> Iterator[Problem]:
    """Both containers' limits together within one instance's (container.MAX_INSTANCE_*)."""
    total_cpu = millicpu(cpu) + millicpu(app_cpu)
    if total_cpu > MAX_INSTANCE_MILLICPU:
        yield (
            ("app", "cpu"),
            f"plus the handler's cpu ({cpu!r}) must be <= {MAX_INSTANCE_MILLICPU // 1000} vCPU,"
            f" Cloud Run's limit per instance (is {total_cpu / 1000:g})",
            app_cpu,
        )
    total_memory = memory_bytes(memory) + memory_bytes(app_memory)
    if total_memory > MAX_INSTANCE_MEMORY:
        yield (
            ("app", "memory"),
            f"plus the handler's memory ({memory!r}) must be <= {size_text(MAX_INSTANCE_MEMORY)},"
            f" Cloud Run's limit per instance (is {size_text(total_memory)})",
            app_memory,
        )
