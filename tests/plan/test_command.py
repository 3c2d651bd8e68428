"""`python -m plan`: formats, files, and bad input as one clear line per problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plan import document
from plan.__main__ import main
from plan.stackfile import read_stack_file
from tests.plan.conftest import DEV_CUSTOM_RESOURCES, ROOT, config, pipeline, write_stack_file


def test_default_is_the_readable_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"Offline plan of stack dev (cloudrun-tasks): {DEV_CUSTOM_RESOURCES} resources in 16"
        " components"
    )
    assert "├─ TaskPipeline orders" in out
    assert "└─ TaskPipeline thumbnails" in out


def test_json_to_a_file_is_the_document(tmp_path: Path, dev_plan: dict[str, Any]) -> None:
    target = tmp_path / "plan.json"
    assert main(["--stack", "dev", "--format", "json", "--output", str(target)]) == 0
    assert target.read_text() == document.dumps(dev_plan)


def test_mermaid_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "staging", "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart LR\n")
    assert "cloudtasks.Queue<br/>reports" in out


def test_markdown_with_diff_heads_the_comment_with_the_changes(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    assert main(["--stack", "dev", "--format", "json", "-o", str(base)]) == 0
    values = read_stack_file(ROOT / "Pulumi.dev.yaml").config
    values["cloudrun-tasks:pipelines"]["orders"]["location"] = "europe-west1"
    stack_file = write_stack_file(tmp_path, values)
    target = tmp_path / "plan.md"
    argv = ["--stack", "dev", "--stack-file", str(stack_file), "--format", "markdown"]
    assert main([*argv, "--diff", str(base), "-o", str(target)]) == 0
    text = target.read_text()
    sections = ["## Offline plan: stack `dev`", "### Policy", "### Changes"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert "!! REPLACE cloudtasks.Queue orders: location (ForceNew location) changed --" in text
    # The changes alone: the full tree and graph are the plan without --diff; the last
    # line gives the head plan's size, counted here from its document.
    assert "### Resources" not in text and "flowchart" not in text
    head = tmp_path / "head.json"
    assert main([*argv, "--format", "json", "-o", str(head)]) == 0
    planned = document.resources(json.loads(head.read_text())).values()
    custom = sum(not r.component for r in planned)
    components = sum(r.component for r in planned)
    assert custom > components > 0
    assert text.endswith(
        f"Stack dev plans {custom} resources in {components} components (the full tree and"
        " graph: `make plan STACK=dev FORMAT=markdown`).\n"
    )


def test_markdown_without_diff_is_the_full_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev", "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    sections = ["## Offline plan: stack `dev`", "### Policy", "### Resources", "### Graph"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert "```mermaid\nflowchart LR\n" in text


PLACEHOLDER_MESSAGE = "whose digest is a placeholder, not an image's"


def test_prod_plan_fails_on_the_placeholder_digest_and_says_how_to_fix_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--stack", "prod"]) == 3
    captured = capsys.readouterr()
    verdicts = captured.out[captured.out.index("Policy pack") :].splitlines()
    assert verdicts[0].endswith("2 mandatory, 0 advisory violations")
    for service, line in zip(("orders", "reports"), verdicts[1:3], strict=True):
        assert line.startswith(
            f"  MANDATORY cloudrun-image-pinned-by-digest [cloudrunv2.Service {service}]:"
        )
        assert PLACEHOLDER_MESSAGE in line and "Pin the image's real digest" in line
    # The way out, for the module and for make (whose variable is POLICY, not a flag).
    assert verdicts[3].endswith(
        "or see the plan anyway with --policy report (`make plan POLICY=report`)."
    )
    assert "would stop here" in captured.err


def test_policy_report_shows_violations_without_failing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--stack", "prod", "--policy", "report"]) == 0
    assert PLACEHOLDER_MESSAGE in capsys.readouterr().out
    assert main(["--stack", "prod", "--policy", "off"]) == 0
    assert "Policy pack" not in capsys.readouterr().out


def test_json_plan_is_written_and_verdicts_go_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prod_plan: dict[str, Any]
) -> None:
    target = tmp_path / "plan.json"
    assert main(["--stack", "prod", "--format", "json", "-o", str(target)]) == 3
    assert target.read_text() == document.dumps(prod_plan)
    assert PLACEHOLDER_MESSAGE in capsys.readouterr().err


def test_an_untagged_image_in_prod_fails_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = read_stack_file(ROOT / "Pulumi.prod.yaml").config
    for settings in values["cloudrun-tasks:pipelines"].values():
        settings["service"]["image"] = "us-docker.pkg.dev/cloudrun/container/hello"
    stack_file = write_stack_file(tmp_path, values)
    assert main(["--stack", "prod", "--stack-file", str(stack_file)]) == 3
    assert "which is not pinned by digest" in capsys.readouterr().out


def test_a_released_prod_plan_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = read_stack_file(ROOT / "Pulumi.prod.yaml").config
    for settings in values["cloudrun-tasks:pipelines"].values():
        repository = settings["service"]["image"].split("@")[0]
        settings["service"]["image"] = f"{repository}@sha256:{'5f1d2c3b' * 8}"
    stack_file = write_stack_file(tmp_path, values)
    assert main(["--stack", "prod", "--stack-file", str(stack_file)]) == 0
    assert "0 mandatory, 0 advisory violations" in capsys.readouterr().out


def test_diff_against_itself_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    assert main(["--stack", "prod", "--format", "json", "-o", str(base), "--policy", "off"]) == 0
    assert main(["--stack", "prod", "--diff", str(base), "--policy", "off"]) == 0
    assert capsys.readouterr().out == f"Plan changes from {base} to this plan: none.\n"


def test_bad_config_lists_every_problem_by_key_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = pipeline()
    bad["queue"]["maxAttempts"] = 0
    bad["service"]["cpu"] = 3
    values = {**config(orders=bad), "gcp:project": "X"}
    stack_file = write_stack_file(tmp_path, values)
    assert main(["--stack", "dev", "--stack-file", str(stack_file)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: invalid stack config (3 problems):",
        '  gcp:project: must be a project id (6..30 lowercase letters, digits, hyphens), got "X"',
        "  pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1 and"
        " <= 2147483647, got 0",
        "  pipelines.orders.service.cpu: must be a string, got 3",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--stack", "nope"],
            f"error: no stack file {ROOT}/Pulumi.nope.yaml (stacks: dev, prod, staging)",
        ),
        (
            ["--stack", "dev", "--diff", "/nonexistent.json"],
            "error: /nonexistent.json: cannot read",
        ),
    ],
)
def test_missing_files_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_malformed_stack_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text("config: [1, 2]\n")
    assert main(["--stack", "dev", "--stack-file", str(stack_file)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {stack_file}: `config:` must be a mapping of key: value\n"
    )
    stack_file.write_text("config:\n  gcp:project: [\n")
    assert main(["--stack", "dev", "--stack-file", str(stack_file)]) == 2
    assert capsys.readouterr().err == f"error: {stack_file}: not valid YAML (line 3)\n"


def test_diff_only_combines_with_readable_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--stack", "dev", "--format", "json", "--diff", "base.json"])
    assert exit_.value.code == 2
    assert "--diff: only with --format text or markdown" in capsys.readouterr().err


def test_the_command_reports_bad_config_without_a_traceback(tmp_path: Path) -> None:
    stack_file = write_stack_file(tmp_path, {"gcp:project": "acme-tasks-plan"})
    result = subprocess.run(
        [sys.executable, "-m", "plan", "--stack", "dev", "--stack-file", str(stack_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("error: invalid stack config (1 problem):\n  pipelines: is required\n")


def test_the_consumer_example_plans_from_a_checkout() -> None:
    """examples/consumer/ imports `cloudrun_tasks`, which a checkout's .venv does not have
    installed: the plan gives it this checkout's components (before: ModuleNotFoundError,
    with a traceback)."""
    result = subprocess.run(
        [sys.executable, "-m", "plan", "--program-dir", "examples/consumer", "--stack", "dev"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "TaskPipeline invoices" in result.stdout and "TaskPipeline thumbnails" in result.stdout
    assert "Traceback" not in result.stderr
