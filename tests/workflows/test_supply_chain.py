"""Supply chain: the deploy path runs only pinned code, and the pins stay consistent.

- every `uses:` of a third-party action is a 40-hex commit SHA with its release tag in a
  trailing comment (Dependabot moves both together);
- the Pulumi CLI the workflow installs is the SDK version the locks pin;
- every requirements file is compiled from a hand-edited *.in with hashes, and installed
  with --require-hashes wherever something is installed;
- Dependabot covers the actions, every pip lock and the handler's base image;
- zizmor, which `make zizmor` runs over the repository, fails on an unpinned action.

`make lock-check` (recompile every lock from its input and diff, against PyPI) is the full
freshness check; `test_every_input_pin_is_in_its_lock` is its offline first line.
Nothing here uses the network.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"

# `uses: owner/repo[/path]@<40 hex> # v1.2.3`, as a step (`- uses:`) or a job key.
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
SHA_PINNED = re.compile(
    r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?)@(?P<sha>[0-9a-f]{40})$"
)
TAG_COMMENT = re.compile(r"^\s+#\s+(?P<tag>v\d+(?:\.\d+){0,2})\s*$")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)(?:\s|\\|$)")


SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"  # any 40 hex digits: nothing is looked up


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- actions pinned to commit SHAs ------------------------------------------------------


def pin_problems(text: str) -> list[str]:
    """Every `uses:` line that is neither local (`./`) nor `owner/repo@<sha> # vX[.Y[.Z]]`."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref, rest = match["ref"].strip("'\""), match["rest"]
        if ref.startswith("./"):
            continue
        if not SHA_PINNED.match(ref):
            problems.append(f"line {number}: {ref} is not pinned to a 40-character commit SHA")
        elif not TAG_COMMENT.match(rest):
            problems.append(f"line {number}: {ref} has no `# vX.Y.Z` release-tag comment")
    return problems


def yaml_uses(workflow: Any) -> list[str]:
    """Every `uses` value YAML sees: job-level (reusable workflows) and step-level."""
    found = []
    for job in workflow["jobs"].values():
        if "uses" in job:
            found.append(job["uses"])
        found += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return found


def all_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("path", all_workflows(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_sha_with_its_tag(path: Path) -> None:
    text = path.read_text()
    assert pin_problems(text) == []
    # The line scan saw every `uses` YAML sees (none hides in a flow mapping or a
    # multi-line scalar), and at least one third-party action.
    line_refs = [
        m["ref"].strip("'\"") for line in text.splitlines() if (m := USES_LINE.match(line))
    ]
    assert sorted(line_refs) == sorted(yaml_uses(yaml.safe_load(text)))
    assert any(not ref.startswith("./") for ref in line_refs)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("      - uses: actions/checkout@v4.2.2", "not pinned"),
        ("      - uses: actions/checkout@v4", "not pinned"),
        ("      - uses: actions/checkout@main", "not pinned"),
        ("      - uses: actions/checkout@11bd719", "not pinned"),
        (f"      - uses: actions/checkout@{SHA.upper()} # v4.2.2", "not pinned"),
        ("    uses: org/repo/.github/workflows/x.yml@v1 # v1.0.0", "not pinned"),
        ("      - uses: docker://alpine:3.20", "not pinned"),
        (f"      - uses: actions/checkout@{SHA}", "no `# vX"),
        (f"      - uses: actions/checkout@{SHA} # main", "no `# vX"),
        (f"      - uses: actions/checkout@{SHA} #v4.2.2", "no `# vX"),
    ],
)
def test_pin_check_rejects(line: str, problem: str) -> None:
    [found] = pin_problems(f"steps:\n{line}\n")
    assert problem in found


def test_pin_check_accepts_sha_with_tag_and_local_workflows() -> None:
    text = (
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "      - uses: github/codeql-action/init@11bd71901bbe5b1630ceea73d27597364c9af683 # v3\n"
        "    uses: ./.github/workflows/pulumi-stack.yml\n"
    )
    assert pin_problems(text) == []


def test_each_action_has_one_sha_and_tag_across_workflows() -> None:
    """Two SHAs (or two tags) of one action means a half-done update."""
    seen: dict[str, set[str]] = {}
    for path in all_workflows():
        for line in path.read_text().splitlines():
            match = USES_LINE.match(line)
            if match and (pinned := SHA_PINNED.match(match["ref"])):
                seen.setdefault(pinned["action"], set()).add(f"{pinned['sha']} {match['rest']}")
    assert seen, "no pinned action found"
    assert {action: len(refs) for action, refs in seen.items()} == dict.fromkeys(seen, 1), seen


def test_zizmor_rejects_an_unpinned_action(tmp_path: Path) -> None:
    """`make zizmor` can fail: the same offline audit flags a tag-pinned action as high."""
    zizmor = Path(sys.executable).parent / "zizmor"
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    body = (
        "name: t\non: push\npermissions: {}\njobs:\n  t:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - uses: actions/checkout@{ref}\n"
        "        with:\n          persist-credentials: false\n"
    )
    command = [str(zizmor), "--offline", "--min-severity", "medium", str(tmp_path)]
    (workflows / "t.yml").write_text(body.replace("{ref}", "v4.2.2"))
    bad = subprocess.run(command, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "unpinned-uses" in bad.stdout, bad.stdout + bad.stderr
    sha = "11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
    (workflows / "t.yml").write_text(body.replace("{ref}", sha))
    good = subprocess.run(command, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stdout + good.stderr


# --- Pulumi CLI == SDK ------------------------------------------------------------------


def workflow_pulumi_versions(workflow: Any) -> list[str]:
    return [
        str(step["with"]["pulumi-version"])
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("pulumi/actions@")
    ]


def pinned_version(text: str, package: str) -> str | None:
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match and canonical(match["name"]) == package:
            return match["version"]
    return None


def cli_sdk_mismatches(cli_versions: list[str], requirement_texts: dict[str, str]) -> list[str]:
    if not cli_versions:
        return ["no pulumi/actions step with a pulumi-version"]
    problems = [f"pulumi-version {v} differs from {cli_versions[0]}" for v in cli_versions[1:]]
    for name, text in requirement_texts.items():
        sdk = pinned_version(text, "pulumi")
        if sdk is None:
            problems.append(f"{name} pins no pulumi")
        elif sdk != cli_versions[0]:
            problems.append(f"{name} pins pulumi=={sdk}, the workflow's CLI is {cli_versions[0]}")
    return problems


def requirement_files_with_pulumi() -> dict[str, str]:
    names = [
        "requirements.in",
        "requirements.txt",
        "requirements-dev.txt",
        "policy/requirements.txt",
        "policy/requirements-dev.txt",
    ]
    return {name: (ROOT / name).read_text() for name in names}


def test_workflow_pulumi_cli_is_the_pinned_sdk() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "pulumi-stack.yml").read_text())
    versions = workflow_pulumi_versions(workflow)
    assert len(versions) == 1, versions
    assert cli_sdk_mismatches(versions, requirement_files_with_pulumi()) == []


def test_cli_sdk_check_catches_a_lone_bump() -> None:
    """A Dependabot PR that moves the SDK alone fails until pulumi-version follows."""
    texts = requirement_files_with_pulumi()
    texts["requirements.txt"] = texts["requirements.txt"].replace(
        "pulumi==3.272.0", "pulumi==3.273.0"
    )
    assert cli_sdk_mismatches(["3.272.0"], texts) == [
        "requirements.txt pins pulumi==3.273.0, the workflow's CLI is 3.272.0"
    ]
    assert cli_sdk_mismatches([], texts) == ["no pulumi/actions step with a pulumi-version"]
    assert cli_sdk_mismatches(["3.272.0"], {"x.txt": "pulumi>=3\n"}) == ["x.txt pins no pulumi"]


# --- hash-locked requirements -----------------------------------------------------------

INPUTS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in ROOT.rglob("requirements*.in")
    if not any(part.startswith((".venv", "build")) for part in p.relative_to(ROOT).parts)
)


def lock_problems(input_text: str, lock_text: str, lock_name: str) -> list[str]:
    """Offline: the lock is a pip-compile output with hashes holding every `==` of its input."""
    problems = []
    if "autogenerated by pip-compile with Python 3.11" not in lock_text:
        problems.append(f"{lock_name} is not pip-compile output for Python 3.11")
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock_text)
    locked: dict[str, str] = {}
    for entry in entries:
        match = PIN.match(entry)
        if not match:
            continue
        locked[canonical(match["name"])] = match["version"]
        if "--hash=sha256:" not in entry:
            problems.append(f"{lock_name}: {match['name']} has no hash")
    if not locked:
        problems.append(f"{lock_name} pins nothing")
    for line in input_text.splitlines():
        match = PIN.match(line.strip())
        if not match:
            continue
        name, version = canonical(match["name"]), match["version"]
        if locked.get(name) != version:
            problems.append(
                f"{lock_name}: {name}=={version} from its input is locked as {locked.get(name)}"
                " (run make lock)"
            )
    return problems


def test_every_requirements_file_has_an_input_and_every_input_a_lock() -> None:
    assert INPUTS == [
        "handler/requirements.in",
        "local/requirements-emulator.in",
        "policy/requirements-dev.in",
        "policy/requirements.in",
        "requirements-dev.in",
        "requirements.in",
    ]
    # Not locks of this repository: what a consumer's program and the component plugin
    # install, the package itself from a git tag or a checkout (pip can't hash those).
    consumer_side = {"examples/consumer/requirements.txt", "provider/requirements.txt"}
    locks = sorted(
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("requirements*.txt")
        if not any(part.startswith((".venv", "build")) for part in p.relative_to(ROOT).parts)
        and p.relative_to(ROOT).as_posix() not in consumer_side
    )
    assert locks == [name.removesuffix(".in") + ".txt" for name in INPUTS]
    makefile = (ROOT / "Makefile").read_text()
    makefile_locks = re.search(r"^LOCKS := (.*?)(?<!\\)$", makefile, re.M | re.S)
    assert makefile_locks
    assert sorted(makefile_locks[1].replace("\\\n", " ").split()) == locks


@pytest.mark.parametrize("input_name", INPUTS)
def test_every_input_pin_is_in_its_lock(input_name: str) -> None:
    lock_name = input_name.removesuffix(".in") + ".txt"
    input_text, lock_text = (ROOT / input_name).read_text(), (ROOT / lock_name).read_text()
    assert lock_problems(input_text, lock_text, lock_name) == []


def test_lock_check_catches_a_stale_or_hashless_lock() -> None:
    input_text = (ROOT / "requirements.in").read_text()
    lock_text = (ROOT / "requirements.txt").read_text()
    bumped = input_text.replace("pulumi-gcp==9.35.0", "pulumi-gcp==9.36.0")
    assert lock_problems(bumped, lock_text, "requirements.txt") == [
        "requirements.txt: pulumi-gcp==9.36.0 from its input is locked as 9.35.0 (run make lock)"
    ]
    added = input_text + "requests==2.34.2\n"
    assert lock_problems(added, lock_text, "requirements.txt") == [
        "requirements.txt: requests==2.34.2 from its input is locked as None (run make lock)"
    ]
    hashless = "# This file is autogenerated by pip-compile with Python 3.11\npulumi==3.272.0\n"
    assert lock_problems("pulumi==3.272.0\n", hashless, "x.txt") == ["x.txt: pulumi has no hash"]
    assert lock_problems("", "pulumi==3.272.0 \\\n    --hash=sha256:ab\n", "x.txt") == [
        "x.txt is not pip-compile output for Python 3.11"
    ]


def test_every_install_requires_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    [pip_install] = re.findall(r"^PIP_INSTALL = (.*)$", makefile, re.M)
    assert "--require-hashes" in pip_install.split()
    recipes = [line for line in makefile.splitlines() if not line.lstrip().startswith("#")]
    assert [line for line in recipes if "pip install" in line] == [f"PIP_INSTALL = {pip_install}"]
    assert makefile.count("$(PIP_INSTALL)") == 3  # .venv, .venv-policy, .venv-emulator
    dockerfile = (ROOT / "handler" / "Dockerfile").read_text()
    pip_runs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert pip_runs == [
        "RUN pip install --no-deps --require-hashes -r requirements.txt && pip check"
    ]
    # The workflows install only through make (which uses PIP_INSTALL).
    for path in all_workflows():
        assert "pip install" not in path.read_text(), path.name


# --- Dependabot -------------------------------------------------------------------------


def test_dependabot_covers_actions_every_lock_and_the_base_image() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    by_ecosystem: dict[str, list[dict[str, Any]]] = {}
    for update in config["updates"]:
        by_ecosystem.setdefault(update["package-ecosystem"], []).append(update)
        assert update["cooldown"]["default-days"] >= 1

    def directories(ecosystem: str) -> set[str]:
        return {
            d
            for update in by_ecosystem.get(ecosystem, [])
            for d in update.get("directories", [update.get("directory")])
        }

    assert directories("github-actions") == {"/"}
    assert directories("docker") == {"/handler"}
    assert (ROOT / "handler" / "Dockerfile").exists()
    input_dirs = {"/" + Path(name).parent.as_posix().removeprefix(".") for name in INPUTS}
    assert input_dirs == {"/", "/handler", "/local", "/policy"}
    assert directories("pip") == input_dirs

    # pulumi, pulumi-gcp and pulumi-policy move together in one PR across the program's
    # and the policy pack's locks.
    [main_pip] = [u for u in by_ecosystem["pip"] if "/" in u.get("directories", [])]
    assert {"/", "/policy"} <= set(main_pip["directories"])
    patterns = main_pip["groups"]["pulumi"]["patterns"]
    for package in ("pulumi", "pulumi-gcp", "pulumi-policy"):
        assert any(re.fullmatch(p.replace("*", ".*"), package) for p in patterns), package


def test_handler_base_image_is_an_exact_python_311_release() -> None:
    dockerfile = (ROOT / "handler" / "Dockerfile").read_text()
    [base] = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
