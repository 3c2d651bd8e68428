"""`make local` is safe to start, stop and run twice.

However `python -m local` ends, nothing it started outlives it: stopped by a signal it stops
its children and says so; killed outright (SIGKILL can't be caught) its children die with it,
gunicorn's worker included. A stack's directory is held by one run at a time.
"""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from local.processes import REPO, gcloud_available, group_members
from tests.app.helpers import (
    LocalRun,
    alive,
    listening_addresses,
    printed_enqueue,
    processes_of,
    wait_all_gone,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)


def test_sigkill_of_local_takes_every_child_within_5s_and_the_next_run_takes_over(
    start_local: Callable[..., LocalRun],
) -> None:
    """Before: the children (own sessions) kept running and listening after the parent died;
    and a busy gunicorn worker, orphaned, finished its task first (up to its graceful timeout).
    With gcloud installed, the Firestore and Pub/Sub emulators' JVMs are among them."""
    local = start_local(gcloud=True)
    if gcloud_available():
        assert {"firestore emulator", "pubsub emulator"} <= set(local.children)
    handler = local.children["handler"]["pid"]
    # The handler announces its port once gunicorn listens; its worker forks a moment later
    # (seconds on a loaded machine).
    wait_for(
        lambda: len(group_members(handler)) >= 2 or None, "the handler's gunicorn worker to run"
    )
    started = processes_of(local)
    ports = [child["port"] for child in local.children.values()]
    # A task in the middle of its work when the parent dies.
    command = printed_enqueue(local.text())
    command[command.index("--data") + 1] = '{"sleepSeconds": 60}'
    enqueue = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert enqueue.returncode == 0, enqueue.stderr
    wait_for(lambda: '"working"' in local.text() or None, "the handler to start the task")

    os.kill(local.process.pid, signal.SIGKILL)
    local.process.wait(10)
    wait_all_gone(started, ports, "the emulator, handler and worker to die with their parent")

    # The killed run could not clean up: the next one says so and takes the directory over.
    again = start_local()
    assert f"taking over {local.directory} from a run that did not clean up (pid " in again.text()
    assert f"pid {local.process.pid}, ports " in again.text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_stop_everything_and_say_what(
    start_local: Callable[..., LocalRun], signum: signal.Signals
) -> None:
    local = start_local()
    started = processes_of(local)
    emulator, handler = (local.children[name] for name in ("emulator", "handler"))

    os.kill(local.process.pid, signum)
    assert local.process.wait(30) == 0
    *_, stopping, last = local.text().splitlines()
    assert stopping == f"stopping ({signum.name})..."
    assert last == (
        f"stopped handler (pid {handler['pid']}, 127.0.0.1:{handler['port']}, exit 0),"
        f" emulator (pid {emulator['pid']}, 127.0.0.1:{emulator['port']}, exit 0);"
        f" logs and outputs kept in {local.directory}"
    )
    wait_all_gone(started, [emulator["port"], handler["port"]], "every child to be stopped")
    assert not (local.directory / "run.json").exists()
    assert (local.directory / "handler.log").exists()


def test_what_it_prints_on_start(start_local: Callable[..., LocalRun]) -> None:
    local = start_local()
    pid = local.process.pid
    emulator, handler = (local.children[name] for name in ("emulator", "handler"))
    lines = local.text().splitlines()
    assert lines[:4] == [
        f"stack dev running (pid {pid}), state in {local.directory}",
        f"  emulator  127.0.0.1:{emulator['port']}  pid {emulator['pid']}"
        f"  log {local.directory / 'emulator.log'}",
        f"  handler   127.0.0.1:{handler['port']}  pid {handler['pid']}"
        f"  log {local.directory / 'handler.log'}",
        f"  outputs   {local.directory / 'pipelines.json'}",
    ]
    assert f"stop: Ctrl-C here, or `kill {pid}` (SIGTERM or SIGHUP work too)" in lines
    # Asked to run without the gcloud emulators, it says where state and dead letters go.
    assert "idempotency: in memory; dead letters: the handler's log (--in-memory)" in lines
    assert not any("-m taskclient replay" in line for line in lines)


def test_same_stack_twice_is_refused_and_the_first_run_is_untouched(
    start_local: Callable[..., LocalRun], root: Path
) -> None:
    """Before: the second run overwrote the first one's outputs file and logs."""
    first = start_local()
    before = {
        name: (first.directory / name).read_bytes() for name in ("run.json", "pipelines.json")
    }
    emulator, handler = (first.children[name]["port"] for name in ("emulator", "handler"))
    state = str(first.directory.parent)
    second = subprocess.run(
        [sys.executable, "-m", "local", "--stack", "dev", "--root", str(root), "--state", state],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr == (
        f"error: stack dev is already running (pid {first.process.pid}, ports {emulator}"
        f" emulator, {handler} handler); stop it with Ctrl-C in its terminal or"
        f" `kill {first.process.pid}`\n"
    )
    assert first.process.poll() is None
    assert all(alive(child["pid"]) for child in first.children.values())
    assert listening_addresses(emulator) and listening_addresses(handler)
    after = {name: (first.directory / name).read_bytes() for name in before}
    assert after == before


def test_two_stacks_side_by_side_keep_separate_state(
    start_local: Callable[..., LocalRun],
) -> None:
    dev, qa = start_local("dev"), start_local("qa")
    assert (dev.directory.name, qa.directory.name) == ("dev", "qa")
    for local in (dev, qa):
        run = json.loads((local.directory / "run.json").read_text())
        assert (run["pid"], run["stack"]) == (local.process.pid, local.directory.name)
        outputs = json.loads((local.directory / "pipelines.json").read_text())
        handler = local.children["handler"]["port"]
        assert outputs["orders"]["serviceUrl"] == f"http://127.0.0.1:{handler}"
        # Each run's printed command reaches its own emulator and handler.
        enqueue = subprocess.run(
            printed_enqueue(local.text()), cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert enqueue.returncode == 0, enqueue.stderr
        short = enqueue.stdout.strip().rsplit("/", 1)[-1]
        wait_for(
            lambda local=local, short=short: short in local.text() or None,
            f"{local.directory.name}'s handler to log its task",
        )
    ports = {child["port"] for local in (dev, qa) for child in local.children.values()}
    assert len(ports) == 4


PROCESSOR = """
import os
from pathlib import Path


def process(task):
    Path(os.environ["OUTSIDE_MARKER"]).write_text(str(task.payload))
"""


def test_task_processor_from_outside_the_repository_via_pythonpath(
    start_local: Callable[..., LocalRun], tmp_path: Path
) -> None:
    """Before: the handler's PYTHONPATH replaced the user's, so it could not import this."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside_processor.py").write_text(PROCESSOR)
    marker = tmp_path / "processed"
    local = start_local(
        env={
            "PYTHONPATH": str(outside),
            "TASK_PROCESSOR": "outside_processor:process",
            "OUTSIDE_MARKER": str(marker),
        }
    )
    enqueue = subprocess.run(
        printed_enqueue(local.text()), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert enqueue.returncode == 0, enqueue.stderr
    wait_for(lambda: marker.exists() or None, "the outside processor to run")
    assert marker.read_text() == "{'id': 1}"
