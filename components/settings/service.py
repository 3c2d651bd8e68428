"""Settings of the Cloud Run service that handles a pipeline's tasks, with Cloud Run's limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from docker_image.reference import InvalidReference, Reference
from pydantic import AfterValidator, Field

from ..durations import Duration
from .validation import (
    INVALID,
    Problem,
    Settings,
    duration_within,
    fail,
    known,
    matching,
    within,
)

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
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", *PIPELINE_ENV})

# --- CPU and memory (run/docs/configuring/services/cpu, .../services/memory-limits) ----------
# vCPU: any value from 0.08 to 1 in steps of 0.001, or a whole 1, 2, 4, 6 or 8. Held in
# millicpu; written as a decimal ("0.5", "2") or in millicpu ("500m"), as Cloud Run takes.
MIN_FRACTIONAL_MILLICPU = 80
WHOLE_CPUS = (1, 2, 4, 6, 8)
_CPU = re.compile(r"(\d+(?:\.\d{1,3})?)|(\d+)m")
CPU_ALLOWED = "0.08..1 in steps of 0.001 (e.g. '0.5' or '500m'), or '1', '2', '4', '6', '8'"

MI, GI = 2**20, 2**30
# Memory: a number and a unit (k/K, M, G decimal; Ki, Mi, Gi binary); 128Mi (first
# generation; 512Mi for the second) to 32Gi.
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(k|K|M|G|Ki|Mi|Gi)")
_UNIT_BYTES = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": MI, "Gi": GI}
MIN_MEMORY, MAX_MEMORY = 128 * MI, 32 * GI
# Memory each vCPU allows (the "vCPU and memory" table): (up to millicpu, min, max).
# Below 1 vCPU: more than 512Mi needs 0.5 vCPU, more than 1Gi needs 1 vCPU.
CPU_MEMORY = (
    (499, MIN_MEMORY, 512 * MI),
    (999, MIN_MEMORY, 1 * GI),
    (1000, MIN_MEMORY, 4 * GI),
    (2000, MIN_MEMORY, 8 * GI),
    (4000, 2 * GI, 16 * GI),
    (6000, 4 * GI, 24 * GI),
    (8000, 4 * GI, 32 * GI),
)


def millicpu(text: str) -> int:
    """'0.5' -> 500, '500m' -> 500, '2' -> 2000; ValueError names what is allowed."""
    match = _CPU.fullmatch(text)
    if match is None:
        raise ValueError
    value = int(Decimal(match.group(1)) * 1000) if match.group(1) else int(match.group(2))
    if not (MIN_FRACTIONAL_MILLICPU <= value <= 1000 or value in [c * 1000 for c in WHOLE_CPUS]):
        raise ValueError
    return value


def memory_bytes(text: str) -> int:
    match = _MEMORY.fullmatch(text)
    if match is None:
        raise ValueError
    try:
        size = Decimal(match.group(1)) * _UNIT_BYTES[match.group(2)]
    except InvalidOperation:
        raise ValueError from None
    if size != size.to_integral_value():
        raise ValueError
    return int(size)


def _size(value: int) -> str:
    return f"{value // GI}Gi" if value % GI == 0 else f"{value // MI}Mi"


def _cpu(value: str) -> str:
    try:
        millicpu(value)
    except ValueError:
        raise fail(f"must be {CPU_ALLOWED}") from None
    return value


def _memory(value: str) -> str:
    try:
        size = memory_bytes(value)
    except ValueError:
        raise fail(
            "must be a size such as '512Mi' or '2Gi' (units k, K, M, G, Ki, Mi, Gi)"
        ) from None
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise fail(f"must be >= {_size(MIN_MEMORY)} and <= {_size(MAX_MEMORY)}")
    return value


def _image(value: str) -> str:
    # Cloud Run takes references in the grammar of github.com/distribution/reference
    # (reference.go): NAME[:TAG][@DIGEST], lowercase path components, repository <= 255.
    try:
        Reference.parse(value)
    except InvalidReference as error:
        raise fail(
            f"must be a container image reference REGISTRY/PATH[:TAG][@sha256:DIGEST] ({error})"
        ) from None
    return value


EnvName = Annotated[
    str,
    matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
]
SecretRef = Annotated[
    str,
    matching(
        r"[A-Za-z0-9_-]{1,255}:(?:latest|[1-9][0-9]*)",
        "'SECRET:VERSION' with VERSION 'latest' or a number, e.g. 'api-key:latest'",
    ),
]


class ServiceSettings(Settings):
    """The Cloud Run service that handles the pipeline's tasks."""

    image: Annotated[str, AfterValidator(_image)]
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
    cpu: Annotated[str, AfterValidator(_cpu)] = "1"
    """vCPUs as a string: `"0.08"`..`"1"` in steps of 0.001 (or millicpu, `"500m"`), or `"1"`,
    `"2"`, `"4"`, `"6"`, `"8"`; below 1 vCPU `concurrency` must be 1."""
    memory: Annotated[str, AfterValidator(_memory)] = "512Mi"
    """A number and `k`/`K`/`M`/`G`/`Ki`/`Mi`/`Gi`, `128Mi`..`32Gi`, within what the cpu allows: <
    0.5 vCPU up to 512Mi, < 1 up to 1Gi, 1 up to 4Gi, 2 up to 8Gi, 4: 2-16Gi, 6: 4-24Gi, 8:
    4-32Gi."""
    env: dict[EnvName, str] = Field(default_factory=dict)
    """Environment variables (plain text in state): names `[A-Za-z_][A-Za-z0-9_]*`, not
    `PORT`/`K_*` nor the `TASK_*` variables the stack sets for the handler."""
    secrets: dict[EnvName, SecretRef] = Field(default_factory=dict)
    """`ENV: "SECRET:VERSION"` (version `latest` or a number) from Secret Manager in the same
    project; not also in `env`."""

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
        if known(view.cpu, view.memory):
            yield from _cpu_memory_rules(view.cpu, view.memory, view.concurrency)

    @property
    def resolved_timeout(self) -> Duration:
        if self.timeout is None:
            raise RuntimeError("timeout is resolved by PipelineSettings validation")
        return self.timeout

    @property
    def capacity(self) -> int:
        """Requests the service can take at once at full scale."""
        return self.max_instances * self.concurrency


def _cpu_memory_rules(cpu: str, memory: str, concurrency: Any) -> Iterator[Problem]:
    """Cloud Run's vCPU/memory pairs, and what a fraction of a vCPU implies."""
    milli, size = millicpu(cpu), memory_bytes(memory)
    _, low, high = next(row for row in CPU_MEMORY if milli <= row[0])
    if not low <= size <= high:
        yield (
            ("memory",),
            f"must be >= {_size(low)} and <= {_size(high)} with cpu {cpu!r}"
            " (Cloud Run's vCPU and memory table)",
            memory,
        )
    if milli < 1000 and known(concurrency) and concurrency != 1:
        yield (
            ("concurrency",),
            f"must be 1 with less than 1 vCPU (cpu {cpu!r}): Cloud Run's rule for fractional CPU",
            concurrency,
        )
