"""The README's five-minute walkthrough is a test: its commands run as written from the
repository (`make` targets or the project's `.venv/bin/python`, the ports `make local`
printed in place of its placeholders), the local-run page's sample output is what `make
local` prints, and `make local` killed outright (SIGKILL of `make` itself) leaves nothing
running."""

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
from tests.docs.pages import block_commands, blocks, snippet, text

pytestmark = pytest.mark.timeout(240)


def commands() -> list[str]:
    """Every command of the walkthrough, in order."""
    return block_commands(snippet("walkthrough"))


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
    assert [c.split(" --", 1)[0] for c in found if c.startswith("make")] == [
        "make plan STACK=dev",
        "make local STACK=dev",
    ]
    assert sum("-m taskclient enqueue" in c for c in found) == 2, found
    assert sum("-m taskclient replay" in c for c in found) == 2, found
    for command in found:
        assert command.startswith(("make ", ".venv/bin/python ")), command


def _filled(command: str, state: Path, children: dict[str, dict[str, int]]) -> list[str]:
    """A walkthrough command with the ports `make local` printed and this run's state."""
    ports = {
        "PUBSUB_PORT": "pubsub emulator",
        "STORAGE_PORT": "storage emulator",
        "PORT": "emulator",
    }
    for placeholder, child in ports.items():  # PORT last: it ends the other two
        if placeholder in command:
            command = command.replace(placeholder, str(children[child]["port"]))
    return shlex.split(command.replace("build/local/", f"{state}/"))


def _answers(local: LocalRun, task: str, status: str) -> list[str] | None:
    """The handler's log lines answering TASK with STATUS, or None while there are none."""
    found = [
        line
        for line in local.text().splitlines()
        if line.startswith("{") and task in line and json.loads(line).get("status") == status
    ]
    return found or None


def _run(words: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(words, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_readme_walkthrough_as_written_then_make_killed_outright(tmp_path: Path) -> None:
    """The walkthrough, step by step; then `make` SIGKILLed (before: that left `python -m
    local`, the emulator and the handler running)."""
    steps = commands()
    plan = _run(shlex.split(steps[0]))
    assert plan.returncode == 0, plan.stderr
    assert "TaskPipeline orders" in plan.stdout
    make_local = steps[1]
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
        printed_text = local.wait_started()
        run = json.loads((local.directory / "run.json").read_text())
        # What it printed has the local-run page's sample's shape, line for line.
        [sample] = blocks(text("local-run.md"), "text")
        expected = [shape(line) for line in sample.splitlines() if with_gcloud(line)]
        printed = printed_text.replace(str(state), "build/local").splitlines()
        printed = [line for line in printed if with_gcloud(line)]
        # make echoes its command first; the sample is what `python -m local` prints.
        first = next(i for i, line in enumerate(printed) if line.startswith("stack dev running"))
        assert [shape(line) for line in printed[first : first + len(expected)]] == expected

        # Step 3: a task that fails twice, then is done.
        sent = _run(_filled(steps[2], state, local.children))
        assert sent.returncode == 0, sent.stderr
        retried = sent.stdout.strip().rsplit("/", 1)[-1]
        wait_for(
            lambda: _answers(local, retried, "done"),
            "the walkthrough's task to be done after its two failures",
        )
        assert len(_answers(local, retried, "failed") or []) == 2
        # Step 4: a task rejected for good.
        sent = _run(_filled(steps[3], state, local.children))
        assert sent.returncode == 0, sent.stderr
        rejected = sent.stdout.strip().rsplit("/", 1)[-1]
        wait_for(lambda: _answers(local, rejected, "rejected"), "the rejected task")
        if gcloud_available():
            # Its dead letter, seen by the dry run and replayed, on the Pub/Sub emulator.
            dry_run = _run(_filled(steps[4], state, local.children))
            assert dry_run.returncode == 0, dry_run.stderr
            assert f"replays {rejected}" in dry_run.stdout
            replayed = _run([*_filled(steps[5], state, local.children), "--json"])
            assert replayed.returncode == 0, replayed.stderr
            report = json.loads(replayed.stdout)
            assert report["exitCode"] == 0
            # As the walkthrough says: rejected again, its new dead letter left for later.
            assert report["arrivedFromThisRun"] == 1

        started = [run["pid"]]
        started += [pid for c in local.children.values() for pid in group_members(c["pid"])]
        ports = [child["port"] for child in local.children.values()]
        os.kill(make.pid, signal.SIGKILL)
        make.wait(10)
        wait_all_gone(started, ports, "`python -m local` and its children to follow `make`")
        # `python -m local` got SIGTERM from its dying parent, so it stopped its children itself.
        # (Its first line names the handlers: thumbnails' own, in front of its app, first.)
        wait_for(
            lambda: "stopped thumbnails handler (pid" in local.text() or None, "what was stopped"
        )
        assert ", handler (pid " in local.text()
    finally:
        # `python -m local` is in make's process group, the children in their own.
        local.kill_everything()
