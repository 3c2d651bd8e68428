"""Where pipelines come from: stack output via the Pulumi CLI, a file of it, or the env."""

import json
import os
import stat
from pathlib import Path

import pytest

from taskclient import UsageError, load_env, load_file, load_stack
from taskclient.pipelines import select
from tests.app.helpers import pipeline_output

QUEUE = "projects/p/locations/europe-west1/queues/orders"
OUTPUT = {"orders": pipeline_output(QUEUE, "https://orders-xyz-ew.a.run.app")}


def test_file_of_stack_output(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps(OUTPUT))
    orders = select(load_file(path), "orders")
    assert orders.queue == QUEUE
    assert orders.service_url == "https://orders-xyz-ew.a.run.app"
    assert orders.invoker_service_account.startswith("orders-invoker@")
    assert str(orders.dispatch_deadline) == "600s"


def test_env_variable() -> None:
    pipelines = load_env({"TASKS_PIPELINES": json.dumps(OUTPUT)})
    assert list(pipelines) == ["orders"]


def test_stack_reads_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `pulumi` on PATH that records its arguments and prints the output.
    fake = tmp_path / "pulumi"
    record = tmp_path / "args"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {record}\ncat <<'EOF'\n{json.dumps(OUTPUT)}\nEOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    pipelines = load_stack("dev")
    assert pipelines["orders"].queue == QUEUE
    assert record.read_text().split() == [
        "stack",
        "output",
        "pipelines",
        "--json",
        "--stack",
        "dev",
    ]


def test_stack_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\necho 'error: no stack named dev found' >&2\nexit 255\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        UsageError,
        match=r"^--stack dev: .* no stack named dev found; `pulumi stack ls` did not list",
    ):
        load_stack("dev")


def test_missing_pulumi_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="pulumi CLI is not on PATH; pass --outputs FILE"):
        load_stack("dev")


def test_unknown_pipeline_lists_known_ones() -> None:
    pipelines = load_env({"TASKS_PIPELINES": json.dumps(OUTPUT)})
    with pytest.raises(UsageError, match=r"no pipeline 'emails'; this stack has: orders"):
        select(pipelines, "emails")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a non-empty JSON object"),
        ("{}", "expected a non-empty JSON object"),
        (json.dumps({"orders": {**OUTPUT["orders"], "serviceUrl": None}}), "serviceUrl"),
        (json.dumps({"orders": {**OUTPUT["orders"], "queue": "orders"}}), "'orders', queue"),
        (json.dumps({"orders": {**OUTPUT["orders"], "dispatchDeadline": "2h"}}), "dispatch"),
        (json.dumps({"orders": {**OUTPUT["orders"], "dispatchDeadline": "soon"}}), "dispatch"),
    ],
)
def test_bad_outputs_name_source_and_field(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_env({"TASKS_PIPELINES": text})
    assert str(caught.value).startswith("TASKS_PIPELINES: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_no_source_at_all() -> None:
    with pytest.raises(UsageError, match="pass --stack NAME or --outputs FILE, or set"):
        load_env({})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--outputs: cannot read .*missing.json"):
        load_file(tmp_path / "missing.json")
