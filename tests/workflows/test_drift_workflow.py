"""The drift workflow (.github/workflows/drift.yml): who runs it with what rights, and its
two shell steps run here with stand-ins for `pulumi` and `gh` (the issue body itself:
tests/plan/test_drift.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.test_workflows import STACKS, WORKFLOWS, load

ROOT = WORKFLOWS.parents[1]
DRIFT = load("drift.yml")
RUN_URL = "https://github.com/acme/cloudrun-tasks/actions/runs/1"


def step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in DRIFT["jobs"][job]["steps"] if s.get("name") == name)


def test_it_runs_on_a_schedule_only_with_the_previewer_and_split_rights() -> None:
    assert set(DRIFT["on"]) == {"schedule"}
    assert DRIFT["permissions"] == {"contents": "read"}
    check, report = DRIFT["jobs"]["check"], DRIFT["jobs"]["report"]
    for job in (check, report):
        assert job["strategy"]["matrix"]["stack"] == STACKS
    # The read-only previewer's environment: never a deploy environment.
    assert check["environment"] == "${{ matrix.stack }}-preview"
    assert check["permissions"] == {"contents": "read", "id-token": "write"}
    # The job that writes issues can't get a cloud identity, nor read the code.
    assert report["permissions"] == {"issues": "write"}
    assert report["needs"] == "check"


def test_the_check_is_a_refresh_that_expects_no_changes_with_a_pinned_cli() -> None:
    run = step("check", "pulumi preview --refresh --expect-no-changes")["run"]
    command = " ".join(run.replace("\\\n", " ").split())
    assert 'pulumi preview --stack "$STACK" --refresh --expect-no-changes --json' in command
    assert "python -m plan.drift" in command
    cli = step("check", "Install the Pulumi CLI")
    stack_cli = load("pulumi-stack.yml")["jobs"]["pulumi"]["steps"]
    [pinned] = [
        s["with"]["pulumi-version"] for s in stack_cli if "pulumi/actions" in s.get("uses", "")
    ]
    assert cli["with"] == {"pulumi-version": pinned}
    assert "command" not in cli["with"]


def test_the_federation_admits_scheduled_runs() -> None:
    from tests.bootstrap.test_authority import bootstrap_module

    assert "schedule" in bootstrap_module("github_federation").GITHUB_EVENTS


# --- the two shell steps, run -------------------------------------------------------------


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_step(
    job: str, name: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return run_script(step(job, name)["run"], cwd, env)


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A step's shell script as the runner runs it, with CWD/bin (fakes) first on PATH."""
    full = {**os.environ, "PATH": f"{cwd / 'bin'}:{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


def checkout(root: Path) -> Path:
    """ROOT as a step sees the checkout: the plan package and the virtualenv, and bin/."""
    for name in ("plan", "components", ".venv"):
        (root / name).symlink_to(ROOT / name)
    (root / "bin").mkdir()
    return root


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return checkout(tmp_path)


def fake_pulumi(workdir: Path, preview: str, status: int) -> None:
    (workdir / "canned.json").write_text(preview)
    executable(
        workdir / "bin" / "pulumi",
        "#!/bin/bash\n"
        '[ "$1" = login ] && exit 0\n'
        f'cat "{workdir / "canned.json"}"\n'
        f"exit {status}\n",
    )


CHANGED = {
    "steps": [
        {
            "op": "update",
            "urn": "urn:pulumi:dev::cloudrun-tasks::gcp:pubsub/topic:Topic::t",
            "oldState": {
                "urn": "urn:pulumi:dev::cloudrun-tasks::gcp:pubsub/topic:Topic::t",
                "type": "gcp:pubsub/topic:Topic",
                "custom": True,
                "inputs": {"messageRetentionDuration": "600s"},
            },
            "newState": {
                "urn": "urn:pulumi:dev::cloudrun-tasks::gcp:pubsub/topic:Topic::t",
                "type": "gcp:pubsub/topic:Topic",
                "custom": True,
                "inputs": {"messageRetentionDuration": "86400s"},
            },
        }
    ]
}
CHECK = "pulumi preview --refresh --expect-no-changes"
CHECK_ENV = {"STACK": "dev", "RUN_URL": RUN_URL, "PULUMI_BACKEND_URL": "gs://b"}


def test_check_step_drift_passes_with_the_body(workdir: Path) -> None:
    fake_pulumi(workdir, json.dumps(CHANGED), 255)
    done = run_step("check", CHECK, workdir, CHECK_ENV)
    assert done.returncode == 0, done.stderr
    assert "drift=true" in (workdir / "drift" / "state").read_text().splitlines()
    assert (
        '      messageRetentionDuration: "600s" -> "86400s"'
        in (workdir / "drift" / "body.md").read_text().splitlines()
    )


def test_check_step_clean_passes_without_a_body(workdir: Path) -> None:
    fake_pulumi(workdir, json.dumps({"steps": []}), 0)
    done = run_step("check", CHECK, workdir, CHECK_ENV)
    assert done.returncode == 0, done.stderr
    assert "drift=false" in (workdir / "drift" / "state").read_text().splitlines()


@pytest.mark.parametrize(
    ("output", "status"),
    [("", 255), (json.dumps({"steps": []}), 255)],
    ids=["no-json", "no-change"],
)
def test_check_step_a_failed_preview_fails_the_job(workdir: Path, output: str, status: int) -> None:
    fake_pulumi(workdir, output, status)
    done = run_step("check", CHECK, workdir, CHECK_ENV)
    assert done.returncode != 0


REPORT = "Open, update or close the stack's drift issue"
TITLE = "Drift: stack dev differs from the program"


def fake_gh(workdir: Path, open_issues: list[dict[str, Any]]) -> Path:
    """`gh` that lists OPEN_ISSUES and logs every other call, one line each."""
    log = workdir / "gh.log"
    log.unlink(missing_ok=True)
    (workdir / "issues.json").write_text(json.dumps(open_issues))
    executable(
        workdir / "bin" / "gh",
        "#!/bin/bash\n"
        f'if [ "$1 $2" = "issue list" ]; then cat "{workdir / "issues.json"}"; exit 0; fi\n'
        f'echo "$*" >> "{log}"\n',
    )
    return log


def report(workdir: Path, drift: bool, issues: list[dict[str, Any]]) -> list[str]:
    (workdir / "drift").mkdir(exist_ok=True)
    (workdir / "drift" / "state").write_text(
        f"drift={'true' if drift else 'false'}\ntitle={TITLE}\n"
    )
    (workdir / "drift" / "body.md").write_text("body\n" if drift else "")
    log = fake_gh(workdir, issues)
    env = {"GH_TOKEN": "t", "REPO": "acme/cloudrun-tasks", "STACK": "dev", "RUN_URL": RUN_URL}
    done = run_step("report", REPORT, workdir, env)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


OTHER = {"number": 3, "title": "Drift: stack dev-2 differs from the program"}


def test_report_opens_one_issue_on_new_drift(workdir: Path) -> None:
    assert report(workdir, True, [OTHER]) == [
        f"issue create --repo acme/cloudrun-tasks --title {TITLE} --body-file drift/body.md"
    ]


def test_report_updates_the_open_issue_while_drift_lasts(workdir: Path) -> None:
    assert report(workdir, True, [OTHER, {"number": 7, "title": TITLE}]) == [
        "issue edit 7 --repo acme/cloudrun-tasks --body-file drift/body.md"
    ]


def test_report_closes_the_issue_when_clean_and_does_nothing_without_one(workdir: Path) -> None:
    assert report(workdir, False, [{"number": 7, "title": TITLE}]) == [
        f"issue close 7 --repo acme/cloudrun-tasks --comment No drift in stack dev: {RUN_URL}"
    ]
    assert report(workdir, False, [OTHER]) == []
