"""The handler's environment: which store, which dead-letter sink, how many threads."""

from concurrent.futures import Future
from datetime import timedelta

import google.auth
import pytest
from google.auth import credentials

from components.durations import Duration
from handler import deadlines, example, settings
from handler.dead_letter import LogDeadLetterSink
from handler.firestore_store import FirestoreStore
from handler.proxy import AppProxy
from handler.pubsub_sink import PubSubDeadLetterSink
from handler.store import InMemoryStore
from handler.task import TaskRequest


def test_defaults_serve_80_at_once_from_memory_and_the_log() -> None:
    runtime = settings.runtime({})
    assert runtime.threads == 80
    assert isinstance(runtime.store, InMemoryStore)
    assert isinstance(runtime.dead_letter, LogDeadLetterSink)
    assert runtime.describe() == {
        "dispatchDeadline": "600s",
        "idempotencyStore": "in memory (this instance only: TASK_FIRESTORE_DATABASE is not set)",
        "deadLetters": "log (TASK_DEAD_LETTER_TOPIC is not set)",
        "threads": 80,
        "tracing": "log lines carry no trace (GOOGLE_CLOUD_PROJECT is not set); spans not"
        " exported (TASK_TRACE_EXPORT is not set)",
    }


def test_the_stacks_variables_choose_firestore_and_pub_sub() -> None:
    runtime = settings.runtime(
        {
            "TASK_CONCURRENCY": "250",
            "TASK_DISPATCH_DEADLINE": "600s",
            "TASK_FIRESTORE_DATABASE": "tasks-dev",
            "TASK_DEAD_LETTER_TOPIC": "projects/p/topics/orders-dead-letters",
            "GOOGLE_CLOUD_PROJECT": "p",
        }
    )
    assert runtime.threads == 250
    assert isinstance(runtime.store, FirestoreStore)
    assert isinstance(runtime.dead_letter, PubSubDeadLetterSink)
    described = runtime.describe()
    assert described["idempotencyStore"] == (
        "firestore database 'tasks-dev', collection 'idempotency', lease 60s renewed while the"
        " work runs, records kept per the database's TTL policy"
    )
    assert described["dispatchDeadline"] == "600s"
    assert runtime.dispatch_deadline == timedelta(seconds=600)
    assert described["deadLetters"] == (
        "pubsub topic projects/p/topics/orders-dead-letters, publish timeout 30s"
    )


@pytest.mark.parametrize(
    ("deadline", "lease", "budget"),
    [
        ("1800s", 60.0, 1770.0),
        ("600s", 60.0, 570.0),
        ("50s", 25.0, 45.0),
        ("15s", 7.5, 13.5),
        ("4s", 2.0, 3.0),
        ("2s", 1.0, 1.0),
        ("1s", 1.0, 0.0),
    ],
)
def test_a_claims_lease_and_the_answer_budget_follow_the_deadline(
    deadline: str, lease: float, budget: float
) -> None:
    # The lease: half the deadline, 1-60 s (a live claim is renewed), shorter than the budget.
    # The budget: the deadline less a tenth of it (1-30 s), the time a delivery may take to
    # arrive.
    parsed = settings.duration({"D": deadline}, "D", timedelta(0))
    assert deadlines.lease(parsed) == timedelta(seconds=lease)
    assert deadlines.answer_budget(parsed) == timedelta(seconds=budget)


@pytest.mark.parametrize("text", ["600s", "15s", "0.5s", "1800.000000001s", "604800s"])
def test_durations_read_as_the_components_write_them(text: str) -> None:
    # The handler can't import components.durations in its image; it must agree with it.
    parsed = settings.duration({"D": text}, "D", timedelta(0))
    assert round(parsed.total_seconds() * 1e9) == pytest.approx(Duration.parse(text).nanos)
    assert str(Duration.parse(text)) in (text, text.rstrip("0"))


def test_records_are_where_the_stacks_ttl_policy_looks() -> None:
    """The handler image has no `components`: its collection and TTL field are spelled
    twice, and must match the TTL policy the program sets."""
    from components.idempotency import RECORDS, UPDATED_AT
    from handler.firestore_store import COLLECTION, TTL_FIELD

    assert (COLLECTION, TTL_FIELD) == (RECORDS, UPDATED_AT)


def test_the_processor_is_the_example_unless_one_is_named() -> None:
    assert settings.processor({}) is example.process
    assert settings.processor({"TASK_APP_URL": "  ", "TASK_PROCESSOR": ""}) is example.process
    assert settings.processor({"TASK_PROCESSOR": "handler.example:process"}) is example.process


def test_an_app_url_makes_the_app_the_processor_with_a_connection_per_thread() -> None:
    proxy = settings.processor(
        {"TASK_APP_URL": " http://localhost:8081 ", "TASK_CONCURRENCY": "12"}
    )
    assert isinstance(proxy, AppProxy)
    assert (proxy.url, proxy.workers) == ("http://localhost:8081", 12)
    # A blank TASK_PROCESSOR is no processor named.
    proxy = settings.processor({"TASK_APP_URL": "http://127.0.0.1:9000", "TASK_PROCESSOR": " "})
    assert isinstance(proxy, AppProxy)
    assert (proxy.url, proxy.workers) == ("http://127.0.0.1:9000", 80)


def test_an_app_url_is_refused_with_a_processor_or_off_the_loopback() -> None:
    with pytest.raises(settings.SettingsError) as both:
        settings.processor(
            {"TASK_APP_URL": "http://localhost:8081", "TASK_PROCESSOR": "handler.example:process"}
        )
    assert str(both.value) == (
        "TASK_APP_URL and TASK_PROCESSOR: set one, not both (the app at TASK_APP_URL is the"
        " processor in proxy mode)"
    )
    with pytest.raises(settings.SettingsError, match=r"^TASK_APP_URL: .*loopback"):
        settings.processor({"TASK_APP_URL": "http://example.com:8081"})
    with pytest.raises(settings.SettingsError, match=r"^TASK_CONCURRENCY: '0'"):
        settings.processor({"TASK_APP_URL": "http://localhost:8081", "TASK_CONCURRENCY": "0"})


def test_the_store_and_the_sink_are_the_ones_the_variables_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Firestore's client is made without credentials or a connection when an emulator is
    # named; the project comes from the handler's environment, not the test's.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    runtime = settings.runtime(
        {
            "TASK_DISPATCH_DEADLINE": "15s",
            "TASK_FIRESTORE_DATABASE": "tasks-dev",
            "TASK_DEAD_LETTER_TOPIC": "projects/p/topics/orders-dead-letters",
            "GOOGLE_CLOUD_PROJECT": "acme-dev",
        }
    )
    assert isinstance(runtime.store, FirestoreStore)
    client = runtime.store._db()  # pyright: ignore[reportPrivateUsage]
    assert (client.project, client._database) == ("acme-dev", "tasks-dev")  # pyright: ignore[reportPrivateUsage]
    # The claim's lease is the one described: half the dispatch deadline.
    assert runtime.store._lease == timedelta(seconds=7.5)  # pyright: ignore[reportPrivateUsage]
    assert "lease 7.5s" in str(runtime.describe()["idempotencyStore"])
    assert isinstance(runtime.dead_letter, PubSubDeadLetterSink)
    publisher = Publisher()
    runtime.dead_letter._publisher = publisher  # pyright: ignore[reportAttributeAccessIssue]
    task = TaskRequest("t1", "orders", 0, 0, None, "/orders", {}, b"{}")
    runtime.dead_letter.write(task, "refused")
    # A third of the deadline bounds the publish, its retries included.
    [(topic, data, timeout)] = publisher.published
    assert (topic, data, timeout) == ("projects/p/topics/orders-dead-letters", b"{}", 5.0)
    assert "publish timeout 5s" in str(runtime.describe()["deadLetters"])


class Publisher:
    """Keeps what was published, and confirms it as Pub/Sub would."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, object]] = []

    def publish(self, topic: str, data: bytes, **kwargs: object) -> Future[str]:
        self.published.append((topic, data, kwargs["timeout"]))
        done: Future[str] = Future()
        done.set_result("m-1")
        return done


def test_spans_go_to_the_handlers_project_not_the_ambient_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What Application Default Credentials would say on another project's machine.
    ambient = (credentials.AnonymousCredentials(), "someone-elses-project")
    monkeypatch.setattr(google.auth, "default", lambda *args, **kwargs: ambient)
    monkeypatch.delenv("OTEL_EXPORTER_GCP_TRACE_PROJECT_ID", raising=False)
    runtime = settings.runtime(
        {"GOOGLE_CLOUD_PROJECT": "acme-prod", "TASK_TRACE_EXPORT": "cloud-trace"}
    )
    make_exporter = runtime.tracing._make_exporter  # pyright: ignore[reportPrivateUsage]
    assert make_exporter is not None
    exporter = make_exporter()
    assert exporter.project_id == "acme-prod"  # pyright: ignore[reportAttributeAccessIssue]
