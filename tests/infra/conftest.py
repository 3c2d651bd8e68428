"""Run the real program under mocks, from stack files or from config built in a test."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plan.recorder import Recording, run_program

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml")
)

PROJECT = "acme-tasks-test"
INVOKER_EMAIL = "orders-invoker@acme-tasks-test.iam.gserviceaccount.com"
RUNTIME_EMAIL = "orders-runtime@acme-tasks-test.iam.gserviceaccount.com"
ENQUEUER = "serviceAccount:api@acme-tasks-test.iam.gserviceaccount.com"


def base_config() -> dict[str, Any]:
    """A small valid stack config: one pipeline, mostly defaults."""
    return {
        "gcp:project": PROJECT,
        "gcp:region": "us-central1",
        "cloudrun-tasks:pipelines": {
            "orders": {
                "service": {"image": "us-docker.pkg.dev/cloudrun/container/hello"},
                "enqueuers": [ENQUEUER],
            }
        },
    }


def record(config: dict[str, Any], *, stack: str = "test", preview: bool = False) -> Recording:
    return run_program(ROOT, stack, copy.deepcopy(config), preview=preview)


@pytest.fixture(scope="session")
def stack_recordings() -> dict[str, Recording]:
    return {stack: run_program(ROOT, stack) for stack in STACKS}


@pytest.fixture
def recorded() -> Callable[..., Recording]:
    return record
