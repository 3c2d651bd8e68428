"""The README's Local run section is a test: its commands run as written from the repository
(`make` targets or the project's `.venv/bin/python`), its sample output is what `make local`
prints, and `make local` killed outright (SIGKILL of `make` itself) leaves nothing running."""

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from local.processes import REPO, gcloud_available, group_members
from tests.app.helpers import (
    LocalRun,
    wait_all_gone,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)


def section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Local run\n", 1)[1].split("\n## ", 1)[0]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", section(), flags=re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    """Every command of the section's sh blocks, continuation lines joined."""
    return [
        line.strip()
        for block in blocks("sh")
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def with_gcloud(line: str) -> bool:
    """Whether `make local` prints this sample line here: the emulators' rows, the store
    line and the replay command need gcloud (CI has it; elsewhere they may be missing)."""
    needs_gcloud = line.startswith(("  firestore", "  pubsub", "idempotency:", "replay dead"))
    return gcloud_available() or not (needs_gcloud or "-m taskclient replay" in line)


def shape(text: str) -> str:
    """Output with its numbers (pids, ports) blanked, to compare with the README's sample."""
    return re.sub(r"\d+", "N", text)


def test_commands_are_make_targets_or_the_project_python() -> None:
    found = commands()
    assert any(c.startswith("make local") for c in found), found
    assert any("-m taskclient enqueue" in c for c in found), found
    assert any("-m taskclient replay" in c for c in found), found
    for command in found:
        assert command.startswith(("make ", ".venv/bin/python ")), command


def test_readme_commands_as_written_then_make_killed_outright(tmp_path: Path) -> None:
    """Before: killing `make` left `python -m local`, the emulator and the handler running."""
    [make_local] = [c for c in commands() if c.startswith("make local")]
    [enqueue] = [c for c in commands() if "-m taskclient enqueue" in c]
    state = tmp_path / "state"
    # The command as written; LOCAL_STATE keeps a developer's own `make local` out of the way,
    # and the outer `make test`'s flags stay out of this make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    output = tmp_path / "make-local.out"
    with output.open("wb") as sink:
        make = subprocess.Popen(
            shlex.split(make_local),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**env, "LOCAL_STATE": str(state)},
            start_new_session=True,
        )
    local = LocalRun(make, output, state / "dev")
    try:
        text = local.wait_started()
        run = json.loads((local.directory / "run.json").read_text())
        # What it printed has the README sample's shape, line for line.
        [sample] = blocks("text")
        expected = [shape(line) for line in sample.splitlines() if with_gcloud(line)]
        printed = text.replace(str(state), "build/local").splitlines()
        printed = [line for line in printed if with_gcloud(line)]
        # make echoes its command first; the sample is what `python -m local` prints.
        first = next(i for i, line in enumerate(printed) if line.startswith("stack dev running"))
        assert [shape(line) for line in printed[first : first + len(expected)]] == expected

        # The README's enqueue command, with the printed port and this run's state directory.
        port = local.children["emulator"]["port"]
        command = enqueue.replace("PORT", str(port)).replace("build/local/", f"{state}/")
        sent = subprocess.run(
            shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert sent.returncode == 0, sent.stderr
        short = sent.stdout.strip().rsplit("/", 1)[-1]
        wait_for(
            lambda: (
                any(short in line and '"done"' in line for line in local.text().splitlines())
                or None
            ),
            "the README's task to be done after its two failures",
        )
        if gcloud_available():
            # The README's replay command, as written, against the run's Pub/Sub emulator.
            [replay] = [c for c in commands() if "-m taskclient replay" in c]
            command = (
                replay.replace("PUBSUB_PORT", str(local.children["pubsub emulator"]["port"]))
                .replace("PORT", str(port))
                .replace("build/local/", f"{state}/")
            )
            replayed = subprocess.run(
                [*shlex.split(command), "--json"], cwd=REPO, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            assert replayed.returncode == 0, replayed.stderr
            assert json.loads(replayed.stdout)["exitCode"] == 0

        started = [run["pid"]]
        started += [pid for c in local.children.values() for pid in group_members(c["pid"])]
        ports = [child["port"] for child in local.children.values()]
        os.kill(make.pid, signal.SIGKILL)
        make.wait(10)
        wait_all_gone(started, ports, "`python -m local` and its children to follow `make`")
        # `python -m local` got SIGTERM from its dying parent, so it stopped its children itself.
        wait_for(lambda: "stopped handler (pid" in local.text() or None, "what was stopped")
    finally:
        # `python -m local` is in make's process group, the children in their own.
        local.kill_everything()
