"""A bulk run against a scripted Cloud Tasks client (no emulator): what each input ends as,
what each request asks for, and when and why the run stops sending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from taskclient import Pipeline, TaskSpec, UsageError
from taskclient import bulk as bulk_module
from taskclient.bulk import BulkOutcome, BulkRun, Circuit, Outcome, describe, fatal
from tests.app.helpers import pipeline_output, run_async

QUEUE = "projects/p/locations/us-central1/queues/orders"
PIPELINE = Pipeline.model_validate(pipeline_output(QUEUE, "https://orders-xyz-uc.a.run.app"))
DOWN = "Socket closed"
REFUSED = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: refused"


@dataclass
class Client:
    """Answers each create_task with `answer(call number, task)`: a Task, or an exception
    to raise."""

    answer: Callable[[int, tasks_v2.Task], tasks_v2.Task | Exception]
    calls: list[dict[str, object]] = field(default_factory=list)

    async def create_task(self, **kwargs: object) -> tasks_v2.Task:
        self.calls.append(kwargs)
        task = kwargs["task"]
        assert isinstance(task, tasks_v2.Task)
        result = self.answer(len(self.calls), task)
        if isinstance(result, Exception):
            raise result
        return result


def created(_n: int, task: tasks_v2.Task) -> tasks_v2.Task:
    return tasks_v2.Task(name=task.name or f"{QUEUE}/tasks/{task.http_request.body.decode()}")


def bulk(
    client: Client,
    specs: list[TaskSpec],
    *,
    concurrency: int = 1,
    retry_deadline_s: float = 30.0,
    call_timeout_s: float = 20.0,
    stop_after: int | None = None,
) -> tuple[list[BulkOutcome], BulkRun, list[BulkOutcome]]:
    told: list[BulkOutcome] = []
    run: BulkRun

    def on_outcome(outcome: BulkOutcome) -> None:
        told.append(outcome)
        if stop_after is not None and len(told) == stop_after:
            run.stop("interrupted (SIGINT)")

    run = BulkRun(
        client,  # pyright: ignore[reportArgumentType]
        PIPELINE,
        concurrency=concurrency,
        retry_deadline_s=retry_deadline_s,
        call_timeout_s=call_timeout_s,
        on_outcome=on_outcome,
    )
    return run_async(run.run(specs)), run, told


def specs(n: int) -> list[TaskSpec]:
    return [TaskSpec(payload=i) for i in range(n)]


def test_every_input_is_created_in_order_with_what_the_backend_named_it() -> None:
    client = Client(created)
    outcomes, run, told = bulk(client, specs(3), concurrency=2)
    assert [(o.index, o.outcome, o.task_name, o.attempts, o.error) for o in outcomes] == [
        (i, Outcome.CREATED, f"{QUEUE}/tasks/{i}", 1, None) for i in range(3)
    ]
    assert all(o.ok and o.latency_s is not None and o.latency_s >= 0 for o in outcomes)
    assert sorted(o.index for o in told) == [0, 1, 2]
    assert (run.circuit.stopped, run.circuit.aborted, run.circuit.retries) == (None, False, 0)
    for call in client.calls:
        assert (call["parent"], call["retry"], call["timeout"]) == (QUEUE, None, 20.0)


def test_a_call_never_waits_longer_than_the_retry_budget() -> None:
    client = Client(created)
    bulk(client, specs(1), retry_deadline_s=5.0, call_timeout_s=20.0)
    timeout = client.calls[0]["timeout"]
    assert isinstance(timeout, float) and 4.0 < timeout <= 5.0


def test_an_existing_named_task_is_existed_and_an_unnamed_one_failed() -> None:
    def exists(_n: int, _task: tasks_v2.Task) -> Exception:
        return exceptions.AlreadyExists("task exists")

    outcomes, run, _ = bulk(
        Client(exists), [TaskSpec(payload=1, dedup_key="order-1"), TaskSpec(payload=2)]
    )
    named, unnamed = outcomes
    assert (named.outcome, named.ok, named.attempts) == (Outcome.EXISTED, True, 1)
    assert named.task_name is not None and named.task_name.startswith(f"{QUEUE}/tasks/")
    assert (unnamed.outcome, unnamed.ok, unnamed.error) == (
        Outcome.FAILED,
        False,
        "ALREADY_EXISTS: task exists",
    )
    assert run.circuit.stopped is None


def test_transient_errors_are_retried_and_counted_as_attempts() -> None:
    client = Client(
        lambda n, task: exceptions.ServiceUnavailable(DOWN) if n <= 2 else created(n, task)
    )
    [outcome], run, _ = bulk(client, specs(1))
    assert (outcome.outcome, outcome.attempts, outcome.task_name) == (
        Outcome.CREATED,
        3,
        f"{QUEUE}/tasks/0",
    )
    assert run.circuit.retries == 2
    assert run.circuit.stopped is None
    assert run.circuit.failing_since is None and run.circuit.last_success is not None
    assert 0.0 < run.circuit.spent() < 30.0


@pytest.mark.parametrize(
    "error",
    [
        exceptions.PermissionDenied("caller lacks cloudtasks.tasks.create"),
        exceptions.NotFound("queue does not exist"),
        exceptions.FailedPrecondition("queue is disabled"),
        exceptions.Unauthenticated("no credentials"),
    ],
)
def test_an_error_every_request_would_get_stops_the_run_at_once(
    error: exceptions.GoogleAPICallError,
) -> None:
    client = Client(lambda n, _task: error)
    outcomes, run, told = bulk(client, specs(4))
    first, *rest = outcomes
    assert (first.outcome, first.error, first.attempts) == (Outcome.FAILED, describe(error), 1)
    reason = f"{describe(error)} (stops the run: retrying cannot fix it)"
    assert (run.circuit.stopped, run.circuit.aborted) == (reason, True)
    assert [(o.index, o.outcome, o.error) for o in rest] == [
        (i, Outcome.NOT_SENT, f"not sent: {reason}") for i in (1, 2, 3)
    ]
    assert len(client.calls) == 1 and len(told) == 4


def test_a_permanent_but_task_specific_error_fails_that_task_only() -> None:
    def answer(n: int, task: tasks_v2.Task) -> tasks_v2.Task | Exception:
        return exceptions.InvalidArgument("bad task") if n == 2 else created(n, task)

    outcomes, run, _ = bulk(Client(answer), specs(3))
    assert [o.outcome for o in outcomes] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED]
    assert outcomes[1].error == "INVALID_ARGUMENT: bad task"
    assert run.circuit.stopped is None


def test_a_spec_that_cannot_be_built_fails_alone_without_a_request() -> None:
    client = Client(created)
    outcomes, _, _ = bulk(client, [TaskSpec(payload={1, 2}), TaskSpec(payload=1)])
    assert outcomes[0].outcome is Outcome.FAILED
    assert outcomes[0].error is not None and outcomes[0].error.startswith(
        "payload: not JSON-serializable"
    )
    assert outcomes[1].outcome is Outcome.CREATED
    assert len(client.calls) == 1


def test_the_caller_stopping_the_run_leaves_the_rest_not_sent_and_is_no_abort() -> None:
    client = Client(created)
    outcomes, run, _ = bulk(client, specs(4), stop_after=2)
    assert [o.outcome for o in outcomes] == [Outcome.CREATED] * 2 + [Outcome.NOT_SENT] * 2
    assert outcomes[3].error == "not sent: interrupted (SIGINT)"
    assert (run.circuit.stopped, run.circuit.aborted) == ("interrupted (SIGINT)", False)
    assert len(client.calls) == 2


def test_with_no_retry_budget_nothing_is_sent() -> None:
    client = Client(created)
    outcomes, run, _ = bulk(client, specs(2), retry_deadline_s=0.0)
    assert [(o.outcome, o.error) for o in outcomes] == [
        (Outcome.NOT_SENT, "not sent: retry deadline (0s) spent")
    ] * 2
    assert (run.circuit.stopped, run.circuit.aborted) == ("retry deadline (0s) spent", True)
    assert client.calls == []


def test_concurrency_below_one_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--concurrency: 0 must be at least 1"):
        BulkRun(
            Client(created),  # pyright: ignore[reportArgumentType]
            PIPELINE,
            concurrency=0,
            retry_deadline_s=1.0,
            call_timeout_s=1.0,
        )


def test_describe_names_the_status_and_what_gave_up() -> None:
    assert describe(exceptions.NotFound("no queue")) == "NOT_FOUND: no queue"
    assert describe(ValueError("plain")) == "plain"
    gave_up = exceptions.RetryError("deadline", exceptions.ServiceUnavailable("down"))
    assert describe(gave_up) == "gave up retrying transient errors: 503 down"
    assert describe(exceptions.RetryError("deadline", None)) == (  # pyright: ignore[reportArgumentType]
        "gave up retrying transient errors: deadline"
    )


@pytest.mark.parametrize(
    ("error", "stops"),
    [
        (exceptions.PermissionDenied("x"), True),
        (exceptions.RetryError("gave up", exceptions.Unauthenticated("x")), True),
        (exceptions.RetryError("gave up", exceptions.ServiceUnavailable(DOWN)), False),
        (exceptions.ServiceUnavailable("DNS resolution failed for nowhere:443"), True),
        (exceptions.ServiceUnavailable("Name resolution failure"), True),
        (exceptions.ServiceUnavailable("Invalid target URI"), True),
        (exceptions.ServiceUnavailable(DOWN), False),
        (exceptions.DeadlineExceeded("dns resolution failed"), False),
        (exceptions.InvalidArgument("bad"), False),
        (exceptions.ResourceExhausted("quota"), False),
    ],
)
def test_fatal_errors_are_those_every_later_request_would_get(
    error: Exception, stops: bool
) -> None:
    assert fatal(error) is stops


def test_overlapping_failures_spend_the_budget_once_not_twice() -> None:
    circuit = Circuit(retry_deadline_s=100.0)
    now = time.monotonic()
    circuit.began_failing(now - 10.0)
    circuit.began_failing(now - 5.0)
    circuit.ended_failing()
    assert circuit.spent() >= 10.0  # still failing: counting
    circuit.ended_failing()
    spent = circuit.spent()
    assert 10.0 <= spent < 14.0  # the union (10 s), not the sum (15 s)
    assert circuit.remaining() == pytest.approx(100.0 - spent)
    # A later failure counts from its own attempt, never again before the stretch's end.
    circuit.began_failing(now - 20.0)
    circuit.ended_failing()
    assert spent <= circuit.spent() < spent + 4.0


def test_the_circuit_opens_after_a_window_of_nothing_but_transient_errors() -> None:
    stops: list[str] = []
    circuit = Circuit(retry_deadline_s=60.0, on_stop=lambda: stops.append("stop"), window_s=0.0)
    circuit.failed_transiently(exceptions.ServiceUnavailable(DOWN))
    assert circuit.stopped == "no request succeeded for 0s (last error: UNAVAILABLE: Socket closed)"
    assert (circuit.aborted, stops) == (True, ["stop"])
    circuit.abort("again")
    circuit.stop("and again")
    assert circuit.stopped.startswith("no request succeeded") and stops == ["stop"]
    assert not circuit.may_retry(exceptions.ServiceUnavailable(DOWN))


def test_the_window_is_never_longer_than_the_retry_deadline() -> None:
    circuit = Circuit(retry_deadline_s=0.0, window_s=10.0)
    circuit.failed_transiently(exceptions.ServiceUnavailable(DOWN))
    assert circuit.stopped is not None and circuit.stopped.startswith("no request succeeded for 0s")


def test_a_transient_error_within_the_window_keeps_the_run_going() -> None:
    circuit = Circuit(retry_deadline_s=60.0)
    error = exceptions.ServiceUnavailable(DOWN)
    circuit.failed_transiently(error)
    assert (circuit.stopped, circuit.last_error) == (None, error)
    assert circuit.may_retry(error)
    assert not circuit.may_retry(exceptions.InvalidArgument("bad"))
    circuit.succeeded()
    assert circuit.failing_since is None
    circuit.budget_spent()
    assert circuit.stopped == "retry deadline (60s) spent"


def by_body(
    answers: dict[bytes, Callable[[], Exception | None]],
) -> Callable[[int, tasks_v2.Task], tasks_v2.Task | Exception]:
    def answer(n: int, task: tasks_v2.Task) -> tasks_v2.Task | Exception:
        return answers[task.http_request.body]() or created(n, task)

    return answer


class Hanging(Client):
    """create_task for body b"0" never answers (on the wire until cancelled)."""

    async def create_task(self, **kwargs: object) -> tasks_v2.Task:
        task = kwargs["task"]
        assert isinstance(task, tasks_v2.Task)
        if task.http_request.body == b"0":
            self.calls.append(kwargs)
            await asyncio.Event().wait()
        return await super().create_task(**kwargs)


def test_a_request_on_the_wire_when_the_run_stops_gets_the_drain_time_then_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_module, "DRAIN_S", 0.2)
    denied = exceptions.PermissionDenied("no")
    client = Hanging(by_body({b"1": lambda: denied}))
    outcomes, run, told = bulk(client, specs(3), concurrency=2)
    hung, refused, rest = outcomes
    assert (hung.outcome, hung.error, hung.attempts) == (
        Outcome.UNKNOWN,
        "sent, but no answer before the run stopped: it may exist",
        1,
    )
    assert (refused.outcome, refused.error) == (Outcome.FAILED, "PERMISSION_DENIED: no")
    assert rest.outcome is Outcome.NOT_SENT
    assert run.circuit.aborted and len(told) == 3


def test_a_request_waiting_to_retry_when_the_run_stops_ends_with_its_last_error() -> None:
    client = Client(
        by_body(
            {
                b"0": lambda: exceptions.ServiceUnavailable(REFUSED),
                b"1": lambda: exceptions.PermissionDenied("no"),
            }
        )
    )
    outcomes, run, _ = bulk(client, specs(2), concurrency=2)
    waiting, refused = outcomes
    # Refused every time: it never reached Cloud Tasks, so it failed (not unknown).
    assert (waiting.outcome, waiting.error, waiting.attempts) == (
        Outcome.FAILED,
        f"stopped retrying: UNAVAILABLE: {REFUSED}",
        1,
    )
    assert refused.outcome is Outcome.FAILED
    assert run.circuit.stopped == "PERMISSION_DENIED: no (stops the run: retrying cannot fix it)"
    # The waiting request's failing stretch ended with it: the budget is not being spent.
    spent = run.circuit.spent()
    time.sleep(0.05)
    assert run.circuit.spent() == spent


def test_an_error_without_a_grpc_status_is_described_by_its_http_code() -> None:
    assert describe(exceptions.from_http_status(418, "teapot")) == "418: teapot"
