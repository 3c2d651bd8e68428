"""The JSON plan: complete, sorted, byte-stable, keyed the same for every stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plan import document
from plan.recorder import UNKNOWN, run_program
from tests.plan.conftest import ROOT, config, plan_of

QUEUE_KEY = "cloudrun-tasks:index:TaskQueue$gcp:cloudtasks/queue:Queue::orders"
SERVICE_KEY = "cloudrun-tasks:index:TaskService$gcp:cloudrunv2/service:Service::orders"


def test_two_runs_give_byte_identical_json() -> None:
    first = document.dumps(plan_of(config()))
    second = document.dumps(plan_of(config()))
    assert first == second
    assert first.endswith("}\n")


def test_json_is_sorted_at_every_level(dev_plan: dict[str, Any]) -> None:
    text = document.dumps(dev_plan)
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_document_holds_every_recorded_resource_with_its_graph() -> None:
    recording = run_program(ROOT, "dev", preview=True)
    plan = document.build(recording)
    assert sorted(plan["resources"]) == sorted(
        document.resource_key(r.urn) for r in recording.resources
    )
    queue = plan["resources"][QUEUE_KEY]
    assert queue["type"] == "gcp:cloudtasks/queue:Queue"
    assert (
        queue["parent"]
        == "cloudrun-tasks:index:TaskPipeline$cloudrun-tasks:index:TaskQueue::orders"
    )
    assert queue["component"] is False
    assert SERVICE_KEY in queue["dependsOn"]
    assert SERVICE_KEY in queue["inputDependencies"]["httpTarget"]
    assert queue["inputs"]["rateLimits"] == {
        "maxConcurrentDispatches": 160,
        "maxDispatchesPerSecond": 5,
    }
    assert queue["inputs"]["httpTarget"]["oidcToken"]["serviceAccountEmail"] == UNKNOWN


def test_keys_do_not_depend_on_the_stack(
    dev_plan: dict[str, Any], prod_plan: dict[str, Any]
) -> None:
    assert QUEUE_KEY in dev_plan["resources"]
    assert QUEUE_KEY in prod_plan["resources"]
    assert dev_plan["resources"][QUEUE_KEY]["protect"] is False
    assert prod_plan["resources"][QUEUE_KEY]["protect"] is True


def test_whole_numbers_are_ints_and_fractions_stay(prod_plan: dict[str, Any]) -> None:
    queue = prod_plan["resources"][QUEUE_KEY]["inputs"]
    assert queue["retryConfig"]["maxAttempts"] == 20
    assert isinstance(queue["retryConfig"]["maxAttempts"], int)
    assert queue["stackdriverLoggingConfig"]["samplingRatio"] == 0.5


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ('{"resources": {}}', "not a plan written by `--format json`"),
        ("[]", "not a plan written by `--format json`"),
    ],
)
def test_load_refuses_files_that_are_not_plans(tmp_path: Any, content: str, reason: str) -> None:
    path = tmp_path / "base.json"
    path.write_text(content)
    with pytest.raises(document.PlanFileError, match=reason):
        document.load(str(path))


def test_load_reads_back_what_dumps_wrote(tmp_path: Any, dev_plan: dict[str, Any]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(document.dumps(dev_plan))
    assert document.load(str(path)) == dev_plan
