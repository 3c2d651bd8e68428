"""`make local` with schedules: an every-minute schedule fires on the emulators at its cron
time, --tick-now fires one at start, `taskclient tick` fires one by hand, and a tick
delivered twice is processed once."""

import json
import re
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handler.tick_wire import JOB_HEADER, QUEUE_HEADER, SCHEDULE_TIME_HEADER, tick_task_id
from local import schedules
from local.processes import REPO
from local.stack_config import read_stack
from tests.app.helpers import LocalRun, wait_for

pytestmark = pytest.mark.timeout(150)

STACK = """
config:
  gcp:project: acme-local
  gcp:region: us-central1
  cloudrun-tasks:pipelines:
    orders:
      service:
        image: us-docker.pkg.dev/cloudrun/container/hello
      schedules:
        every-minute:
          cron: "* * * * *"
          body: {"kind": "minute"}
          path: /minutely
        nightly:
          cron: "0 3 * * *"
          timeZone: Europe/Berlin
          paused: true
"""
JOB = "projects/acme-local/locations/us-central1/jobs/orders_every-minute"
QUEUE = "projects/acme-local/locations/us-central1/queues/orders"
TICK = re.compile(r"tick orders\.every-minute at (\S+): (\S+)")


@pytest.fixture
def scheduled_root(root: Path) -> Path:
    (root / "Pulumi.ticks.yaml").write_text(STACK)
    return root


def ticks(local: LocalRun) -> list[tuple[str, str]]:
    return TICK.findall(local.text())


def done_lines(local: LocalRun, when: str) -> list[dict[str, object]]:
    """The handler's 'done' lines for the task of the tick at WHEN, in the followed log."""
    short = tick_task_id(JOB, when)
    lines = [json.loads(line) for line in local.text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("taskName") == short and line["status"] == "done"]


def test_schedules_fire_on_the_emulators_once_per_tick(
    scheduled_root: Path, start_local: Callable[..., LocalRun]
) -> None:
    local = start_local("ticks", args=["--tick-now", "orders.every-minute"])
    text = local.text()
    assert "orders.every-minute  '* * * * *' UTC, next " in text
    assert "orders.nightly  '0 3 * * *' Europe/Berlin PAUSED" in text
    # --tick-now: one tick at start, its task processed through the queue.
    first, status = wait_for(lambda: (ticks(local) or [None])[0], "the --tick-now tick")
    assert status == "ticked"
    [done] = wait_for(lambda: done_lines(local, first) or None, "the tick's task done")
    assert (done["path"], done["result"]["echo"]) == ("/minutely", {"kind": "minute"})  # type: ignore[index]

    # The same tick delivered again (a Cloud Scheduler retry): still processed once.
    handler = local.children["handler"]["port"]
    again = urllib.request.Request(
        f"http://127.0.0.1:{handler}/_tick/minutely",
        data=b'{"kind":"minute"}',
        method="POST",
        headers={
            "Content-Type": "application/json",
            JOB_HEADER: JOB,
            SCHEDULE_TIME_HEADER: first,
            QUEUE_HEADER: QUEUE,
        },
    )
    with urllib.request.urlopen(again, timeout=30) as response:
        answer = json.loads(response.read())["status"]
    if answer == "ticked":  # created again (the emulator kept no name): the claim holds it
        short = tick_task_id(JOB, first)
        wait_for(
            lambda: next(
                (
                    line
                    for line in local.text().splitlines()
                    if short in line and '"duplicate"' in line
                ),
                None,
            ),
            "the second task answered as a duplicate",
        )
    else:
        assert answer == "duplicate"
    time.sleep(1.0)  # any further delivery would show now
    assert len(done_lines(local, first)) == 1

    # The cron: the next minute's tick fires by itself, at a whole minute.
    cron_tick = wait_for(
        lambda: next((t for t in ticks(local) if t[0] != first), None),
        "the every-minute schedule's own tick",
        timeout_s=75,
    )
    assert cron_tick[1] == "ticked" and cron_tick[0].endswith(":00Z")
    wait_for(lambda: done_lines(local, cron_tick[0]) or None, "the cron tick's task done")

    # By hand, with the command `make local` printed.
    printed = shlex.split(next(line for line in text.splitlines() if "-m taskclient tick" in line))
    assert printed[0] == ".venv/bin/python"
    fired = subprocess.run(printed, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert fired.returncode == 0, fired.stderr
    assert fired.stdout.strip().startswith(QUEUE + "/tasks/")
    by_hand = fired.stdout.strip().rsplit("/", 1)[-1]
    wait_for(
        lambda: next(
            (line for line in local.text().splitlines() if by_hand in line and '"done"' in line),
            None,
        ),
        "the hand-fired tick's task done",
    )


def test_the_loop_fires_at_cron_times_from_the_same_library(scheduled_root: Path) -> None:
    """The times the loop waits for are cronsim's: the settings' own `runs`."""
    [orders] = read_stack(scheduled_root, "ticks")
    after = datetime(2026, 12, 3, 14, 59, 30, tzinfo=UTC)
    upcoming = sorted(schedules._next([orders], after))
    # The paused schedule never fires; the every-minute one at the next whole minute.
    assert upcoming == [(datetime(2026, 12, 3, 15, 0, tzinfo=UTC), "orders", "every-minute")]


def test_tick_now_names_a_schedule_of_the_stack(scheduled_root: Path) -> None:
    pipelines = read_stack(scheduled_root, "ticks")
    assert schedules.parse_names(["orders.nightly"], pipelines) == [("orders", "nightly")]
    with pytest.raises(ValueError, match=r"'orders\.weekly' is not PIPELINE\.SCHEDULE"):
        schedules.parse_names(["orders.weekly"], pipelines)
