"""The issue the drift workflow writes (plan/drift.py), offline: from the JSON `pulumi
preview --refresh --expect-no-changes --json` prints (pulumi/pulumi pkg/display/json.go,
`PreviewDigest`), built here from the dev stack's own resources under mocks, with the cloud
changed behind the program's back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from plan import drift
from plan.comment import LIMIT
from plan.recorder import RecordedResource, run_program
from tests.plan.conftest import ROOT

STACK_URN = "urn:pulumi:dev::cloudrun-tasks::pulumi:pulumi:Stack::cloudrun-tasks-dev"


def state(r: RecordedResource, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A resource as the engine's JSON shows it (apitype.ResourceV3)."""
    return {
        "urn": r.urn,
        "custom": r.custom,
        "type": r.type,
        "inputs": copy.deepcopy(dict(r.inputs) if inputs is None else inputs),
        "parent": r.parent,
        "protect": r.protect,
    }


@pytest.fixture(scope="module")
def resources() -> list[RecordedResource]:
    return [r for r in run_program(ROOT, "dev").resources if r.custom]


def same(resources: list[RecordedResource]) -> dict[str, Any]:
    steps = [{"op": "same", "urn": STACK_URN}]
    steps += [
        {"op": "same", "urn": r.urn, "oldState": state(r), "newState": state(r)} for r in resources
    ]
    return {"steps": steps, "changeSummary": {"same": len(steps)}}


def of_type(resources: list[RecordedResource], type_: str) -> RecordedResource:
    return next(r for r in resources if r.type == type_)


def drifted(resources: list[RecordedResource]) -> dict[str, Any]:
    """Someone lowered the queue's attempts and moved a job's schedule in the console, and
    deleted the dead-letter subscription; the job's region differs (ForceNew)."""
    preview = same(resources)
    queue = of_type(resources, "gcp:cloudtasks/queue:Queue")
    job = of_type(resources, "gcp:cloudscheduler/job:Job")
    subscription = of_type(resources, "gcp:pubsub/subscription:Subscription")
    by_urn = {step["urn"]: step for step in preview["steps"]}
    cloud_queue = copy.deepcopy(dict(queue.inputs))
    cloud_queue["retryConfig"]["maxAttempts"] = 3
    cloud_queue["__defaults"] = []
    by_urn[queue.urn].update(op="update", oldState=state(queue, cloud_queue))
    cloud_job = {
        **copy.deepcopy(dict(job.inputs)),
        "schedule": "0 4 * * *",
        "region": "europe-west1",
    }
    by_urn[job.urn].update(op="replace", oldState=state(job, cloud_job))
    program_job = by_urn[job.urn]["newState"]
    program_job["inputs"]["httpTarget"]["uri"] = drift.ENGINE_UNKNOWN
    del by_urn[subscription.urn]["oldState"]
    by_urn[subscription.urn]["op"] = "create"
    return preview


def run(tmp_path: Path, preview: Any, raw: str | None = None) -> tuple[int, str, str]:
    source = tmp_path / "preview.json"
    source.write_text(raw if raw is not None else json.dumps(preview))
    body, out = tmp_path / "body.md", tmp_path / "github-output"
    code = drift.main(
        [
            str(source),
            "--stack",
            "dev",
            "--run-url",
            "https://run",
            "-o",
            str(body),
            "--github-output",
            str(out),
        ]
    )
    return (
        code,
        body.read_text() if body.exists() else "",
        out.read_text() if out.exists() else "",
    )


def test_a_clean_check_reports_no_drift_and_writes_no_body(
    tmp_path: Path, resources: list[RecordedResource]
) -> None:
    code, body, out = run(tmp_path, same(resources))
    assert code == 0
    assert body == ""
    assert "drift=false" in out.splitlines()


def test_drift_is_an_issue_body_with_the_readable_diff(
    tmp_path: Path, resources: list[RecordedResource]
) -> None:
    code, body, out = run(tmp_path, drifted(resources))
    assert code == 0
    assert out.splitlines() == [
        "drift=true",
        "title=Drift: stack dev differs from the program",
    ]
    lines = body.splitlines()
    assert lines[0] == drift.marker("dev")
    assert "(create, replace, update)" in lines[1]
    queue = of_type(resources, "gcp:cloudtasks/queue:Queue")
    job = of_type(resources, "gcp:cloudscheduler/job:Job")
    subscription = of_type(resources, "gcp:pubsub/subscription:Subscription")
    # From what the cloud has to what the program declares, one line per setting.
    assert f"  ~ cloudtasks.Queue {queue.name}" in lines
    assert "      retryConfig.maxAttempts: 3 -> 5" in lines
    assert f'      schedule: "0 4 * * *" -> "{job.inputs["schedule"]}"' in lines
    # The region forces a replacement: flagged first, with the provider's field.
    replace = [line for line in lines if line.startswith("!! REPLACE")]
    assert replace == [
        f"!! REPLACE cloudscheduler.Job {job.name}: region (ForceNew region) changed -- deleted"
        " and re-created; lost: " + replace[0].split("lost: ", 1)[1]
    ]
    assert f"  + pubsub.Subscription {subscription.name}" in lines
    # Engine unknowns read as the plan's; the bridge's bookkeeping is not a change.
    [uri] = [line for line in lines if line.startswith("      httpTarget.uri: ")]
    assert uri.endswith(" -> <unknown until deployed>")
    assert "__defaults" not in body
    assert lines[-1] == "Run: https://run"
    assert "1 added, 0 removed, 0 moved, 2 changed, 1 replaced." in lines


def test_secrets_stay_blinded(tmp_path: Path, resources: list[RecordedResource]) -> None:
    """The engine's JSON shows secrets as [secret] (no --show-secrets): so does the body."""
    preview = drifted(resources)
    service = of_type(resources, "gcp:cloudrunv2/service:Service")
    step = next(s for s in preview["steps"] if s["urn"] == service.urn)
    old = copy.deepcopy(step["newState"])
    old["inputs"]["labels"] = "[secret]"
    step.update(op="update", oldState=old)
    step["newState"]["inputs"]["labels"] = "[secret]"
    _, body, _ = run(tmp_path, preview)
    assert f"cloudrunv2.Service {service.name}" not in body  # [secret] == [secret]: no change


def test_a_huge_drift_fits_githubs_limit(tmp_path: Path, resources: list[RecordedResource]) -> None:
    preview = drifted(resources)
    queue = of_type(resources, "gcp:cloudtasks/queue:Queue")
    step = next(s for s in preview["steps"] if s["urn"] == queue.urn)
    step["oldState"]["inputs"]["labels"] = {f"k{i}": "x" * 60 for i in range(3000)}
    _, body, _ = run(tmp_path, preview)
    assert len(body.encode()) <= LIMIT
    assert "more changed settings" in body
    assert body.splitlines()[0] == drift.marker("dev")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "not JSON"),
        ("error: getting secrets manager: 403", "not JSON"),
        ('{"steps": {}}', "no `steps` list"),
        (
            '{"steps": [], "diagnostics": [{"severity": "error", "message": "403 Forbidden"}]}',
            "403 Forbidden",
        ),
    ],
)
def test_a_failed_preview_is_an_error_not_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: str, why: str
) -> None:
    code, body, out = run(tmp_path, None, raw)
    assert code == 1
    assert out == "" and body == ""
    assert why in capsys.readouterr().err
