"""`python -m local --stack dev` (`make local STACK=dev`): the whole loop on this machine.

Starts the Cloud Tasks emulator and the task handler on 127.0.0.1, with Google's Firestore
and Pub/Sub emulators when the Google Cloud CLI is installed (idempotency records in
Firestore, dead letters on Pub/Sub, as deployed; without it, or with --in-memory, the
handler keeps them in memory and in its log, and says so). Creates one queue per pipeline of
Pulumi.<stack>.yaml (and its dead-letter topic and subscription), writes a stack-output file
for the client, prints what it started and how to enqueue and replay, then follows the
handler's log until Ctrl-C, SIGTERM or SIGHUP and stops everything. Killed outright, it
takes its children with it (see local/processes.py).
"""

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pyprctl
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from components.durations import Duration
from components.name_rules import payload_bucket_name
from components.names import schedule_job
from components.settings.idempotency import database_for_stack
from handler.tick_wire import SCHEDULES_ENV
from local import schedules
from local.processes import (
    REPO,
    Child,
    StartError,
    gcloud_available,
    running,
    start_app,
    start_emulator,
    start_gcloud_emulators,
    start_handler,
    start_storage_emulator,
)
from local.stack_config import LocalPipeline, StackConfigError, read_stack, stack_output
from local.state import AlreadyRunning, StackState, claim, describe

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(threading.Event):
    """Set by a stop signal, remembering which, so the user sees why it stopped."""

    reason = "stop requested"

    def on_signal(self, signum: int, _frame: object) -> None:
        self.reason = signal.Signals(signum).name
        self.set()


def _say(text: str) -> None:
    # After SIGHUP the terminal may be gone: writing to it fails, and stopping must go on.
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _shown(path: Path) -> str:
    """`path` as the user would type it here: relative to the working directory if inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _die_with_parent() -> None:
    """Stop cleanly (as on SIGTERM) when whoever started us dies, e.g. a SIGKILLed `make`."""
    parent = os.getppid()
    pyprctl.set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above could take effect
        os.kill(os.getpid(), signal.SIGTERM)


def _follow(logs: list[Path], stop: threading.Event) -> None:
    """Copies the handlers' log lines to stdout until `stop` is set."""
    with contextlib.ExitStack() as files:
        sources = [
            files.enter_context(log.open(encoding="utf-8", errors="replace")) for log in logs
        ]
        while not stop.is_set():
            lines = [line for source in sources if (line := source.readline())]
            for line in lines:
                _say(line.rstrip("\n"))
            if not lines:
                stop.wait(0.2)


@dataclass(frozen=True)
class Shared:
    """Where the handler keeps what must outlive one instance: the gcloud emulators if they
    run (None: in memory and in the log), and why not otherwise."""

    firestore: Child | None
    pubsub: Child | None
    database: str | None
    dead_letter_topics: dict[str, str]
    """Pipeline name -> its topic, for each pipeline whose handler serves it alone (a
    handler publishes to one topic): a proxy pipeline, or the only one without an app."""
    note: str

    def describe(self) -> str:
        idempotency = (
            f"Firestore emulator, database {self.database}" if self.firestore else "in memory"
        )
        dead_letters = (
            f"Pub/Sub emulator, topic {', '.join(self.dead_letter_topics.values())}"
            if self.dead_letter_topics
            else "the handler's log"
        )
        return f"idempotency: {idempotency}; dead letters: {dead_letters}{self.note}"


def _create_dead_letter_subscriptions(pubsub: Child, pipelines: list[LocalPipeline]) -> None:
    """Each pipeline's topic and its one subscription, named as the stack names them."""
    channel = grpc.insecure_channel(pubsub.address)
    try:
        publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        for p in pipelines:
            publisher.create_topic(name=p.dead_letter_topic)
            subscriber.create_subscription(
                name=p.dead_letter_subscription, topic=p.dead_letter_topic
            )
    finally:
        channel.close()


@dataclass(frozen=True)
class Payloads:
    """The storage emulator and its one bucket, when a pipeline enables payloads."""

    storage: Child
    bucket: str


def _payloads(
    state: StackState, pipelines: list[LocalPipeline], keep: Callable[[Child], object]
) -> Payloads | None:
    """Starts the storage emulator (under a second) if any pipeline enables payloads, with
    one bucket named as the stack names the first such pipeline's: one handler serves
    every pipeline here, and a handler reads one bucket."""
    offloading = [p for p in pipelines if p.payloads]
    if not offloading:
        return None
    storage = start_storage_emulator(state.directory / "storage.log")
    keep(storage)
    bucket = payload_bucket_name(offloading[0].project, state.stack, offloading[0].name)
    client = Client(
        project=offloading[0].project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://{storage.address}"},
    )
    client.create_bucket(bucket)
    return Payloads(storage, bucket)


def _handler_env(
    pipelines: list[LocalPipeline], shared: Shared, emulator: Child, payloads: Payloads | None
) -> dict[str, str]:
    # One handler serves every pipeline: the smallest retry limit and the shortest dispatch
    # deadline (what is past any pipeline's answer budget is dead-lettered, never answered
    # unheard; claims are renewed, so no lease has to outlast an attempt), and the largest
    # concurrency. No retry duration: the Cloud Tasks emulator ignores retry_config and ends
    # a task after its --max-retries alone, so the handler's last attempt is that one.
    env = {
        "TASK_MAX_ATTEMPTS": str(min(p.max_attempts for p in pipelines)),
        "TASK_MAX_RETRY_DURATION": "0s",
        "TASK_DISPATCH_DEADLINE": str(min(Duration.parse(p.dispatch_deadline) for p in pipelines)),
        "TASK_CONCURRENCY": str(max(p.concurrency for p in pipelines)),
        # Schedules' ticks become tasks in the emulator's queues (handler/ticks.py).
        "TASKS_EMULATOR_HOST": emulator.address,
    }
    # Only the stack's own schedules' ticks; none without schedules (every tick refused).
    ticks = {
        schedule_job(p.name, name): s.path for p in pipelines for name, s in p.schedules.items()
    }
    if ticks:
        env[SCHEDULES_ENV] = json.dumps(ticks)
    if shared.firestore and shared.pubsub and shared.database:
        env |= {
            "FIRESTORE_EMULATOR_HOST": shared.firestore.address,
            "PUBSUB_EMULATOR_HOST": shared.pubsub.address,
            "GOOGLE_CLOUD_PROJECT": pipelines[0].project,
            "TASK_FIRESTORE_DATABASE": shared.database,
        }
    if len(pipelines) == 1 and pipelines[0].name in shared.dead_letter_topics:
        env["TASK_DEAD_LETTER_TOPIC"] = shared.dead_letter_topics[pipelines[0].name]
    if payloads is not None:
        env["TASK_PAYLOAD_BUCKET"] = payloads.bucket
        env["STORAGE_EMULATOR_HOST"] = f"http://{payloads.storage.address}"
    return env


def _shared(
    state: StackState,
    pipelines: list[LocalPipeline],
    in_memory: bool,
    keep: Callable[[Child], object],
) -> Shared:
    """Starts the gcloud emulators unless told not to or the CLI is missing; each child
    started is handed to `keep` at once, so it is stopped whatever happens next."""
    if in_memory:
        return Shared(None, None, None, {}, " (--in-memory)")
    if not gcloud_available():
        return Shared(
            None, None, None, {},
            " (gcloud or java not on PATH: the Firestore and Pub/Sub emulators did not start)",
        )  # fmt: skip
    firestore, pubsub = start_gcloud_emulators(
        state.directory / "firestore.log", state.directory / "pubsub.log"
    )
    keep(firestore)
    keep(pubsub)
    _create_dead_letter_subscriptions(pubsub, pipelines)
    database = database_for_stack(state.stack)
    # A handler publishes to one topic, and here the pipelines without an app share one
    # handler: a dead letter on another pipeline's topic would be replayed onto the wrong
    # queue. Each pipeline with an app has a handler of its own (_handlers).
    plain = [p for p in pipelines if p.app is None]
    alone = [p for p in pipelines if p.app is not None or len(plain) == 1]
    topics = {p.name: p.dead_letter_topic for p in alone}
    note = (
        f" ({len(plain)} pipelines share a handler, a handler has one topic: theirs go to its log)"
        if len(plain) > 1
        else ""
    )
    return Shared(firestore, pubsub, database, topics, note)


def _handlers(
    state: StackState,
    pipelines: list[LocalPipeline],
    env: Callable[[list[LocalPipeline]], dict[str, str]],
    keep: Callable[[Child], Child],
) -> dict[str, Child]:
    """The handler of each pipeline: one shared by the pipelines without an app; and each
    pipeline with an app gets its app (`localCommand`, PORT a free port) and a handler of
    its own in front of it (TASK_APP_URL: proxy mode). The app starts first, as the
    handler waits for its startup probe in Cloud Run (dependsOns)."""
    handlers: dict[str, Child] = {}
    plain = [p for p in pipelines if p.app is None]
    if plain:
        shared = keep(start_handler(state.directory / "handler.log", env=env(plain)))
        handlers |= dict.fromkeys((p.name for p in plain), shared)
    for p in pipelines:
        if p.app is None:
            continue
        app = keep(
            start_app(
                f"{p.name} app",
                p.app.command,
                state.directory / f"{p.name}-app.log",
                env=p.app.env,
                probe_path=p.app.probe_path,
            )
        )
        proxy_env = {**env([p]), "TASK_APP_URL": f"http://{app.address}"}
        handlers[p.name] = keep(
            start_handler(
                state.directory / f"{p.name}-handler.log", env=proxy_env, name=f"{p.name} handler"
            )
        )
    return handlers


def _stop_all(children: list[Child]) -> None:
    """Stops CHILDREN concurrently, each whatever happens to the others."""
    threads = [threading.Thread(target=child.stop, name=f"stop {child.name}") for child in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _started(
    state: StackState,
    pipelines: list[LocalPipeline],
    children: list[Child],
    handlers: dict[str, Child],
    shared: Shared,
    payloads: Payloads | None,
) -> str:
    emulator = children[0]
    outputs = state.directory / "pipelines.json"
    output = stack_output(
        pipelines,
        f"http://{handlers[pipelines[0].name].address}",
        handler_urls={name: f"http://{child.address}" for name, child in handlers.items()},
        database=shared.database,
        dead_letters=set(shared.dead_letter_topics),
        payload_bucket=payloads.bucket if payloads else None,
    )
    outputs.write_text(json.dumps(output, indent=2), encoding="utf-8")
    state.record(
        {
            "pid": os.getpid(),
            "stack": state.stack,
            "children": {
                child.name: {"pid": child.process.pid, "port": child.port, "log": str(child.log)}
                for child in children
            },
            "outputs": str(outputs),
        }
    )
    max_attempts = min(p.max_attempts for p in pipelines)
    python = _shown(REPO / ".venv" / "bin" / "python")
    rows = "".join(
        f"  {child.name.removesuffix(' emulator'):<9} {child.address}  pid {child.process.pid}"
        f"  log {_shown(child.log)}\n"
        for child in children
    )
    # The client uploads big bodies itself: the commands name the storage emulator too.
    storage = f" --storage-emulator {payloads.storage.address}" if payloads else ""
    replayable = [p.name for p in pipelines if p.name in shared.dead_letter_topics]
    replay = (
        f"replay dead letters (once what rejected them is fixed):\n"
        f"  {python} -m taskclient replay --outputs {_shown(outputs)} "
        f"--emulator {emulator.address} --pubsub-emulator {shared.pubsub.address}{storage} "
        f"--pipeline {replayable[0]}\n"
        if replayable and shared.pubsub
        else ""
    )
    scheduled = [(p, name, s) for p in pipelines for name, s in p.schedules.items()]
    ticks = (
        "schedules (fired here at their times; by hand: taskclient tick):\n"
        + "".join(
            f"  {p.name}.{name}  {s.cron!r} {s.time_zone}"
            + (" PAUSED" if s.paused else f", next {next(s.runs(datetime.now(UTC))).isoformat()}")
            + "\n"
            for p, name, s in scheduled
        )
        + f"  {python} -m taskclient tick --outputs {_shown(outputs)} "
        f"--emulator {emulator.address} --pipeline {scheduled[0][0].name}"
        f" --schedule {scheduled[0][1]}\n"
        if scheduled
        else ""
    )
    offload = (
        f"payloads: bucket {payloads.bucket} on the storage emulator at"
        f" {payloads.storage.address}\n"
        if payloads
        else ""
    )
    return (
        f"stack {state.stack} running (pid {os.getpid()}), state in {_shown(state.directory)}\n"
        f"{rows}"
        f"  outputs   {_shown(outputs)}\n"
        f"queues: {', '.join(p.queue for p in pipelines)}\n"
        f"max attempts per task: {max_attempts} (smallest maxAttempts of the stack)\n"
        f"{shared.describe()}\n"
        f"{offload}"
        f"enqueue from another terminal:\n"
        f"  {python} -m taskclient enqueue --outputs {_shown(outputs)} "
        f"--emulator {emulator.address}{storage} --pipeline {pipelines[0].name}"
        f" --data '{{\"id\": 1}}'\n"
        f"{replay}"
        f"{ticks}"
        f"stop: Ctrl-C here, or `kill {os.getpid()}` (SIGTERM or SIGHUP work too)\n"
        f"handler log follows:"
    )


def _run(
    state: StackState,
    pipelines: list[LocalPipeline],
    stop: Stop,
    in_memory: bool,
    tick_now: list[tuple[str, str]],
) -> None:
    if state.stale:
        _say(
            f"taking over {_shown(state.directory)} from a run that did not clean up"
            f" ({describe(state.stale)}): its processes died with it"
        )
    # One emulator and one handler serve every pipeline, so one retry limit: the smallest.
    max_attempts = min(p.max_attempts for p in pipelines)
    max_retries = -1 if max_attempts == -1 else max_attempts - 1
    started: list[Child] = []
    stopped: list[Child] = []
    try:
        with contextlib.ExitStack() as children:
            # Stopped in reverse order of starting (handler first), each whatever happens.
            children.callback(lambda: stopped.extend(reversed(started)))

            def keep(child: Child) -> Child:
                children.enter_context(running(child))
                started.append(child)
                return child

            emulator = keep(
                start_emulator(
                    state.directory / "emulator.log",
                    queues=[p.queue for p in pipelines],
                    max_retries=max_retries,
                )
            )
            shared = _shared(state, pipelines, in_memory, keep)
            payloads = _payloads(state, pipelines, keep)
            handlers = _handlers(
                state,
                pipelines,
                lambda served: _handler_env(served, shared, emulator, payloads),
                keep,
            )
            # Stopped first, all at once (each takes its graceful shutdown), before the
            # apps behind them and the emulators; stopping them again later is a no-op.
            children.callback(_stop_all, list({id(h): h for h in handlers.values()}.values()))
            _say(_started(state, pipelines, started, handlers, shared, payloads))
            ticker = _start_schedules(
                {name: f"http://{child.address}" for name, child in handlers.items()},
                pipelines,
                stop,
                tick_now,
            )
            _follow(list({child.log: None for child in handlers.values()}), stop)
            _say(f"stopping ({stop.reason})...")
            if ticker is not None:
                ticker.join()
    finally:
        if stopped:
            _say(
                "stopped "
                + ", ".join(
                    f"{c.name} (pid {c.process.pid}, {c.address}, exit {c.process.returncode})"
                    for c in stopped
                )
                + f"; logs and outputs kept in {_shown(state.directory)}"
            )


def _start_schedules(
    handler_urls: dict[str, str],
    pipelines: list[LocalPipeline],
    stop: threading.Event,
    tick_now: list[tuple[str, str]],
) -> threading.Thread | None:
    """Fires the --tick-now schedules at once, then every schedule at its times, in a
    thread that ends with STOP (each tick retried until the handler takes it)."""
    if not any(p.schedules for p in pipelines):
        return None
    thread = threading.Thread(
        target=schedules.run,
        args=(handler_urls, pipelines, stop, _say),
        kwargs={"tick_now": tick_now},
        name="schedules",
        daemon=True,
    )
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument("--root", type=Path, default=REPO, help="directory of Pulumi.yaml")
    parser.add_argument(
        "--state",
        type=Path,
        default=REPO / "build" / "local",
        help="where each stack gets its directory (logs, outputs, run.json)",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="without the Firestore and Pub/Sub emulators even if gcloud is installed:"
        " idempotency in memory, dead letters in the handler's log (starts in seconds)",
    )
    parser.add_argument(
        "--tick-now",
        action="append",
        default=[],
        metavar="PIPELINE.SCHEDULE",
        help="fire this schedule once at start, besides its cron times (repeatable)",
    )
    args = parser.parse_args()
    stop = Stop()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop.on_signal)
    _die_with_parent()
    try:
        pipelines = read_stack(args.root, args.stack)
        tick_now = schedules.parse_names(args.tick_now, pipelines)
    except (StackConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with claim(args.state.resolve(), args.stack) as state:
            _run(state, pipelines, stop, args.in_memory, tick_now)
    except (AlreadyRunning, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
