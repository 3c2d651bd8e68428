"""`make local` with a proxy pipeline: its app runs as `localCommand`, gets its PORT, sits
behind a handler of its own (TASK_APP_URL), and is always stopped, even when `make local`
is killed outright."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from local.__main__ import Shared, _handler_env
from local.processes import REPO, Child, group_members
from local.stack_config import StackConfigError, read_stack
from tests.app.helpers import LOCAL_STACK, LocalRun, listening_addresses, wait_for

pytestmark = pytest.mark.timeout(120)

# Any program in any language: this one writes what it was started with, then serves.
APP = """
import http.server, json, os, sys
with open(os.environ["APP_RECORD"], "w") as record:
    json.dump({"port": os.environ.get("PORT"), "cwd": os.getcwd(),
               "greeting": os.environ.get("GREETING")}, record)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Ok).serve_forever()
"""


def proxy_stack(app: Path, record: Path, *, probe: str = "") -> str:
    command = json.dumps([sys.executable, str(app)])
    return LOCAL_STACK + (
        "    thumbnails:\n"
        "      service:\n"
        "        image: us-docker.pkg.dev/cloudrun/container/hello\n"
        "        app:\n"
        "          image: us-docker.pkg.dev/cloudrun/container/hello\n"
        f"          env: {{GREETING: hello, APP_RECORD: {json.dumps(str(record))}}}\n"
        f"          localCommand: {command}\n"
        f"{probe}"
    )


@pytest.fixture
def proxy_root(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """ROOT whose dev stack adds the pipeline `thumbnails` with an app; the app's record."""
    app, record = tmp_path / "app.py", tmp_path / "app-record.json"
    app.write_text(APP)
    (root / "Pulumi.dev.yaml").write_text(proxy_stack(app, record))
    return root, record


def processor(local: LocalRun, name: str) -> str:
    """What the handler NAME says it runs, from its start-up settings line (TASK_APP_URL
    read by the handler itself; gunicorn's process titles overwrite /proc/PID/environ)."""
    run = json.loads((local.directory / "run.json").read_text())
    log = Path(run["children"][name]["log"])

    def said() -> str | None:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and (entry := json.loads(line)).get("message") == "settings":
                return str(entry["processor"])
        return None

    return wait_for(said, f"{name}'s settings line")


def test_a_pipeline_with_an_app_and_no_local_command_is_refused(root: Path) -> None:
    image = "service: {image: us-docker.pkg.dev/cloudrun/container/hello"
    reports = f"{image}}}\n      queue: {{maxAttempts: 3}}"
    assert reports in LOCAL_STACK
    (root / "Pulumi.dev.yaml").write_text(
        LOCAL_STACK.replace(
            reports, f"{image}, app: {{image: a/b}}}}\n      queue: {{maxAttempts: 3}}"
        )
    )
    with pytest.raises(StackConfigError) as refused:
        read_stack(root, "dev")
    assert str(refused.value).splitlines() == [
        "Pulumi.dev.yaml: 1 pipeline with an app can't run locally:",
        "  pipelines.reports.service.app.localCommand: required by `make local` for a pipeline"
        " with an app (the command that runs the app here, from the repository's root, e.g."
        ' ["node", "examples/node-app/server.js"])',
    ]


def test_the_app_gets_its_port_and_env_and_its_own_handler_points_at_it(
    proxy_root: tuple[Path, Path], start_local: Callable[..., LocalRun]
) -> None:
    _, record = proxy_root
    local = start_local()
    app, proxy, shared = (
        local.children[name] for name in ("thumbnails app", "thumbnails handler", "handler")
    )
    started = json.loads(record.read_text())
    assert started == {"port": str(app["port"]), "cwd": str(REPO), "greeting": "hello"}
    assert processor(local, "thumbnails handler") == (
        f"the app at http://127.0.0.1:{app['port']} (proxy mode)"
    )
    assert "proxy mode" not in processor(local, "handler")
    outputs = json.loads((local.directory / "pipelines.json").read_text())
    assert outputs["thumbnails"]["serviceUrl"] == f"http://127.0.0.1:{proxy['port']}"
    assert outputs["orders"]["serviceUrl"] == f"http://127.0.0.1:{shared['port']}"
    os.killpg(local.process.pid, signal.SIGTERM)
    assert local.process.wait(30) == 0
    for child in (app, proxy, shared):
        assert listening_addresses(child["port"]) == []
        assert group_members(child["pid"]) == []


def test_the_app_is_stopped_when_make_local_is_killed(
    proxy_root: tuple[Path, Path], start_local: Callable[..., LocalRun]
) -> None:
    local = start_local()
    app = local.children["thumbnails app"]
    assert group_members(app["pid"])
    # SIGKILL to `python -m local` alone, not its group: nothing of ours runs after it.
    os.kill(local.process.pid, signal.SIGKILL)
    local.process.wait(30)
    wait_for(lambda: not group_members(app["pid"]) or None, "the app's group to be gone")
    assert listening_addresses(app["port"]) == []


def test_an_app_that_never_gets_ready_stops_the_run(
    root: Path, tmp_path: Path, start_local: Callable[..., LocalRun]
) -> None:
    """The probe path is what counts: an app answering 404 there never starts its handler."""
    app, record = tmp_path / "app.py", tmp_path / "app-record.json"
    app.write_text(APP.replace("send_response(200)", "send_response(404)"))
    probe = "          startupProbe: {path: /ready}\n"
    (root / "Pulumi.dev.yaml").write_text(proxy_stack(app, record, probe=probe))
    with pytest.raises(pytest.fail.Exception, match="thumbnails app did not report its port"):
        start_local()


def test_a_proxy_pipelines_handler_publishes_to_its_own_topic(
    proxy_root: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = proxy_root
    orders, reports, thumbnails = read_stack(root, "dev")
    assert (orders.app, reports.app) == (None, None)
    assert thumbnails.app is not None and thumbnails.app.env["GREETING"] == "hello"
    pubsub = Child("pubsub emulator", cast(subprocess.Popen[bytes], None), tmp_path, 2222)
    # orders and reports share a handler (no topic); thumbnails' handler serves it alone.
    shared = Shared(None, pubsub, None, {"thumbnails": thumbnails.dead_letter_topic}, "")
    tasks = Child("tasks emulator", cast(subprocess.Popen[bytes], None), tmp_path, 3333)
    assert "TASK_DEAD_LETTER_TOPIC" not in _handler_env([orders, reports], shared, tasks, None)
    env = _handler_env([thumbnails], shared, tasks, None)
    assert env["TASK_DEAD_LETTER_TOPIC"] == "projects/acme-local/topics/thumbnails-dead-letters"
