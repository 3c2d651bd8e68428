"""The handler's environment: which store, which dead-letter sink, how many threads."""

from datetime import timedelta

import pytest

from components.durations import Duration
from handler import deadlines, settings
from handler.dead_letter import LogDeadLetterSink
from handler.firestore_store import FirestoreStore
from handler.pubsub_sink import PubSubDeadLetterSink
from handler.store import InMemoryStore


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
