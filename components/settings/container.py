"""What every container of the service is checked against: image references, vCPU and memory
(Cloud Run's table), environment variable names and Secret Manager references. The
handler's settings (service.py) and the app's (app.py) share them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from docker_image.reference import InvalidReference, Reference

from .validation import Problem, fail, known, matching

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

# What one instance has, whatever its containers: at most 8 vCPU and 32 GiB of memory
# (run/quotas, "Resource limits": "Maximum number of vCPU 8 per container instance",
# "Maximum memory size, in GiB 32 per container instance"). With an app beside the
# handler, their cpu and memory limits add up against these.
MAX_INSTANCE_MILLICPU = 8000
MAX_INSTANCE_MEMORY = MAX_MEMORY


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


def size_text(value: int) -> str:
    return f"{value // GI}Gi" if value % GI == 0 else f"{value // MI}Mi"


def check_cpu(value: str) -> str:
    try:
        millicpu(value)
    except ValueError:
        raise fail(f"must be {CPU_ALLOWED}") from None
    return value


def check_memory(value: str) -> str:
    try:
        size = memory_bytes(value)
    except ValueError:
        raise fail(
            "must be a size such as '512Mi' or '2Gi' (units k, K, M, G, Ki, Mi, Gi)"
        ) from None
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise fail(f"must be >= {size_text(MIN_MEMORY)} and <= {size_text(MAX_MEMORY)}")
    return value


def check_image(value: str) -> str:
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


def cpu_memory_rules(cpu: str, memory: str, concurrency: Any = None) -> Iterator[Problem]:
    """Cloud Run's vCPU/memory pairs of one container, and what a fraction of a vCPU implies
    for the ingress container's CONCURRENCY (None: a sidecar, which takes no requests)."""
    milli, size = millicpu(cpu), memory_bytes(memory)
    _, low, high = next(row for row in CPU_MEMORY if milli <= row[0])
    if not low <= size <= high:
        yield (
            ("memory",),
            f"must be >= {size_text(low)} and <= {size_text(high)} with cpu {cpu!r}"
            " (Cloud Run's vCPU and memory table)",
            memory,
        )
    if milli < 1000 and concurrency is not None and known(concurrency) and concurrency != 1:
        yield (
            ("concurrency",),
            f"must be 1 with less than 1 vCPU (cpu {cpu!r}): Cloud Run's rule for fractional CPU",
            concurrency,
        )
