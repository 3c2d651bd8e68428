"""Per-instance throughput of the task handler, on loopback.

`python -m bench.handler` (`make bench-handler`). One handler process, as Cloud Run runs one
instance, serves I/O-bound tasks (each sleeps --task-seconds, 0.2 s) with --in-flight (80,
Cloud Run's default concurrency) requests always outstanding: the ideal is in-flight /
task-seconds = 400 tasks/s. Scenarios, each with a fresh handler:
  in memory, 80 threads    what TASK_CONCURRENCY=80 (the default) gives
  in memory, 8 threads     the former fixed 8 threads, for the ratio
  proxy (node app)         proxy mode (TASK_APP_URL): the Node example app does the same
                           work (answers after 0.2 s) behind the handler; its throughput
                           against the in-process 80 threads' and the latency it adds
  firestore, 80 threads    claims in Google's Firestore emulator (when gcloud is installed):
                           the same run, plus the claim's latency as the handler logs it
The load generator is asyncio on one thread: 80 keep-alive connections, each sending its next
request as soon as the previous answer arrives, so the figure measures the handler.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from local.processes import gcloud_available, running, start_firestore_emulator
from local.processes import start_handler as start_handler_process
from soak.node_app import start_node_app
from taskclient import tracing

TARGET_SHARE = 0.9
PROXY_TARGET_SHARE = 0.85
"""Proxy mode's throughput against the in-process processor's, for the same work."""
TASK_SECONDS = float(os.environ.get("BENCH_TASK_SECONDS", "0.2"))


def sleep_task(_task: object) -> None:
    """The benchmark's processor (TASK_PROCESSOR=bench.handler:sleep_task): I/O-bound work."""
    time.sleep(TASK_SECONDS)


@dataclass(frozen=True)
class Result:
    scenario: str
    threads: int
    tasks: int
    seconds: float
    latencies: list[float]
    errors: int
    claim_ms: list[float]

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _connection(
    port: int,
    run: str,
    names: "asyncio.Queue[int]",
    latencies: list[float],
    errors: list[int],
    target: str,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                n = names.get_nowait()
            except asyncio.QueueEmpty:
                return
            # A trace context per task, as taskclient sends it: the handler's span and log
            # fields are part of the measured path.
            request = (
                f"POST {target} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: 2\r\nX-CloudTasks-QueueName: bench\r\n"
                f"traceparent: {tracing.new_trace()['traceparent']}\r\n"
                f"X-CloudTasks-TaskName: {run}-{n}\r\n\r\n{{}}"
            )
            started = time.perf_counter()
            writer.write(request.encode())
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status:
                errors.append(n)
    finally:
        writer.close()


async def _load(
    port: int, tasks: int, in_flight: int, target: str
) -> tuple[float, list[float], int]:
    run = uuid.uuid4().hex[:8]
    names: asyncio.Queue[int] = asyncio.Queue()
    for n in range(tasks):
        names.put_nowait(n)
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, run, names, latencies, errors, target) for _ in range(in_flight))
    )
    return time.perf_counter() - started, latencies, len(errors)


def run_scenario(
    scenario: str,
    threads: int,
    tasks: int,
    in_flight: int,
    log: Path,
    env: Mapping[str, str],
    target: str = "/bench",
) -> Result:
    """`env` with TASK_APP_URL: proxy mode, the app does the work (at `target`)."""
    processor = {} if "TASK_APP_URL" in env else {"TASK_PROCESSOR": "bench.handler:sleep_task"}
    handler_env = {
        **processor,
        "TASK_CONCURRENCY": str(threads),
        "BENCH_TASK_SECONDS": str(TASK_SECONDS),
        "GOOGLE_CLOUD_PROJECT": "bench-project",
        **env,
    }
    with running(start_handler_process(log, env=handler_env)) as handler:
        # Warm-up: connections, clients (and the app's pool in proxy mode).
        asyncio.run(_load(handler.port, in_flight, in_flight, target))
        skip = len(handler.log_lines())
        seconds, latencies, errors = asyncio.run(_load(handler.port, tasks, in_flight, target))
        claim_ms = [
            float(line["claimMs"])  # pyright: ignore[reportArgumentType]
            for line in handler.log_lines()[skip:]
            if line.get("status") == "done" and "claimMs" in line
        ]
    return Result(scenario, threads, tasks, seconds, latencies, errors, claim_ms)


def _print(results: list[Result], in_flight: int) -> None:
    ideal = in_flight / TASK_SECONDS
    print(
        f"\n{'scenario':<26}{'threads':>8}{'tasks':>7}{'tasks/s':>9}{'of ideal':>10}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'claim p50':>11}{'claim p99':>11}{'errors':>8}"
    )
    for r in results:
        lat = [s * 1000 for s in r.latencies]
        print(
            f"{r.scenario:<26}{r.threads:>8}{r.tasks:>7}{r.rate:>9.0f}{r.rate / ideal:>9.0%} "
            f"{percentile(lat, 0.5):>8.0f}{percentile(lat, 0.99):>8.0f}"
            f"{percentile(r.claim_ms, 0.5):>9.1f}ms{percentile(r.claim_ms, 0.99):>9.1f}ms"
            f"{r.errors:>8}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.handler", description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per 80-thread run")
    parser.add_argument("--in-flight", type=int, default=80, help="requests outstanding (80)")
    args = parser.parse_args()
    if args.tasks < 1 or args.in_flight < 1:
        print("error: --tasks and --in-flight must be >= 1", file=sys.stderr)
        return 2
    ideal = args.in_flight / TASK_SECONDS
    print(
        f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPUs; one handler process (one gunicorn"
        f" worker); {TASK_SECONDS:g} s I/O-bound tasks, {args.in_flight} in flight: ideal"
        f" {ideal:.0f} tasks/s; load generator: asyncio, one thread, in this process.",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-handler-") as logs:
        logs_dir = Path(logs)
        results = [
            run_scenario("in memory", 80, args.tasks, args.in_flight, logs_dir / "m80.log", {}),
            # A tenth of the tasks: 8 threads take ten times as long.
            run_scenario(
                "in memory", 8, max(1, args.tasks // 10), args.in_flight, logs_dir / "m8.log", {}
            ),
        ]
        # Proxy mode: the same work done by the Node example app behind the handler.
        with running(start_node_app(logs_dir / "node-app.log")) as app:
            results.append(
                run_scenario(
                    "proxy (node app)",
                    80,
                    args.tasks,
                    args.in_flight,
                    logs_dir / "p80.log",
                    {"TASK_APP_URL": f"http://127.0.0.1:{app.port}"},
                    f"/sleep?ms={round(TASK_SECONDS * 1000)}",
                )
            )
        if gcloud_available():
            with running(start_firestore_emulator(logs_dir / "firestore.log")) as emulator:
                env = {
                    "FIRESTORE_EMULATOR_HOST": emulator.address,
                    "GOOGLE_CLOUD_PROJECT": "bench-project",
                    "TASK_FIRESTORE_DATABASE": "bench-tasks",
                }
                log = logs_dir / "f80.log"
                results.append(
                    run_scenario("firestore emulator", 80, args.tasks, args.in_flight, log, env)
                )
        else:
            print("SKIPPED: gcloud or java missing, no Firestore emulator run")
    _print(results, args.in_flight)
    memory80, memory8, proxy = results[0], results[1], results[2]
    print(
        f"\n80 threads / 8 threads: {memory80.rate / memory8.rate:.1f}x; in memory at 80 threads:"
        f" {memory80.rate / ideal:.0%} of the ideal (target >= {TARGET_SHARE:.0%}):"
        f" {'met' if memory80.rate >= TARGET_SHARE * ideal else 'NOT met'}"
    )
    in_process = [s * 1000 for s in memory80.latencies]
    proxied = [s * 1000 for s in proxy.latencies]
    share = proxy.rate / memory80.rate
    print(
        f"proxy mode (the Node example app does the work) at 80 threads: {proxy.rate:.0f}"
        f" tasks/s, {share:.0%} of the in-process processor's {memory80.rate:.0f} (target >="
        f" {PROXY_TARGET_SHARE:.0%}): {'met' if share >= PROXY_TARGET_SHARE else 'NOT met'};"
        " added latency per task: p50"
        f" {percentile(proxied, 0.5) - percentile(in_process, 0.5):+.1f} ms, p99"
        f" {percentile(proxied, 0.99) - percentile(in_process, 0.99):+.1f} ms"
    )
    if len(results) == 4:
        claims = results[3].claim_ms
        print(
            f"firestore emulator at 80 threads: {results[3].rate / ideal:.0%} of the ideal; the"
            f" claim (a read and a conditional write) adds p50 {percentile(claims, 0.5):.1f} ms,"
            f" p99 {percentile(claims, 0.99):.1f} ms before the work starts (completing the"
            " record is one more write after it). The emulator is a JVM on this machine,"
            " sharing its CPUs with the handler: not Firestore's latency."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
