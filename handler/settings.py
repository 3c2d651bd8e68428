"""Configuration from the environment (set on the Cloud Run service; the stack sets all but
TASK_PROCESSOR and reserves them).

TASK_PROCESSOR           module:function of the processing function (default
                         handler.example:process)
TASK_APP_URL             http://localhost:PORT (or 127.0.0.1): proxy mode, each claimed task is
                         forwarded to the app listening there instead (handler/proxy.py,
                         docs/proxy.md); not with TASK_PROCESSOR
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
GOOGLE_CLOUD_PROJECT     the project (Firestore's, and the one in log lines' trace field,
                         projects/P/traces/T); unset: log lines carry no trace fields
TASK_SCHEDULES           JSON object, Cloud Scheduler job id -> task path, of the pipeline's
                         schedules: only their ticks become tasks (handler/ticks.py); unset:
                         no schedules, every tick is refused
TASK_TRACE_EXPORT        cloud-trace: the handler's spans are exported to Cloud Trace in
                         GOOGLE_CLOUD_PROJECT (the runtime account needs roles/cloudtrace.agent);
                         unset or off: not exported (handler/tracing.py)
"""

import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from opentelemetry.sdk.trace.export import SpanExporter

from handler.app import Processor
from handler.dead_letter import DeadLetterSink, LogDeadLetterSink
from handler.deadlines import lease
from handler.proxy import APP_URL_ENV, AppProxy
from handler.store import IdempotencyStore, InMemoryStore
from handler.tick_wire import SCHEDULES_ENV
from handler.tracing import Tracing

DEFAULT_PROCESSOR = "handler.example:process"
DEFAULT_CONCURRENCY = 80
MAX_CONCURRENCY = 1000  # Cloud Run's limit on a service's concurrency
DEFAULT_DISPATCH_DEADLINE = timedelta(seconds=600)
# The protobuf Duration form the components write ("600s", "0.5s"). Parsed here rather than
# with components.durations.Duration: the image holds handler/ alone, and that module needs
# pydantic, which the image doesn't install.
_SECONDS = re.compile(r"([0-9]{1,12})(\.[0-9]{1,9})?s")
_TOPIC = re.compile(r"projects/[^/\s]+/topics/[^/\s]+")
# A project id's characters: lowercase letters, digits and hyphens, starting with a letter
# (cloud.google.com/resource-manager/docs/creating-managing-projects), or the legacy
# domain-scoped form `example.com:id`. It goes into every log line's trace field.
_PROJECT = re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]*")
TRACE_EXPORTS = ("off", "cloud-trace")


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


def schedules(environ: Mapping[str, str]) -> dict[str, str]:
    raw = environ.get(SCHEDULES_ENV, "").strip()
    if not raw:
        return {}
    try:
        value: object = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("/")
        for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
    ):
        raise SettingsError(
            f"{SCHEDULES_ENV}: must be a JSON object of job id -> task path starting with '/',"
            ' e.g. {"orders_nightly": "/reports"}'
        )
    return cast(dict[str, str], value)


def app_proxy(environ: Mapping[str, str]) -> AppProxy | None:
    """Proxy mode's processor when TASK_APP_URL is set (handler/proxy.py), else None."""
    url = environ.get(APP_URL_ENV, "").strip()
    if not url:
        return None
    if environ.get("TASK_PROCESSOR", "").strip():
        raise SettingsError(
            f"{APP_URL_ENV} and TASK_PROCESSOR: set one, not both (the app at {APP_URL_ENV}"
            " is the processor in proxy mode)"
        )
    # One connection per request served at once: the app never waits for the pool.
    workers = concurrency(environ)
    try:
        return AppProxy(url, workers=workers)
    except ValueError as exc:
        raise SettingsError(f"{APP_URL_ENV}: {exc}") from None


def processor(environ: Mapping[str, str] = os.environ) -> Processor:
    return app_proxy(environ) or load_processor(environ.get("TASK_PROCESSOR") or DEFAULT_PROCESSOR)


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


def tracing(environ: Mapping[str, str]) -> tuple[Tracing, str]:
    """The handler's tracing and its description."""
    project = environ.get("GOOGLE_CLOUD_PROJECT", "").strip() or None
    if project is not None and not _PROJECT.fullmatch(project):
        raise SettingsError(
            f"GOOGLE_CLOUD_PROJECT: {project!r} must be a project id (lowercase letters,"
            " digits and hyphens, starting with a letter)"
        )
    export = environ.get("TASK_TRACE_EXPORT", "").strip() or "off"
    if export not in TRACE_EXPORTS:
        raise SettingsError(
            f"TASK_TRACE_EXPORT: {export!r} must be one of {', '.join(TRACE_EXPORTS)}"
        )
    fields = (
        f"log lines in traces of project {project}"
        if project
        else "log lines carry no trace (GOOGLE_CLOUD_PROJECT is not set)"
    )
    if export == "off":
        return Tracing(project), f"{fields}; spans not exported (TASK_TRACE_EXPORT is not set)"
    if project is None:
        raise SettingsError("TASK_TRACE_EXPORT: cloud-trace needs GOOGLE_CLOUD_PROJECT")

    def cloud_trace() -> SpanExporter:
        # Imported and created on first use, in the serving process (a gRPC client).
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        return CloudTraceSpanExporter(project_id=project)

    return Tracing(project, cloud_trace), f"{fields}; spans exported to Cloud Trace"


@dataclass(frozen=True)
class Runtime:
    """What the environment asks for; `describe()` is logged once at start."""

    dispatch_deadline: timedelta
    store: IdempotencyStore
    dead_letter: DeadLetterSink
    threads: int
    store_description: str
    dead_letter_description: str
    tracing: Tracing
    tracing_description: str

    def describe(self) -> dict[str, object]:
        return {
            "dispatchDeadline": f"{self.dispatch_deadline.total_seconds():g}s",
            "idempotencyStore": self.store_description,
            "deadLetters": self.dead_letter_description,
            "threads": self.threads,
            "tracing": self.tracing_description,
        }


def runtime(environ: Mapping[str, str] = os.environ) -> Runtime:
    """Validates every setting before anything starts; the Google clients themselves are
    created on first use, in the serving process."""
    threads = concurrency(environ)
    traces, traces_description = tracing(environ)
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
    return Runtime(
        deadline,
        store,
        sink,
        threads,
        store_description,
        sink_description,
        traces,
        traces_description,
    )
