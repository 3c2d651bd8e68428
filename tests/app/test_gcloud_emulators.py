"""Google's Firestore and Pub/Sub emulators (from the installed Google Cloud CLI) as the
tests and `make local` start them: loopback only, usable, and never left running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.processes import REPO, group_members, start_firestore_emulator, start_pubsub_emulator
from tests.app.helpers import listening_addresses, require_gcloud

pytestmark = pytest.mark.timeout(240)

require_gcloud("the Firestore and Pub/Sub emulator tests")


# /proc/net/tcp{,6} spellings of 127.0.0.1, ::ffff:127.0.0.1 (Java's IPv4 sockets) and ::1.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def group_jvms(pgid: int) -> set[int]:
    """The Java processes in process group PGID (other runs on this machine have their own)."""
    found = set()
    for pid in group_members(pgid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue  # exited while we looked
        if command.endswith(b"java"):
            found.add(pid)
    return found


def test_both_serve_on_loopback_and_stop_with_their_jvm(tmp_path: Path) -> None:
    firestore = start_firestore_emulator(tmp_path / "firestore.log")
    try:
        pubsub = start_pubsub_emulator(tmp_path / "pubsub.log")
        try:
            for port in (firestore.port, pubsub.port):
                assert set(listening_addresses(port)) <= LOOPBACK
                assert listening_addresses(port)
            code = (
                "from google.cloud import firestore, pubsub_v1\n"
                "db = firestore.Client(project='p', database='tasks-test')\n"
                "db.collection('c').document('d').set({'n': 1})\n"
                "assert db.collection('c').document('d').get().to_dict() == {'n': 1}\n"
                "publisher = pubsub_v1.PublisherClient()\n"
                "publisher.create_topic(name='projects/p/topics/dead-letters')\n"
                "topic = 'projects/p/topics/dead-letters'\n"
                "print(publisher.publish(topic, b'x' * 900_000).result())\n"
            )
            env = {
                **os.environ,
                "FIRESTORE_EMULATOR_HOST": firestore.address,
                "PUBSUB_EMULATOR_HOST": pubsub.address,
            }
            result = subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == "1"
            assert len(group_jvms(firestore.process.pid)) == 1
            assert len(group_jvms(pubsub.process.pid)) == 1
        finally:
            pubsub.stop()
    finally:
        firestore.stop()
    assert group_jvms(firestore.process.pid) | group_jvms(pubsub.process.pid) == set()


def test_their_jvms_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom pathlib import Path\n"
        "from local.processes import start_firestore_emulator, start_pubsub_emulator\n"
        f"f = start_firestore_emulator(Path({str(tmp_path / 'f.log')!r}))\n"
        f"p = start_pubsub_emulator(Path({str(tmp_path / 'p.log')!r}))\n"
        "print(f.process.pid, p.process.pid, flush=True)\ntime.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
    )  # fmt: skip
    groups: list[int] = []
    try:
        assert parent.stdout is not None
        groups = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(groups) == 2 and all(len(group_jvms(g)) == 1 for g in groups)
        os.kill(parent.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(group_jvms(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [group_jvms(g) for g in groups] == [set(), set()]
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
