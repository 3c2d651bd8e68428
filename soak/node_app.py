"""The example Node app (examples/node-app/server.js), or the soak's (soak/app.js), as a
child process, for the proxy-mode soak, benchmark and tests: on a free 127.0.0.1 port, in its
own process group, under local.supervise (ready once GET /healthz answers; taken down with
this process however it ends), stopped with `Child.stop()`."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from local.processes import REPO, Child, StartError, free_port

SERVER = REPO / "examples" / "node-app" / "server.js"
READY_TIMEOUT_S = 30.0


def start_node_app(log: Path, env: Mapping[str, str] | None = None, script: Path = SERVER) -> Child:
    """`script` (default: the example app) with PORT set to a free port."""
    node = shutil.which("node")
    if node is None:
        raise StartError("the Node example app needs `node` on PATH")
    port = free_port()
    command = [sys.executable, "-m", "local.supervise", "--port", str(port)]
    command += ["--ready-path", "/healthz", "--parent", str(os.getpid()), "--", node, str(script)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, **(env or {}), "PORT": str(port)},
            start_new_session=True,
        )
    child = Child(name="node app", process=process, log=log, port=port)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        # local.supervise's line, once /healthz answers (the app's own has a "message").
        while not any(
            line.get("port") == port and "message" not in line for line in child.log_lines()
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                raise StartError(f"the Node app did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
    except BaseException:
        child.stop()
        raise
    return child


def runs(app: Child) -> list[dict[str, object]]:
    """What the app recorded (GET /runs)."""
    with urllib.request.urlopen(f"http://{app.address}/runs", timeout=30) as response:
        return cast(list[dict[str, object]], json.loads(response.read()))
