"""A bulk run's timing on a virtual clock: the back-off between attempts, the retry budget
running out (before, between and after attempts), the circuit opening, and the run stopping
while requests are on the wire or waiting to retry. Every time asserted is exact: the loop's
clock moves only to its next timer, and the fake backend takes the time it is told to."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from google.api_core import exceptions
from google.api_core.retry import retry_base
from google.cloud import tasks_v2

from taskclient import Pipeline, TaskSpec
from taskclient.bulk import DRAIN_S, BulkOutcome, BulkRun, Circuit, Outcome
from tests.app.helpers import pipeline_output

QUEUE = "projects/p/locations/us-central1/queues/orders"
PIPELINE = Pipeline.model_validate(pipeline_output(QUEUE, "https://orders-xyz-uc.a.run.app"))


class _SkippingSelector(selectors.DefaultSelector):
    """Polls instead of waiting; when nothing is ready, moves its loop's clock to the timer
    the loop would have waited for. With no timer (waiting for a thread), it waits. A loop
    that never waits (a task spinning on something already done) fails the test."""

    SPINS = 100_000

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop
        self._spins = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(None if timeout is None else 0)
        self._spins = self._spins + 1 if timeout == 0 and not ready else 0
        if self._spins > self.SPINS:
            raise RuntimeError(f"the event loop ran {self.SPINS} times without waiting")
        if not ready and timeout:
            self._loop.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a clock that starts at 0 and moves only when every task waits."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_SkippingSelector(self))

    def time(self) -> float:
        return self.now


class Jitter:
    """google-api-core's back-off draws each sleep uniformly from [0, bound]: this draws the
    given fractions of the bound instead (then the last one, again and again)."""

    def __init__(self, *fractions: float) -> None:
        self._fractions = list(fractions)

    def uniform(self, low: float, high: float) -> float:
        fraction = self._fractions.pop(0) if len(self._fractions) > 1 else self._fractions[0]
        return low + fraction * (high - low)


@pytest.fixture
def jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def draw(*fractions: float) -> None:
        monkeypatch.setattr(retry_base, "random", Jitter(*fractions))

    draw(1.0)  # by default every sleep is its bound: the back-off's own schedule
    return draw


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    virtual = VirtualTimeLoop()
    yield virtual
    virtual.close()


Answer = tuple[float, Exception | None]
"""How long a call takes, then the error it raises (None: the task is created)."""


@dataclass
class Backend:
    """create_task on the virtual clock: each input's calls answered by its script (the
    last answer again once the script runs out), after the time scripted whatever the
    timeout (that is recorded with the time each call went out)."""

    loop: VirtualTimeLoop
    scripts: dict[int, list[Answer]]
    calls: list[tuple[int, float, float]] = field(default_factory=list)
    """(input, sent at, timeout asked for) per call."""

    async def create_task(self, **kwargs: object) -> tasks_v2.Task:
        task = kwargs["task"]
        timeout = kwargs["timeout"]
        assert isinstance(task, tasks_v2.Task) and isinstance(timeout, float)
        index = int(task.http_request.body)
        self.calls.append((index, self.loop.time(), timeout))
        sent = sum(1 for i, _, _ in self.calls if i == index)
        script = self.scripts.get(index, [(0.0, None)])
        latency, error = script[min(sent, len(script)) - 1]
        await asyncio.sleep(latency)
        if error is not None:
            raise error
        return tasks_v2.Task(name=f"{QUEUE}/tasks/{index}")

    def sent_at(self, index: int) -> list[float]:
        return [round(at, 9) for i, at, _ in self.calls if i == index]


def down(attempt: int) -> exceptions.ServiceUnavailable:
    return exceptions.ServiceUnavailable(f"Socket closed (attempt {attempt})")


def failing(times: int, latency: float = 0.0) -> list[Answer]:
    """`times` transient failures (each naming its attempt), then success."""
    answers: list[Answer] = [(latency, down(n)) for n in range(1, times + 1)]
    return [*answers, (0.0, None)]


@dataclass
class Run:
    outcomes: list[BulkOutcome]
    bulk: BulkRun
    told: list[tuple[int, Outcome, float]]
    """(input, outcome, when) in the order on_outcome heard them."""


def run(
    loop: VirtualTimeLoop,
    backend: Backend,
    inputs: int,
    *,
    concurrency: int = 1,
    retry_deadline_s: float = 60.0,
    call_timeout_s: float = 30.0,
    stop_at: float | None = None,
    hear: Callable[[BulkOutcome], None] | None = None,
) -> Run:
    """`hear`: the caller's own on_outcome, called once each outcome is in `told`."""
    told: list[tuple[int, Outcome, float]] = []

    def on_outcome(outcome: BulkOutcome) -> None:
        told.append((outcome.index, outcome.outcome, round(loop.time(), 9)))
        if hear is not None:
            hear(outcome)

    bulk = BulkRun(
        backend,  # pyright: ignore[reportArgumentType]
        PIPELINE,
        concurrency=concurrency,
        retry_deadline_s=retry_deadline_s,
        call_timeout_s=call_timeout_s,
        on_outcome=on_outcome,
        clock=loop.time,
    )
    if stop_at is not None:
        loop.call_at(stop_at, bulk.stop, "interrupted (SIGINT)")
    outcomes = loop.run_until_complete(bulk.run(TaskSpec(payload=i) for i in range(inputs)))
    return Run(outcomes, bulk, told)


def summary(outcome: BulkOutcome) -> tuple[Outcome, str | None, int, float | None]:
    latency = None if outcome.latency_s is None else round(outcome.latency_s, 9)
    return outcome.outcome, outcome.error, outcome.attempts, latency


def test_retries_back_off_exponentially_up_to_the_cap(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    # Input 0 fails nine times; the others succeed a second apart, so the circuit never
    # opens (it opens only when nothing at all succeeds for a whole window).
    backend = Backend(loop, {0: failing(9), **{i: [(1.0, None)] for i in range(1, 40)}})
    result = run(loop, backend, 40, concurrency=2)
    # Back-offs of 0.1 s doubling up to 10 s (taskclient.retries), each drawn at its bound.
    assert backend.sent_at(0) == [0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 12.7, 22.7, 32.7]
    assert summary(result.outcomes[0]) == (Outcome.CREATED, None, 10, 32.7)
    assert result.outcomes[0].task_name == f"{QUEUE}/tasks/0"
    assert all(o.outcome is Outcome.CREATED for o in result.outcomes)
    assert (result.bulk.circuit.retries, result.bulk.circuit.stopped) == (9, None)
    # Input 0 was failing from 0 s to 32.7 s: that, and only that, came off the budget.
    assert result.bulk.circuit.spent() == pytest.approx(32.7)


def test_a_timed_out_call_is_retried_and_its_time_comes_off_the_budget(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    backend = Backend(
        loop, {0: [(4.0, exceptions.DeadlineExceeded("Deadline Exceeded")), (1.0, None)]}
    )
    result = run(loop, backend, 1, retry_deadline_s=30.0)
    assert summary(result.outcomes[0]) == (Outcome.CREATED, None, 2, 5.1)
    # The second call may wait only for what the first left of the budget: 30 - 4.1 s.
    assert [(at, timeout) for _, at, timeout in backend.calls] == [
        (0.0, 30.0),
        (pytest.approx(4.1), pytest.approx(25.9)),
    ]
    assert result.bulk.circuit.spent() == pytest.approx(5.1)
    assert result.bulk.circuit.retries == 1


def test_time_spent_on_calls_that_succeed_or_fail_for_good_is_free(
    loop: VirtualTimeLoop,
) -> None:
    backend = Backend(loop, {0: [(3.0, None)], 1: [(3.0, exceptions.InvalidArgument("bad task"))]})
    result = run(loop, backend, 2)
    assert [summary(o) for o in result.outcomes] == [
        (Outcome.CREATED, None, 1, 3.0),
        (Outcome.FAILED, "INVALID_ARGUMENT: bad task", 1, 3.0),
    ]
    assert result.bulk.circuit.spent() == 0.0
    assert result.bulk.circuit.retries == 0


def test_an_address_that_does_not_resolve_fails_at_once_and_stops_the_run(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    unresolved = exceptions.ServiceUnavailable("DNS resolution failed for nowhere:443")
    backend = Backend(loop, {0: [(0.5, unresolved)]})
    result = run(loop, backend, 3)
    described = "UNAVAILABLE: DNS resolution failed for nowhere:443"
    # Nothing was sent (no address): failed, not unknown, and not retried for a window.
    assert summary(result.outcomes[0]) == (Outcome.FAILED, described, 1, 0.5)
    assert result.bulk.circuit.stopped == (f"{described} (stops the run: retrying cannot fix it)")
    assert [o.outcome for o in result.outcomes[1:]] == [Outcome.NOT_SENT] * 2
    assert len(backend.calls) == 1 and result.bulk.circuit.retries == 0


def test_the_circuit_opens_after_a_window_of_failures_and_cuts_the_back_off_short(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    backend = Backend(loop, {0: failing(100), 1: [(0.0, None)]})
    result = run(loop, backend, 2)
    # The eighth failure (12.7 s) is the first a whole window (10 s) after the first.
    assert backend.sent_at(0) == [0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 12.7]
    reason = "no request succeeded for 10s (last error: UNAVAILABLE: Socket closed (attempt 8))"
    assert (result.bulk.circuit.stopped, result.bulk.circuit.aborted) == (reason, True)
    # Waiting out the next back-off when the circuit opened: ended then, with the last error.
    assert summary(result.outcomes[0]) == (
        Outcome.UNKNOWN,
        "no answer (stopped retrying: UNAVAILABLE: Socket closed (attempt 8)): it may exist",
        8,
        12.7,
    )
    assert summary(result.outcomes[1]) == (Outcome.NOT_SENT, f"not sent: {reason}", 0, None)
    assert result.bulk.circuit.retries == 7


def test_a_back_off_longer_than_the_budget_left_gives_up_before_sleeping(
    loop: VirtualTimeLoop, jitter: Callable[..., None]
) -> None:
    # Seven back-offs drawn as 0, then the eighth at its bound (10 s): more than the 5 s
    # budget, so the retry gives up at once instead of sleeping past the budget.
    jitter(0, 0, 0, 0, 0, 0, 0, 1.0)
    backend = Backend(loop, {0: failing(100)})
    result = run(loop, backend, 1, retry_deadline_s=5.0)
    assert backend.sent_at(0) == [0.0] * 8
    assert summary(result.outcomes[0]) == (
        Outcome.UNKNOWN,
        "no answer (gave up retrying transient errors: 503 Socket closed (attempt 8)):"
        " it may exist",
        8,
        0.0,
    )
    assert result.bulk.circuit.retries == 7
    assert result.bulk.circuit.stopped is None  # the budget is not spent


def test_a_budget_spent_during_a_back_off_ends_the_request_without_another_call(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    # The first call fails after 2 s, the next ones at once: the sixth back-off (3.2 s, from
    # 5.1 s) ends past the 8 s budget (8.3 s), but within the window after the first
    # failure came back (2 s + 8 s), so it is the budget, not the circuit, that stops it.
    backend = Backend(loop, {0: [(2.0, down(1)), *failing(100)[1:]]})
    result = run(loop, backend, 1, retry_deadline_s=8.0)
    assert backend.sent_at(0) == [0.0, 2.1, 2.3, 2.7, 3.5, 5.1]
    assert summary(result.outcomes[0]) == (
        Outcome.UNKNOWN,
        "no answer (gave up retrying transient errors: retry deadline (8s) spent): it may exist",
        6,
        8.3,
    )
    assert result.bulk.circuit.stopped == (
        "retry deadline (8s) spent and requests still fail"
        " (last error: UNAVAILABLE: Socket closed (attempt 6))"
    )
    assert result.bulk.circuit.aborted and result.bulk.circuit.retries == 5


@pytest.mark.parametrize(
    ("latency", "sent_at", "error"),
    [
        # The third call fails at 7.8 s with 0.2 s of budget left: retried, and the
        # back-off (0.4 s) spends the rest.
        (
            2.5,
            [0.0, 2.6, 5.3],
            "gave up retrying transient errors: retry deadline (8s) spent",
        ),
        # The fourth call fails at 8.7 s, past the budget: not retried.
        (2.0, [0.0, 2.1, 4.3, 6.7], "UNAVAILABLE: Socket closed (attempt 4)"),
    ],
)
def test_a_request_is_retried_while_any_budget_is_left(
    loop: VirtualTimeLoop, jitter: object, latency: float, sent_at: list[float], error: str
) -> None:
    backend = Backend(loop, {0: failing(100, latency)})
    result = run(loop, backend, 1, retry_deadline_s=8.0)
    assert backend.sent_at(0) == sent_at
    assert result.outcomes[0].error == f"no answer ({error}): it may exist"
    assert result.bulk.circuit.stopped is not None
    assert result.bulk.circuit.stopped.startswith("retry deadline (8s) spent and requests still")


def test_a_call_timing_out_after_the_run_stopped_is_not_retried_and_may_exist(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    # Input 1 is refused at 1 s (the run stops); input 0 times out at 3 s, in the drain.
    timed_out = exceptions.DeadlineExceeded("Deadline Exceeded")
    denied = exceptions.PermissionDenied("no")
    backend = Backend(loop, {0: [(3.0, timed_out)], 1: [(1.0, denied)]})
    result = run(loop, backend, 2, concurrency=2)
    assert [summary(o) for o in result.outcomes] == [
        (
            Outcome.UNKNOWN,
            "no answer (DEADLINE_EXCEEDED: Deadline Exceeded): it may exist",
            1,
            3.0,
        ),
        (Outcome.FAILED, "PERMISSION_DENIED: no", 1, 1.0),
    ]
    assert len(backend.calls) == 2 and result.bulk.circuit.retries == 0


def test_an_input_picked_up_once_the_budget_is_gone_is_told_not_sent_at_once(
    loop: VirtualTimeLoop, jitter: Callable[..., None]
) -> None:
    jitter(0.0)
    # Input 0 fails for 0.5 s, then its retry takes 0.6 s: the budget (1 s) is spent when
    # it succeeds. Input 1 is on the wire meanwhile, and answers during the drain.
    backend = Backend(loop, {0: [(0.5, down(1)), (0.6, None)], 1: [(3.0, None)]})
    result = run(loop, backend, 4, concurrency=2, retry_deadline_s=1.0)
    reason = "retry deadline (1s) spent"
    assert [summary(o) for o in result.outcomes] == [
        (Outcome.CREATED, None, 2, 1.1),
        (Outcome.CREATED, None, 1, 3.0),
        (Outcome.NOT_SENT, f"not sent: {reason}", 0, None),
        (Outcome.NOT_SENT, f"not sent: {reason}", 0, None),
    ]
    assert result.told == [
        (0, Outcome.CREATED, 1.1),
        (2, Outcome.NOT_SENT, 1.1),
        (1, Outcome.CREATED, 3.0),
        (3, Outcome.NOT_SENT, 3.0),
    ]
    assert (result.bulk.circuit.stopped, result.bulk.circuit.aborted) == (reason, True)


def test_a_caller_stop_drains_requests_on_the_wire_and_cuts_waiting_ones(
    loop: VirtualTimeLoop, jitter: object
) -> None:
    # At the stop (1.2 s) input 0 waits out a back-off (1.1 s to 1.3 s) and input 1 is on
    # the wire (until 60 s).
    backend = Backend(loop, {0: failing(100, 0.5), 1: [(60.0, None)]})
    result = run(loop, backend, 3, concurrency=2, stop_at=1.2)
    assert backend.sent_at(0) == [0.0, 0.6]
    assert [summary(o) for o in result.outcomes] == [
        (
            Outcome.UNKNOWN,
            "no answer (stopped retrying: UNAVAILABLE: Socket closed (attempt 2)): it may exist",
            2,
            1.2,
        ),
        (
            Outcome.UNKNOWN,
            "sent, but no answer before the run stopped: it may exist",
            1,
            1.2 + DRAIN_S,
        ),
        (Outcome.NOT_SENT, "not sent: interrupted (SIGINT)", 0, None),
    ]
    assert [(i, at) for i, _, at in result.told] == [(0, 1.2), (1, 6.2), (2, 6.2)]
    assert (result.bulk.circuit.stopped, result.bulk.circuit.aborted) == (
        "interrupted (SIGINT)",
        False,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_counts_while_any_request_is_failing_once_not_per_request() -> None:
    clock = Clock()
    circuit = Circuit(retry_deadline_s=100.0, clock=clock)
    circuit.began_failing(0.0)
    circuit.began_failing(0.0)
    clock.now = 5.0
    circuit.ended_failing()
    clock.now = 10.0
    assert circuit.spent() == 10.0  # one request still failing: still counting
    circuit.ended_failing()
    clock.now = 30.0
    assert (circuit.spent(), circuit.remaining()) == (10.0, 90.0)
    # An attempt sent before the last stretch ended counts from its end, not again.
    circuit.began_failing(8.0)
    clock.now = 32.0
    assert circuit.spent() == 10.0 + (32.0 - 10.0)


def test_a_callback_that_fails_stops_the_run_and_every_input_still_has_its_outcome(
    loop: VirtualTimeLoop,
) -> None:
    # The caller's callback fails on input 1's outcome: nothing more is sent (tasks nobody
    # would hear of), and the inputs left say why they were not sent.
    backend = Backend(loop, {})

    def fails_on_1(outcome: BulkOutcome) -> None:
        if outcome.index == 1:
            raise OSError("report file: no space left on device")

    result = run(loop, backend, 4, hear=fails_on_1)
    outcomes = result.outcomes
    reason = "on_outcome failed: OSError: report file: no space left on device"
    assert [(o.outcome, o.error) for o in outcomes] == [
        (Outcome.CREATED, None),
        (Outcome.CREATED, None),
        (Outcome.NOT_SENT, f"not sent: {reason}"),
        (Outcome.NOT_SENT, f"not sent: {reason}"),
    ]
    assert [index for index, _, _ in backend.calls] == [0, 1]
    assert [index for index, _, _ in result.told] == [0, 1, 2, 3]
    assert result.bulk.circuit.stopped == reason and result.bulk.circuit.aborted


def test_the_first_attempt_is_sent_with_the_budget_seen_before_it(
    loop: VirtualTimeLoop,
) -> None:
    # Another request has been failing since 0 and the run's clock moves a second per read:
    # the budget is 0.5 s when the input is picked up, and would read 0 by the time the
    # first attempt went out. That attempt still goes, with the 0.5 s: a request never sent
    # has no error to fail with.
    reads = iter(range(1, 100))
    backend = Backend(loop, {})
    bulk = BulkRun(
        backend,  # pyright: ignore[reportArgumentType]
        PIPELINE,
        concurrency=1,
        retry_deadline_s=2.5,
        call_timeout_s=30.0,
        clock=lambda: float(next(reads)),
    )
    bulk.circuit.began_failing(0.0)
    (outcome,) = loop.run_until_complete(bulk.run([TaskSpec(payload=0)]))
    assert (outcome.outcome, outcome.error, outcome.attempts) == (Outcome.CREATED, None, 1)
    assert [timeout for _, _, timeout in backend.calls] == [0.5]
