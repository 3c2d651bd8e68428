"""Plans of the real program, from config written in the test, run in-process under mocks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from plan import document
from plan.recorder import run_program

ROOT = Path(__file__).resolve().parents[2]
# What the plan of the dev stack file holds: orders, with a schedule and a payload bucket
# (45 resources in 11 components with the stack's own), and thumbnails, an app behind the
# handler (18 in 5: the app is a container of its service, no resource of its own).
# DEV_RESOURCES counts the 16 components too. A change to Pulumi.dev.yaml, or to what a
# pipeline registers (its 5 alert policies and claims-lost metric among them), changes
# these two and nothing else in the plan tests.
DEV_RESOURCES = 79
DEV_CUSTOM_RESOURCES = 63
PROJECT = "acme-tasks-plan"
ENQUEUER = "serviceAccount:api@acme-tasks-plan.iam.gserviceaccount.com"


def pipeline() -> dict[str, Any]:
    return {
        "dispatchDeadline": "600s",
        "service": {"image": "us-docker.pkg.dev/cloudrun/container/hello", "maxInstances": 2},
        "queue": {"maxDispatchesPerSecond": 5, "maxAttempts": 5, "maxRetryDuration": "600s"},
        "enqueuers": [ENQUEUER],
    }


def config(**pipelines: dict[str, Any]) -> dict[str, Any]:
    return {
        "gcp:project": PROJECT,
        "gcp:region": "us-central1",
        "cloudrun-tasks:pipelines": pipelines or {"orders": pipeline()},
    }


def plan_of(values: dict[str, Any], stack: str = "test") -> dict[str, Any]:
    return document.build(run_program(ROOT, stack, copy.deepcopy(values), preview=True))


def write_stack_file(directory: Path, values: dict[str, Any], name: str = "stack.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump({"config": values}))
    return path


@pytest.fixture(scope="session")
def dev_plan() -> dict[str, Any]:
    return document.build(run_program(ROOT, "dev", preview=True))


@pytest.fixture(scope="session")
def prod_plan() -> dict[str, Any]:
    return document.build(run_program(ROOT, "prod", preview=True))
