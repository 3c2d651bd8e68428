"""Bulk enqueue when the backend fails: figures, not pass/fail tests.

`python -m bench.enqueue_faults` (part of `make bench-enqueue`). Two scenarios, each with
5,000 lines through the real CLI (`python -m taskclient bulk --json`):
  backend down      a loopback server that accepts connections and drops them (what a
                    dead backend behind a live address looks like): how long until the run
                    gives up, its exit status, and whether every line is accounted for
  cut halfway       the emulator behind a loopback proxy that is cut once about half the
                    tasks exist; then the --failed-out file is re-run against the emulator
                    itself, with the same de-dup keys: every id must end up exactly once
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from google.cloud import tasks_v2

from local.processes import REPO, running, start_emulator
from taskclient import transport

SERVICE_URL = "https://orders-xyz-uc.a.run.app"
RETRY_DEADLINE_S = 60


class Proxy:
    """A loopback TCP proxy on its own thread that can be cut: listener and every
    connection closed at once, as when a backend's network goes away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        def close_all() -> None:
            self.server.close()
            for writer in self.writers:
                writer.transport.abort()

        self.loop.call_soon_threadsafe(close_all)

    def stop(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class LoopbackServer:
    """A loopback TCP server that is not Cloud Tasks: it drops each connection at once
    (`drop`: every call fails with UNAVAILABLE, as from a dead backend behind a live
    address) or holds it silently (`hang`: calls wait for an answer that never comes)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            if self.mode == "drop":
                connection.close()
            else:
                self.held.append(connection)

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        for connection in self.held:
            connection.close()
        self.server.close()


def _outputs(directory: Path, queue: str) -> Path:
    path = directory / "pipelines.json"
    entry = {
        "queue": queue,
        "queueName": queue.rsplit("/", 1)[-1],
        "location": "us-central1",
        "serviceName": "orders",
        "serviceUrl": SERVICE_URL,
        "invokerServiceAccount": "orders-invoker@bench-project.iam.gserviceaccount.com",
    }
    path.write_text(json.dumps({"orders": entry}))
    return path


def _bulk(outputs: Path, address: str, source: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "taskclient", "bulk", "--outputs", str(outputs),
            "--pipeline", "orders", "--emulator", address, "--input", str(source),
            "--dedup-field", "id", "--json", "--retry-deadline", f"{RETRY_DEADLINE_S}s", *extra,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=REPO, start_new_session=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=RETRY_DEADLINE_S + 60)
    report = json.loads(out)
    report["exit"] = process.returncode
    return report


def _counts(report: dict[str, Any]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in report["outcomes"].items() if n)


def backend_down(lines: Path, work: Path) -> None:
    server = LoopbackServer("drop")
    try:
        outputs = _outputs(work, "projects/bench-project/locations/us-central1/queues/down")
        started = time.monotonic()
        report = _finish(_bulk(outputs, server.address, lines))
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    accounted = sum(report["outcomes"].values())
    print(
        f"backend down:  {elapsed:5.1f} s (retry deadline {RETRY_DEADLINE_S} s + 5 s ="
        f" {RETRY_DEADLINE_S + 5} s allowed), exit {report['exit']} (3 = aborted),"
        f" {accounted}/{report['lines']} lines accounted for: {_counts(report)}"
    )


def cut_halfway(lines: Path, work: Path, total: int, rtt_ms: float) -> None:
    with running(start_emulator(work / "emulator.log", rtt_ms=rtt_ms)) as emulator:
        admin = transport.sync_client(emulator.address)
        queue = f"projects/bench-project/locations/us-central1/queues/cut-{uuid.uuid4().hex[:8]}"
        admin.create_queue(parent=queue.rsplit("/", 2)[0], queue=tasks_v2.Queue(name=queue))
        admin.pause_queue(name=queue)
        outputs = _outputs(work, queue)
        proxy = Proxy(emulator.port)
        failed_out = work / "again.jsonl"
        try:
            run = _bulk(outputs, f"127.0.0.1:{proxy.port}", lines, "--failed-out", str(failed_out))
            while _stored(admin, queue) < total // 2:
                time.sleep(0.1)
            proxy.cut()
            first = _finish(run)
        finally:
            proxy.stop()
        again = failed_out.read_text().splitlines()
        second = _finish(_bulk(outputs, emulator.address, failed_out))
        stored = _stored(admin, queue)
        admin.transport.close()
    accounted = sum(first["outcomes"].values())
    print(
        f"cut halfway:   first run exit {first['exit']}, {accounted}/{first['lines']} lines"
        f" accounted for: {_counts(first)}\n"
        f"               --failed-out: {len(again)} lines; re-run exit {second['exit']}:"
        f" {_counts(second)}\n"
        f"               tasks stored: {stored} for {total} ids"
        f" ({'each exactly once' if stored == total else 'MISMATCH'})"
    )


def _stored(admin: tasks_v2.CloudTasksClient, queue: str) -> int:
    return sum(1 for _ in admin.list_tasks(request={"parent": queue, "page_size": 1000}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue_faults", description=__doc__)
    parser.add_argument("--lines", type=int, default=5000, help="input lines (5000)")
    parser.add_argument("--rtt-ms", type=float, default=30.0, help="simulated round trip (30)")
    args = parser.parse_args(argv)
    if args.lines < 2 or args.rtt_ms < 0:
        print("error: --lines must be >= 2, --rtt-ms >= 0", file=sys.stderr)
        return 2
    print(f"\n{args.lines} lines per run through the CLI, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as directory:
        work = Path(directory)
        lines = work / "lines.jsonl"
        lines.write_text("".join(json.dumps({"id": n}) + "\n" for n in range(args.lines)))
        backend_down(lines, work)
        cut_halfway(lines, work, args.lines, args.rtt_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
