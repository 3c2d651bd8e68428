"""What every container is checked against (components/settings/container.py): Cloud Run's
vCPU values and memory sizes, the vCPU/memory table at each row's edges, image references
and variable names; through a pipeline's service, validated without running the program."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import ConfigError, parse_pipeline
from components.settings.container import memory_bytes, millicpu, size_text

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
CPU_HELP = "must be 0.08..1 in steps of 0.001 (e.g. '0.5' or '500m'), or '1', '2', '4', '6', '8'"
MEMORY_HELP = "must be a size such as '512Mi' or '2Gi' (units k, K, M, G, Ki, Mi, Gi)"


def problems(**service: Any) -> list[str] | None:
    try:
        parse_pipeline({"service": {"image": IMAGE, "concurrency": 1, **service}})
    except ConfigError as error:
        return error.problems
    return None


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("0.08", 80),
        ("0.5", 500),
        ("0.999", 999),
        ("1", 1000),
        ("1.0", 1000),
        ("2", 2000),
        ("8", 8000),
        ("80m", 80),
        ("500m", 500),
        ("1000m", 1000),
        ("4000m", 4000),
    ],
)
def test_vcpu_values_cloud_run_takes(text: str, milli: int) -> None:
    assert millicpu(text) == milli
    assert problems(cpu=text, memory="4Gi" if milli >= 4000 else "512Mi") is None


@pytest.mark.parametrize(
    "text",
    [
        "0.079",
        "79m",
        "0.0805",
        "1.001",
        "1001m",
        "1.5",
        "1500m",
        "3",
        "5",
        "7",
        "10",
        "16",
        "-1",
        "1e0",
        " 1",
        "m",
    ],
)
def test_other_vcpu_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        millicpu(text)
    assert problems(cpu=text) == [f'service.cpu: {CPU_HELP}, got "{text}"']


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("128Mi", 128 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("512M", 512 * 10**6),
        ("1G", 10**9),
        ("200000k", 200_000_000),
        ("200000K", 200_000_000),
        ("131072Ki", 2**27),
        ("0.5k", 500),
    ],
)
def test_memory_sizes_in_every_unit(text: str, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize("text", ["512MB", "512", "Mi", "1.0001k", "1.5 Gi", "1e3Mi", "-1Gi"])
def test_other_memory_texts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        memory_bytes(text)
    assert problems(memory=text) == [f'service.memory: {MEMORY_HELP}, got "{text}"']


def test_memory_from_128mi_to_32gi() -> None:
    assert problems(memory="128Mi") is None
    assert problems(cpu="8", memory="32Gi") is None
    for text in ("127Mi", "134217727k"):
        assert problems(memory=text) == [
            f'service.memory: must be >= 128Mi and <= 32Gi, got "{text}"'
        ]
    assert problems(cpu="8", memory="32769Mi") == [
        'service.memory: must be >= 128Mi and <= 32Gi, got "32769Mi"'
    ]


def test_sizes_are_shown_in_gi_when_whole_else_in_mi() -> None:
    assert [size_text(s) for s in (2**30, 2**31, 512 * 2**20, 1536 * 2**20)] == [
        "1Gi",
        "2Gi",
        "512Mi",
        "1536Mi",
    ]


@pytest.mark.parametrize(
    ("cpu", "fits", "low", "high"),
    [
        # (cpu, the largest memory it takes, the row's bounds as the message says them)
        ("0.08", "512Mi", "128Mi", "512Mi"),
        ("0.499", "512Mi", "128Mi", "512Mi"),
        ("0.5", "1Gi", "128Mi", "1Gi"),
        ("0.999", "1Gi", "128Mi", "1Gi"),
        ("1", "4Gi", "128Mi", "4Gi"),
        ("2", "8Gi", "128Mi", "8Gi"),
        ("4", "16Gi", "2Gi", "16Gi"),
        ("6", "24Gi", "4Gi", "24Gi"),
    ],
)
def test_each_row_of_the_vcpu_memory_table_at_its_top(
    cpu: str, fits: str, low: str, high: str
) -> None:
    assert problems(cpu=cpu, memory=fits) is None
    over = f"{memory_bytes(fits) // 2**20 + 1}Mi"
    assert problems(cpu=cpu, memory=over) == [
        f"service.memory: must be >= {low} and <= {high} with cpu {cpu!r} (Cloud Run's vCPU"
        f' and memory table), got "{over}"'
    ]


@pytest.mark.parametrize(("cpu", "least"), [("4", "2Gi"), ("6", "4Gi"), ("8", "4Gi")])
def test_large_vcpu_rows_have_a_least_memory(cpu: str, least: str) -> None:
    assert problems(cpu=cpu, memory=least) is None
    under = f"{memory_bytes(least) // 2**20 - 1}Mi"
    [line] = problems(cpu=cpu, memory=under) or [""]
    assert line.startswith(f"service.memory: must be >= {least} and <= ")


def test_a_fraction_of_a_vcpu_needs_concurrency_one() -> None:
    assert problems(cpu="0.999", concurrency=1) is None
    assert problems(cpu="999m", concurrency=2) == [
        "service.concurrency: must be 1 with less than 1 vCPU (cpu '999m'): Cloud Run's rule"
        " for fractional CPU, got 2"
    ]
    assert problems(cpu="1", concurrency=2) is None
    # concurrency bad on its own: said once, by its own bound.
    assert problems(cpu="0.5", concurrency=0) == [
        "service.concurrency: must be >= 1 and <= 1000, got 0"
    ]


def test_a_bad_image_names_the_grammar_and_the_parsers_reason() -> None:
    assert problems(image="Not An Image") == [
        "service.image: must be a container image reference"
        ' REGISTRY/PATH[:TAG][@sha256:DIGEST] (invalid reference format), got "Not An Image"'
    ]
    digest = "sha256:" + "a" * 64
    assert problems(image=f"europe-docker.pkg.dev/acme/app:1.0@{digest}") is None


@pytest.mark.parametrize(("section", "value"), [("env", "x"), ("secrets", "s:1")])
def test_variable_names_and_secret_references(section: str, value: str) -> None:
    assert problems(**{section: {"_OK1": value}}) is None
    assert problems(**{section: {"1BAD": value, "A-B": value}}) == [
        f"service.{section}.1BAD: must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*),"
        ' got "1BAD"',
        f"service.{section}.A-B: must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*),"
        ' got "A-B"',
    ]


@pytest.mark.parametrize("ref", ["api-key:latest", "a_B-9:1", "k:10", "x" * 255 + ":2"])
def test_secret_references_taken(ref: str) -> None:
    assert problems(secrets={"K": ref}) is None


@pytest.mark.parametrize("ref", ["api-key", "api-key:0", "api-key:01", "a.b:1", "x" * 256 + ":1"])
def test_secret_references_refused(ref: str) -> None:
    assert problems(secrets={"K": ref}) == [
        "service.secrets.K: must be 'SECRET:VERSION' with VERSION 'latest' or a number, e.g."
        f" 'api-key:latest', got \"{ref}\""
    ]
