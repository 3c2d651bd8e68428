"""`python -m local.supervise --port N -- COMMAND...`: run COMMAND, say when it serves, and
take its whole process group down with this process, however this process ends.

The gcloud emulators' launchers are scripts that start a JVM: killing the script can leave
the JVM running, and PR_SET_PDEATHSIG only reaches a direct child. So the launcher starts this
supervisor (in its own process group, with SIGTERM as its parent-death signal), which starts
the emulator in the same group and, on SIGTERM or SIGINT (its parent's stop() or death),
SIGKILLs the group: wrapper, JVM and itself. Prints one JSON line `{"port": N}` once
http://127.0.0.1:N/ (or --ready-path) answers, or with --tcp once the port accepts a
connection, as every child started by local.processes does. A proxy pipeline's app
(`localCommand`) runs under it too: any program, in any language, with its children.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from local.die_with_parent import die_with

POLL_S = 0.2


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _serving(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _accepting(port: int) -> bool:
    """Cloud Run's default startup probe: a TCP connection to the port succeeds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local.supervise", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="where COMMAND will serve")
    parser.add_argument(
        "--ready-path", default="/", help="the path that answers 200 once it serves (/)"
    )
    parser.add_argument(
        "--tcp", action="store_true", help="ready once the port accepts a connection"
    )
    parser.add_argument("--parent", type=int, help="exit at once if this pid is not our parent")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    # SIGTERM, not SIGKILL: its handler takes the emulator's whole group down.
    if not die_with(args.parent, signal.SIGTERM):
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _kill_group)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    announced = False
    while child.poll() is None:
        ready = _accepting(args.port) if args.tcp else _serving(args.port, args.ready_path)
        if not announced and ready:
            print(json.dumps({"port": args.port}), flush=True)
            announced = True
        time.sleep(POLL_S)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
