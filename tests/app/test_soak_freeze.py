"""A soak killed while it holds an emulator frozen leaves nothing behind: the freeze stops the
emulator's processes but never the supervisor leading their group (local.supervise), which
takes the whole group down when its parent dies. Before, the freeze stopped the whole group,
supervisor included; killed then, the soak left every process of it stopped for good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from local.processes import group_members
from tests.app.helpers import wait_for

# A parent that starts a supervised child (as the soak starts its emulators), says the
# child's process group, then freezes it for far longer than the test waits.
PARENT = """
import sys
from pathlib import Path
from local.processes import start_static_server
from soak.__main__ import Faults
child = start_static_server(Path(sys.argv[1]), Path(sys.argv[2]))
print(child.process.pid, flush=True)
Faults.freeze(child, 600)
"""


def _state(pid: int) -> str:
    try:
        # /proc/PID/stat: "pid (comm) state ...": the state follows the last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def test_a_soak_killed_during_a_freeze_leaves_no_process(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path), str(tmp_path / "site.log")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    assert parent.stdout is not None
    group = int(parent.stdout.readline())
    try:
        frozen = wait_for(
            lambda: [p for p in group_members(group) if _state(p) == "T"] or None,
            "the child's server to be frozen",
        )
        assert group not in frozen  # the supervisor runs on
        assert _state(group) not in {"T", ""}
        parent.kill()
        parent.wait()
        wait_for(lambda: not group_members(group) or None, "the frozen group to be gone")
    finally:
        parent.kill()
        parent.wait()
        for pid in group_members(group):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
