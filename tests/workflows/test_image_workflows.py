"""The handler image's workflows: image.yml builds once, pushes as the pusher, attests and
opens the dev pin; promote.yml copies a digest and never builds. Their shell steps run
here with stand-ins for `docker`, `git` and `gh`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.workflows.test_drift_workflow import checkout, executable, run_script
from tests.workflows.test_workflows import WORKFLOWS, load

ROOT = WORKFLOWS.parents[1]
IMAGE = load("image.yml")
PROMOTE = load("promote.yml")
REGISTRY_IMAGE = "us-central1-docker.pkg.dev/acme-tasks-dev/handler/handler"
DIGEST = "sha256:" + "ab" * 32


def step(workflow: dict[str, Any], job: str, name: str) -> dict[str, Any]:
    return next(s for s in workflow["jobs"][job]["steps"] if s.get("name") == name)


def uses(workflow: dict[str, Any], job: str, action: str) -> dict[str, Any]:
    return next(
        s for s in workflow["jobs"][job]["steps"] if s.get("uses", "").startswith(action + "@")
    )


def test_the_build_runs_on_main_as_the_pusher_and_attests_the_pushed_digest() -> None:
    assert IMAGE["on"] == {"push": {"branches": ["main"], "paths": ["handler/**"]}}
    build = IMAGE["jobs"]["build"]
    assert build["environment"] == "dev-image"
    assert build["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "attestations": "write",
    }
    auth = uses(IMAGE, "build", "google-github-actions/auth")
    assert auth["with"]["service_account"] == "${{ vars.GCP_SERVICE_ACCOUNT }}"
    attest = uses(IMAGE, "build", "actions/attest-build-provenance")
    assert attest["with"] == {
        "subject-name": "${{ steps.push.outputs.name }}",
        "subject-digest": "${{ steps.push.outputs.digest }}",
        "push-to-registry": True,
    }
    # The pin job holds no cloud identity; the build job can't write the repository.
    pin = IMAGE["jobs"]["pin"]
    assert pin["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert (
        "pin_image Pulumi.dev.yaml --image"
        in step(IMAGE, "pin", "Open a pull request pinning the digest in dev")["run"]
    )


def test_promotion_copies_and_never_builds_or_signs_in() -> None:
    assert set(PROMOTE["on"]) == {"workflow_dispatch"}
    assert PROMOTE["on"]["workflow_dispatch"]["inputs"]["to"]["options"] == ["staging", "prod"]
    [job] = PROMOTE["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    text = (WORKFLOWS / "promote.yml").read_text()
    for never in (
        "docker build",
        "docker push",
        "google-github-actions/auth",
        "id-token",
        "buildx",
    ):
        assert never not in text, never


# --- the shell steps, run -----------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    checkout(tmp_path)
    (tmp_path / "handler").mkdir()
    return tmp_path


BASE = "The base image is pinned by digest"


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (f"FROM python:3.11.15-slim-trixie@{DIGEST}", True),
        ("FROM python:3.11.15-slim-trixie", False),
        ("FROM python:3.11.15-slim-trixie@sha256:abc", False),
    ],
)
def test_the_build_refuses_a_base_image_without_a_digest(
    workdir: Path, line: str, ok: bool
) -> None:
    (workdir / "handler" / "Dockerfile").write_text(f"# base\n{line}\nRUN true\n")
    done = run_script(step(IMAGE, "build", BASE)["run"], workdir, {})
    assert (done.returncode == 0) is ok, done.stderr


def test_the_repositorys_dockerfile_is_judged_by_the_same_check(tmp_path: Path) -> None:
    """Today's Dockerfile names its base by tag alone (no registry was reachable to read
    the digest), so the workflow refuses to build until one is added."""
    done = run_script(step(IMAGE, "build", BASE)["run"], ROOT, {})
    pinned = "@sha256:" in (ROOT / "handler" / "Dockerfile").read_text().split("\nFROM ", 1)[1]
    assert (done.returncode == 0) is pinned


PUSH = "Build and push"


def fake_docker(workdir: Path, digest: str) -> Path:
    log = workdir / "docker.log"
    executable(
        workdir / "bin" / "docker",
        "#!/bin/bash\n"
        f'echo "$*" >> "{log}"\n'
        'if [ "$1" = buildx ]; then\n'
        '  while [ $# -gt 0 ]; do [ "$1" = --metadata-file ] && out=$2; shift; done\n'
        f'  printf \'{{"containerimage.digest": "{digest}"}}\' > "$out"\n'
        "fi\n",
    )
    return log


def test_push_logs_in_with_the_token_and_reports_the_digest(workdir: Path) -> None:
    log = fake_docker(workdir, DIGEST)
    output = workdir / "out"
    env = {"TOKEN": "tok", "IMAGE": REGISTRY_IMAGE, "SHA": "c0ffee", "GITHUB_OUTPUT": str(output)}
    done = run_script(step(IMAGE, "build", PUSH)["run"], workdir, env)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == (
        "login --username oauth2accesstoken --password-stdin https://us-central1-docker.pkg.dev"
    )
    assert calls[1].startswith("buildx build --push --metadata-file meta.json")
    assert f"--tag {REGISTRY_IMAGE}:c0ffee handler/" in calls[1]
    assert output.read_text().splitlines() == [
        f"name={REGISTRY_IMAGE}",
        f"digest={DIGEST}",
        f"image={REGISTRY_IMAGE}@{DIGEST}",
    ]


def test_push_without_a_digest_fails(workdir: Path) -> None:
    fake_docker(workdir, "null")
    env = {"TOKEN": "t", "IMAGE": REGISTRY_IMAGE, "SHA": "c", "GITHUB_OUTPUT": str(workdir / "o")}
    assert run_script(step(IMAGE, "build", PUSH)["run"], workdir, env).returncode != 0


def fake_git_and_gh(workdir: Path) -> Path:
    log = workdir / "calls.log"
    for tool in ("git", "gh"):
        executable(workdir / "bin" / tool, f'#!/bin/bash\necho "{tool} $*" >> "{log}"\n')
    return log


def test_promotion_opens_a_pull_request_with_the_previous_stages_digest(workdir: Path) -> None:
    repository = "us-docker.pkg.dev/cloudrun/container/hello"
    for stack in ("dev", "staging"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        if stack == "dev":
            text = text.replace(f"image: {repository}\n", f"image: {repository}@{DIGEST}\n")
        (workdir / f"Pulumi.{stack}.yaml").write_text(text)
    log = fake_git_and_gh(workdir)
    script = step(PROMOTE, "promote", "Open a pull request copying the digest")["run"]
    env = {
        "GH_TOKEN": "t",
        "REPO": "acme/cloudrun-tasks",
        "TO": "staging",
        "REPOSITORY": repository,
    }
    done = run_script(script, workdir, env)
    assert done.returncode == 0, done.stderr
    assert f"image: {repository}@{DIGEST}" in (workdir / "Pulumi.staging.yaml").read_text()
    calls = log.read_text().splitlines()
    assert f"git switch --create promote/staging-{'ab' * 32}" in calls
    assert any(c.startswith("gh pr create --repo acme/cloudrun-tasks --base main") for c in calls)
    # Nothing to promote to from prod, and an unknown target is refused before any change.
    assert run_script(script, workdir, {**env, "TO": "qa"}).returncode != 0
