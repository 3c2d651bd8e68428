"""Configuration from the environment (set on the Cloud Run service; the stack sets all but
TASK_PROCESSOR and reserves them).

TASK_PROCESSOR           module:function of the processing function (default
                         handler.example:process)
TASK_MAX_ATTEMPTS        the queue's retry_config.max_attempts; unset or -1 = unlimited
                         (with no retry duration either, a retryable failure is then never
                         dead-lettered by the handler)
TASK_MAX_RETRY_DURATION  the queue's retry_config.max_retry_duration, e.g. 600s; unset or 0s =
                         unlimited. Cloud Tasks ends a task only once both limits are
                         reached, so the handler dead-letters only then (handler/app.py)
TASK_CONCURRENCY         requests served at once (gunicorn threads); default 80, Cloud Run's
                         default concurrency, so an instance takes all Cloud Run sends it
TASK_DISPATCH_DEADLINE   the queue's dispatch deadline, e.g. 600s (default 600s, Cloud
                         Tasks' default): how long an answer is heard, and a Firestore
                         claim's lease (handler/deadlines.py)
TASK_FIRESTORE_DATABASE  Firestore database id: idempotency records there, shared by every
                         instance (project GOOGLE_CLOUD_PROJECT; FIRESTORE_EMULATOR_HOST is
                         honoured); unset: in memory, per instance
TASK_DEAD_LETTER_TOPIC   projects/P/topics/T: dead letters published there (PUBSUB_EMULATOR_HOST
                         is honoured); unset: written to the log
"""

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from handler.app import Processor
from handler.dead_letter import DeadLetterSink, LogDeadLetterSink
from handler.deadlines import lease
from handler.store import IdempotencyStore, InMemoryStore

DEFAULT_PROCESSOR = "handler.example:process"
DEFAULT_CONCURRENCY = 80
MAX_CONCURRENCY = 1000  # Cloud Run's limit on a service's concurrency
DEFAULT_DISPATCH_DEADLINE = timedelta(seconds=600)
# The protobuf Duration form the components write ("600s", "0.5s"). Parsed here rather than
# with components.durations.Duration: the image holds handler/ alone, and that module needs
# pydantic, which the image doesn't install.
_SECONDS = re.compile(r"([0-9]{1,12})(\.[0-9]{1,9})?s")
_TOPIC = re.compile(r"projects/[^/\s]+/topics/[^/\s]+")


class SettingsError(ValueError):
    """A bad environment variable: the message names it and what is allowed."""


def load_processor(spec: str) -> Processor:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SettingsError(f"TASK_PROCESSOR: {spec!r} must be module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"TASK_PROCESSOR: cannot import {module_name!r}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise SettingsError(f"TASK_PROCESSOR: {module_name!r} has no function {attribute!r}")
    return cast(Processor, function)


def max_attempts(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("TASK_MAX_ATTEMPTS", "").strip()
    if not raw or raw == "-1":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"TASK_MAX_ATTEMPTS: {raw!r} must be a positive integer or -1")
    return int(raw)


def max_retry_duration(environ: Mapping[str, str]) -> timedelta | None:
    raw = environ.get("TASK_MAX_RETRY_DURATION", "").strip()
    if not raw:
        return None
    if _SECONDS.fullmatch(raw) is None:
        raise SettingsError(
            f"TASK_MAX_RETRY_DURATION: {raw!r} must be a number of seconds, e.g. '600s' (0s:"
            " unlimited)"
        )
    seconds = float(raw[:-1])
    return timedelta(seconds=seconds) if seconds > 0 else None


def processor(environ: Mapping[str, str] = os.environ) -> Processor:
    return load_processor(environ.get("TASK_PROCESSOR") or DEFAULT_PROCESSOR)


def concurrency(environ: Mapping[str, str]) -> int:
    raw = environ.get("TASK_CONCURRENCY", "").strip()
    if not raw:
        return DEFAULT_CONCURRENCY
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_CONCURRENCY:
        raise SettingsError(f"TASK_CONCURRENCY: {raw!r} must be an integer from 1 to 1000")
    return int(raw)


def duration(environ: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    match = _SECONDS.fullmatch(raw)
    if match is None or float(raw[:-1]) <= 0:
        raise SettingsError(f"{name}: {raw!r} must be a positive number of seconds, e.g. '600s'")
    return timedelta(seconds=float(raw[:-1]))


@dataclass(frozen=True)
class Runtime:
    """What the environment asks for; `describe()` is logged once at start."""

    dispatch_deadline: timedelta
    store: IdempotencyStore
    dead_letter: DeadLetterSink
    threads: int
    store_description: str
    dead_letter_description: str

    def describe(self) -> dict[str, object]:
        return {
            "dispatchDeadline": f"{self.dispatch_deadline.total_seconds():g}s",
            "idempotencyStore": self.store_description,
            "deadLetters": self.dead_letter_description,
            "threads": self.threads,
        }


def runtime(environ: Mapping[str, str] = os.environ) -> Runtime:
    """Validates every setting before anything starts; the Google clients themselves are
    created on first use, in the serving process."""
    threads = concurrency(environ)
    deadline = duration(environ, "TASK_DISPATCH_DEADLINE", DEFAULT_DISPATCH_DEADLINE)
    database = environ.get("TASK_FIRESTORE_DATABASE", "").strip()
    topic = environ.get("TASK_DEAD_LETTER_TOPIC", "").strip()
    if topic and not _TOPIC.fullmatch(topic):
        raise SettingsError(f"TASK_DEAD_LETTER_TOPIC: {topic!r} must be projects/P/topics/T")

    store: IdempotencyStore = InMemoryStore()
    store_description = "in memory (this instance only: TASK_FIRESTORE_DATABASE is not set)"
    if database:
        # Imported only when asked for: the in-memory default starts without Google's clients.
        from handler.firestore_store import COLLECTION, FirestoreStore

        project = environ.get("GOOGLE_CLOUD_PROJECT") or None
        claim_lease = lease(deadline)
        store = FirestoreStore(project=project, database=database, lease=claim_lease)
        where = (
            f" at {environ['FIRESTORE_EMULATOR_HOST']}"
            if "FIRESTORE_EMULATOR_HOST" in environ
            else ""
        )
        store_description = (
            f"firestore database {database!r}{where}, collection {COLLECTION!r},"
            f" lease {claim_lease.total_seconds():g}s renewed while the work runs, records"
            " kept per the database's TTL policy"
        )

    sink: DeadLetterSink = LogDeadLetterSink()
    sink_description = "log (TASK_DEAD_LETTER_TOPIC is not set)"
    if topic:
        from handler.pubsub_sink import PubSubDeadLetterSink

        # A third of the deadline (at most 30 s) leaves the attempt time to answer 5xx.
        timeout_s = min(deadline.total_seconds() / 3, 30.0)
        sink = PubSubDeadLetterSink(topic, timeout_s=timeout_s)
        where = (
            f" at {environ['PUBSUB_EMULATOR_HOST']}" if "PUBSUB_EMULATOR_HOST" in environ else ""
        )
        sink_description = f"pubsub topic {topic}{where}, publish timeout {timeout_s:g}s"
    return Runtime(deadline, store, sink, threads, store_description, sink_description)
