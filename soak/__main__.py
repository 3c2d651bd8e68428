"""`python -m soak` (`make soak`): the handler under faults, on Google's emulators.

Three handler processes share the Firestore emulator (idempotency records) and the Pub/Sub
emulator (dead letters). Tasks take up to 50 ms, --long-share of them 8-12 s (longer than a
claim's lease), --reject-share are rejected by the processor. This process plays Cloud
Tasks: each task is delivered --copies times at once (at-least-once delivery's duplicates),
each copy to a random live handler and again, with the next retry count, after any answer
but a 2xx, until one comes. Meanwhile the main thread (which must outlive the children it
starts: local/processes.py) injects faults:
  - a random handler SIGKILLed every --kill-every seconds (on average), restarted a second
    later;
  - the Firestore emulator frozen (SIGSTOP) for --freeze-seconds every --freeze-every
    seconds;
  - the Pub/Sub emulator frozen for --pubsub-down-seconds, once, --pubsub-down-at seconds
    into the run;
  - with --contention, a busy loop on every core for the whole run (CPU starvation: the
    scheduling pauses that make a lease lapse), stopped at the end.
The run ends when every copy is acknowledged, or at --time-limit (what is left then is lost).
It prints the figures soak/report.py defines, doubled runs beyond the guarantee envelope by
cause, and its verdict: PASS, or FAIL and exit 1 on any lost task, doubled run inside the
envelope, or effect not applied exactly once (docs/guarantees.md).
Every process binds 127.0.0.1 on a free port, in its own process group, and dies with this
one (local/processes.py).
With --proxy the handlers run in proxy mode (TASK_APP_URL) in front of a Node app doing the
same work (soak/app.js), one app behind all three, as one downstream store behind every
instance: a handler SIGKILLed cuts its forwards, the app finishes them.
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from local.processes import (
    Child,
    group_members,
    running,
    start_busy_loop,
    start_gcloud_emulators,
    start_handler,
)
from soak.node_app import start_node_app
from soak.report import Run, SoakReport, judge

SOAK_APP = Path(__file__).resolve().parent / "app.js"

PROJECT = "soak-project"
DATABASE = "tasks-soak"
HANDLERS = 3
# 15 s: Cloud Tasks' smallest dispatch deadline: a 13.5 s answer budget, a 7.5 s lease
# (handler/deadlines.py), so a killed handler's claims block their tasks for 7.5 s at most.
DISPATCH_DEADLINE_S = 15
# Long tasks outlive their 7.5 s lease (renewed while they run) but answer within the budget.
LONG_S = (8.0, 12.0)
SETTLED = ("done", "duplicate", "rejected")
"""Statuses a handler logs once the task's outcome record is written. Not "dead_lettered":
for a run whose processor returned it means the `processed` record could not be written in
time and the store kept writing it in the background ("task outcome written" once landed):
an instance killed before that leaves the task to run again (beyond the envelope)."""
WRITTEN = "task outcome written"


@dataclass
class Incarnation:
    name: str
    child: Child
    runs: Path
    killed: bool = False


@dataclass
class Handlers:
    """HANDLERS slots, each running one handler incarnation at a time."""

    directory: Path
    env: dict[str, str]
    effects: Path
    slots: list[Incarnation | None] = field(default_factory=lambda: [None] * HANDLERS)
    incarnations: list[Incarnation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, slot: int) -> None:
        name = f"h{slot}-{len(self.incarnations)}"
        runs = self.directory / f"{name}.runs"
        env = {**self.env, "SOAK_RUNS_FILE": str(runs), "SOAK_EFFECTS_DIR": str(self.effects)}
        child = start_handler(self.directory / f"{name}.log", env=env)
        incarnation = Incarnation(name, child, runs)
        with self.lock:
            self.slots[slot] = incarnation
            self.incarnations.append(incarnation)

    def kill(self, slot: int) -> None:
        with self.lock:
            incarnation, self.slots[slot] = self.slots[slot], None
        if incarnation is not None:
            incarnation.killed = True
            os.killpg(incarnation.child.process.pid, signal.SIGKILL)
            incarnation.child.process.wait()

    def addresses(self) -> list[tuple[str, str]]:
        """(address, incarnation name) of each live handler."""
        with self.lock:
            return [(i.child.address, i.name) for i in self.slots if i is not None]

    def stop(self) -> None:
        for incarnation in self.incarnations:
            incarnation.child.stop()


@dataclass
class Deliveries:
    """Cloud Tasks' side: copies of each task delivered until acknowledged."""

    handlers: Handlers
    queue: str
    end: float
    count: int = 0
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, handler: tuple[str, str], name: str, retry: int, body: bytes) -> int | None:
        address, incarnation = handler
        host, port = address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=DISPATCH_DEADLINE_S)
        headers = {
            "Content-Type": "application/json",
            "X-CloudTasks-QueueName": self.queue,
            "X-CloudTasks-TaskName": name,
            "X-CloudTasks-TaskRetryCount": str(retry),
            "X-CloudTasks-TaskExecutionCount": str(retry),
            # Which runs file a proxy-mode run goes to (soak/app.js); the handler passes it on.
            "X-Soak-Handler": incarnation,
        }
        try:
            connection.request("POST", "/soak", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None  # killed, frozen past the deadline: Cloud Tasks retries
        finally:
            connection.close()

    def copy(self, name: str, body: bytes) -> None:
        retry = 0
        while time.monotonic() < self.end:
            addresses = self.handlers.addresses()
            if not addresses:
                time.sleep(0.2)
                continue
            status = self.post(random.choice(addresses), name, retry, body)
            with self.lock:
                self.count += 1
                if status is not None and 200 <= status < 300:
                    self.acknowledged.add(name)
                    return
            retry += 1
            time.sleep(random.uniform(0.1, 0.5))  # Cloud Tasks' backoff starts at 0.1 s


def pull_dead_letters(subscription: str) -> list[dict[str, str]]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    letters: list[dict[str, str]] = []
    while True:
        response = subscriber.pull(subscription=subscription, max_messages=500, timeout=30)
        if not response.received_messages:
            return letters
        letters += [dict(m.message.attributes) for m in response.received_messages]
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
        )


def completed_runs(handlers: Handlers) -> tuple[list[Run], set[Run], set[str]]:
    """Every completed run, those cut by a SIGKILL before their answer was logged (in proxy
    mode, by the forward's worker if the app outlived the request), and the tasks a handler
    logged its claim lost on."""
    runs: list[Run] = []
    cut: set[Run] = set()
    lost: set[str] = set()
    for incarnation in handlers.incarnations:
        lines = incarnation.runs.read_text().splitlines() if incarnation.runs.exists() else []
        mine = [
            Run(fields[0], incarnation.name, n, fields[-1] == "committed")
            for n, fields in enumerate(line.split() for line in lines)
        ]
        runs += mine
        lost |= {
            str(line.get("taskName"))
            for line in incarnation.child.log_lines()
            if line.get("status") == "claim_lost"
        }
        if incarnation.killed:
            written = {
                line.get("taskName")
                for line in incarnation.child.log_lines()
                if line.get("status") in SETTLED or line.get("message") == WRITTEN
            }
            cut |= {run for run in mine if run.task not in written}
    return runs, cut, lost


def applied_effects(directory: Path) -> dict[str, bool]:
    """Per task with an effect file, whether its effect was applied (soak/processor.py)."""
    return {
        path.name: len(fields := path.read_text().split()) > 1 and fields[1] != "-"
        for path in directory.iterdir()
    }


def contention(count: int, directory: Path) -> list[Child]:
    """COUNT busy loops, each in its own process group, dying with this process."""
    return [start_busy_loop(directory / f"busy-{n}.log") for n in range(count)]


class Faults:
    """The fault schedule, run from the main thread between checks."""

    def __init__(
        self, args: argparse.Namespace, handlers: Handlers, firestore: Child, pubsub: Child
    ) -> None:
        self.args, self.handlers = args, handlers
        self.firestore, self.pubsub = firestore, pubsub
        self.kills = self.freezes = 0
        self.pubsub_down_s = 0.0
        self.started = time.monotonic()
        self.next_kill = self.started + random.expovariate(1 / args.kill_every)
        self.next_freeze = self.started + args.freeze_every
        self.pubsub_done = False

    def step(self) -> None:
        now = time.monotonic()
        if now >= self.next_kill:
            slot = random.randrange(HANDLERS)
            self.handlers.kill(slot)
            self.kills += 1
            time.sleep(1.0)
            self.handlers.start(slot)
            self.next_kill = time.monotonic() + random.expovariate(1 / self.args.kill_every)
        if now >= self.next_freeze:
            self.freeze(self.firestore, self.args.freeze_seconds)
            self.freezes += 1
            self.next_freeze = time.monotonic() + self.args.freeze_every
        if not self.pubsub_done and now - self.started >= self.args.pubsub_down_at:
            self.freeze(self.pubsub, self.args.pubsub_down_seconds)
            self.pubsub_down_s += self.args.pubsub_down_seconds
            self.pubsub_done = True

    @staticmethod
    def freeze(child: Child, seconds: float) -> None:
        """SIGSTOPs the emulator (its launcher and JVM) for SECONDS, but not the supervisor
        that leads its process group (local.supervise): stopped, the supervisor would never
        act on the SIGTERM its parent's death sends it, and a soak killed during a freeze
        would leave the emulator frozen for good, holding its port."""
        frozen = [pid for pid in group_members(child.process.pid) if pid != child.process.pid]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


def soak(args: argparse.Namespace, directory: Path) -> SoakReport:
    random.seed(args.seed)
    firestore, pubsub = start_gcloud_emulators(
        directory / "firestore.log", directory / "pubsub.log"
    )
    with running(firestore), running(pubsub):
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.address
        from google.cloud import pubsub_v1

        topic = f"projects/{PROJECT}/topics/soak-dead-letters"
        subscription = f"projects/{PROJECT}/subscriptions/soak-replay"
        pubsub_v1.PublisherClient().create_topic(name=topic)
        pubsub_v1.SubscriberClient().create_subscription(name=subscription, topic=topic)
        env = {
            "FIRESTORE_EMULATOR_HOST": firestore.address,
            "PUBSUB_EMULATOR_HOST": pubsub.address,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "TASK_FIRESTORE_DATABASE": DATABASE,
            "TASK_DEAD_LETTER_TOPIC": topic,
            "TASK_DISPATCH_DEADLINE": f"{DISPATCH_DEADLINE_S}s",
            # Unlimited attempts, no retry duration: a task ends only done or dead-lettered
            # by its processor, so anything else missing at the end is lost.
            "TASK_MAX_ATTEMPTS": "-1",
        }
        effects = directory / "effects"
        effects.mkdir()
        app: Child | None = None
        if args.proxy:
            app_env = {"SOAK_RUNS_DIR": str(directory), "SOAK_EFFECTS_DIR": str(effects)}
            app = start_node_app(directory / "app.log", app_env, SOAK_APP)
            env["TASK_APP_URL"] = f"http://127.0.0.1:{app.port}"
        else:
            env["TASK_PROCESSOR"] = "soak.processor:process"
        handlers = Handlers(directory, env, effects)
        busy: list[Child] = []
        try:
            for slot in range(HANDLERS):
                handlers.start(slot)
            busy = contention(args.contention, directory)
            names = [f"t{n:05}" for n in range(args.tasks)]
            rejected = set(random.sample(names, int(args.tasks * args.reject_share)))
            started = time.monotonic()
            deliveries = Deliveries(
                handlers, f"soak-{uuid.uuid4().hex[:6]}", started + args.time_limit
            )
            faults = Faults(args, handlers, firestore, pubsub)
            with ThreadPoolExecutor(args.workers) as pool:
                copies = []
                for name in names:
                    long = random.random() < args.long_share
                    sleep = random.uniform(*LONG_S) if long else random.uniform(0, 0.05)
                    body = json.dumps({"sleepSeconds": sleep, "reject": name in rejected}).encode()
                    copies += [pool.submit(deliveries.copy, name, body) for _ in range(args.copies)]
                while not all(copy.done() for copy in copies):
                    faults.step()
                    time.sleep(0.5)
            seconds = time.monotonic() - started
            for loop in busy:
                loop.stop()
            runs, cut, claim_lost = completed_runs(handlers)
            letters = pull_dead_letters(subscription)
        finally:
            for loop in busy:
                loop.stop()
            handlers.stop()
            if app is not None:
                app.stop()
    return judge(
        work=[name for name in names if name not in rejected],
        rejected=sorted(rejected),
        acknowledged=deliveries.acknowledged,
        runs=runs,
        cut_after_return=cut,
        dead_lettered={letter.get("taskName", "") for letter in letters},
        deliveries=deliveries.count,
        kills=faults.kills,
        firestore_freezes=faults.freezes,
        pubsub_down_s=faults.pubsub_down_s,
        seconds=seconds,
        claim_lost=claim_lost,
        effects=applied_effects(effects),
        contention=args.contention,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the list of faults
    )
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--copies", type=int, default=3, help="deliveries of each task at once")
    parser.add_argument("--reject-share", type=float, default=0.05)
    parser.add_argument(
        "--long-share", type=float, default=0.02, help="tasks that take 8-12 s (past a lease)"
    )
    parser.add_argument("--workers", type=int, default=60, help="deliveries in flight")
    parser.add_argument("--kill-every", type=float, default=8.0)
    parser.add_argument("--freeze-every", type=float, default=20.0)
    parser.add_argument("--freeze-seconds", type=float, default=3.0)
    parser.add_argument("--pubsub-down-at", type=float, default=15.0)
    parser.add_argument("--pubsub-down-seconds", type=float, default=10.0)
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--contention",
        type=int,
        nargs="?",
        const=os.cpu_count() or 1,
        default=0,
        help="busy loops run meanwhile (CPU contention); without a number, one per core",
    )
    parser.add_argument("--keep", type=Path, help="keep logs and runs files here")
    parser.add_argument(
        "--proxy",
        action="store_true",
        help="proxy mode: the handlers forward to a Node app doing the work (soak/app.js)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            directory = args.keep
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        report = soak(args, directory)
    print(report.text())
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
