"""Many tasks onto one queue: a bounded number in flight, one retry budget for the whole run,
a circuit that stops a run whose backend is down, and an outcome for every input.

Each input ends in exactly one Outcome. A run stops sending (what is in flight finishes or
is cut after DRAIN_S; the rest is NOT_SENT) when:
- an error that retrying cannot heal comes back (no credentials or permission, a missing
  queue, an address that does not resolve): at its first occurrence;
- every request for a whole window failed with a transient error and none succeeded (the
  circuit opens);
- the caller stops it (the CLI does on SIGINT and SIGTERM).
Transient errors are retried by google-api-core's AsyncRetry within one retry budget for
the whole run (`--retry-deadline`), spent only while requests are failing (see Circuit);
every call's timeout is capped by what is left of it, so a backend that never answers
ends the run when the budget is spent, not after the call timeout.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from google.api_core import exceptions
from google.api_core.retry import AsyncRetry
from google.cloud import tasks_v2

from taskclient import retries
from taskclient.errors import UsageError
from taskclient.offload import Offloader, UploadError, needs_offload
from taskclient.pipelines import Pipeline
from taskclient.task_builder import TaskSpec, build_task

# How long in-flight requests may finish once a run stops sending.
DRAIN_S = 5.0
# The circuit opens after this long with only transient failures (or the retry deadline,
# if shorter): long enough to ride out a blip, short enough to fail fast.
CIRCUIT_WINDOW_S = 10.0


class Outcome(enum.Enum):
    CREATED = "created"
    EXISTED = "already existed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """Sent, but no answer came: the task may exist. Re-running with de-dup keys is safe."""
    NOT_SENT = "not sent"


@dataclass(frozen=True)
class BulkOutcome:
    """One input's fate."""

    index: int
    outcome: Outcome
    task_name: str | None = None
    error: str | None = None
    attempts: int = 0
    latency_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.CREATED, Outcome.EXISTED)


def describe(exc: BaseException) -> str:
    if isinstance(exc, exceptions.RetryError):
        return f"gave up retrying transient errors: {exc.cause or exc.message}"
    if isinstance(exc, exceptions.GoogleAPICallError):
        status = exc.grpc_status_code.name if exc.grpc_status_code else exc.code
        return f"{status}: {exc.message}"
    return str(exc)


def fatal(exc: BaseException) -> bool:
    """Errors every later request would get too: no point sending them."""
    if isinstance(exc, exceptions.RetryError) and exc.cause is not None:
        exc = exc.cause
    if isinstance(
        exc, (exceptions.Unauthenticated, exceptions.PermissionDenied, exceptions.NotFound)
    ):
        return True
    if isinstance(exc, exceptions.FailedPrecondition):
        return True  # the queue does not exist (emulator) or is disabled: no task fits
    message = str(exc).lower()
    # gRPC's words for a target that cannot be resolved or parsed: not a transient outage.
    return isinstance(exc, exceptions.ServiceUnavailable) and any(
        words in message for words in ("dns resolution failed", "name resolution", "invalid target")
    )


@dataclass
class Circuit:
    """The run's retry budget and breaker, shared by every request of the run.

    The budget (`retry_deadline_s`) is spent only while some request is failing: from the
    moment its first failed attempt went out (a call that hung until its timeout spent that
    time waiting) until it succeeds or gives up, back-off included. Time spent while the
    backend answers is free, so a long run still retries a blip late in it. Several requests
    failing at once spend it once (the union of their failing time, not the sum).
    """

    retry_deadline_s: float
    on_stop: Callable[[], object] = lambda: None
    """Told once the run stops sending, so it can cut short requests waiting to retry."""
    window_s: float = CIRCUIT_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    """Seconds, for the budget and the window: the run's clock (BulkRun)."""
    retries: int = 0
    """Attempts sent again after a transient error."""
    last_success: float | None = None
    failing_since: float | None = None
    """When the transient failures since the last success began; None after a success."""
    last_error: Exception | None = None
    """The last transient error."""
    stopped: str | None = None
    """Why the run stopped sending, once it has."""
    aborted: bool = False
    """Stopped by a fatal error or the open circuit (not by the caller)."""
    _failing: int = 0
    """Requests between their first transient failure and their end."""
    _spending_since: float | None = None
    """Start of the current stretch with a request failing; None when none is."""
    _spent_s: float = 0.0
    """Budget spent by the stretches that have ended."""
    _last_end: float = -math.inf

    def spent(self) -> float:
        current = 0.0
        if self._spending_since is not None:
            current = self.clock() - self._spending_since
        return self._spent_s + current

    def remaining(self) -> float:
        return max(0.0, self.retry_deadline_s - self.spent())

    def began_failing(self, attempt_sent: float) -> None:
        """A request's first transient failure, of an attempt sent at `attempt_sent`."""
        self._failing += 1
        # Counted from when that attempt went out, but never twice: not before the end of a
        # stretch already counted.
        since = max(attempt_sent, self._last_end)
        if self._spending_since is None or since < self._spending_since:
            self._spending_since = since

    def ended_failing(self) -> None:
        """A request that had failed is done (succeeded, gave up or was cut short)."""
        self._failing -= 1
        if self._failing == 0 and self._spending_since is not None:
            self._last_end = self.clock()
            self._spent_s += self._last_end - self._spending_since
            self._spending_since = None

    def succeeded(self) -> None:
        self.last_success = self.clock()
        self.failing_since = None

    def failed_transiently(self, exc: Exception) -> None:
        """A transient error; the circuit opens once nothing but these came back for a
        whole window, or the run's retry deadline is spent and they keep coming."""
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = exc
        window = min(self.window_s, self.retry_deadline_s)
        if now - self.failing_since >= window:
            self.abort(f"no request succeeded for {window:g}s (last error: {describe(exc)})")
        elif self.remaining() == 0:
            self.budget_spent()

    def budget_spent(self) -> None:
        """Stops the run once its retry budget is gone. One reason whichever request notices
        first (one giving up, or the next about to be sent), so a report never depends on
        how the requests happened to be scheduled."""
        reason = f"retry deadline ({self.retry_deadline_s:g}s) spent"
        if self.failing_since is not None and self.last_error is not None:
            reason += f" and requests still fail (last error: {describe(self.last_error)})"
        self.abort(reason)

    def may_retry(self, exc: Exception) -> bool:
        return (
            self.stopped is None
            and retries.TRANSIENT(exc)
            and not fatal(exc)
            and self.remaining() > 0
        )

    def abort(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped, self.aborted = reason, True
            self.on_stop()

    def stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            self.on_stop()


class BulkRun:
    """One bulk enqueue; `stop()` may be called from a signal handler on the loop's thread."""

    def __init__(
        self,
        client: tasks_v2.CloudTasksAsyncClient,
        pipeline: Pipeline,
        *,
        concurrency: int,
        retry_deadline_s: float,
        call_timeout_s: float,
        on_outcome: Callable[[BulkOutcome], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: seconds, for the retry budget, the circuit and each outcome's latency:
        the time the event loop sleeps by (asyncio's loops keep time.monotonic; a test on a
        virtual-time loop passes that loop's own)."""
        if concurrency < 1:
            raise UsageError(f"--concurrency: {concurrency} must be at least 1")
        self._client, self._pipeline = client, pipeline
        self._offloader = Offloader(pipeline)
        self._concurrency = concurrency
        self._call_timeout_s = call_timeout_s
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()
        self.circuit = Circuit(retry_deadline_s, on_stop=self._wake.set, clock=clock)

    def stop(self, reason: str) -> None:
        self.circuit.stop(reason)

    async def run(self, specs: Iterable[TaskSpec]) -> list[BulkOutcome]:
        """Outcomes in input order, one per spec, whatever happens."""
        items = list(specs)
        outcomes: dict[int, BulkOutcome] = {}
        pending: Iterator[tuple[int, TaskSpec]] = enumerate(items)
        flights: dict[asyncio.Task[None], _Flight] = {}

        def record(outcome: BulkOutcome) -> None:
            outcomes[outcome.index] = outcome
            if self._on_outcome is None:
                return
            try:
                self._on_outcome(outcome)
            except Exception as exc:
                # The caller could not take this outcome: sending more would only make
                # tasks nobody hears of. The run stops, and says why in what it returns.
                self.circuit.abort(f"on_outcome failed: {type(exc).__name__}: {exc}")

        async def worker() -> None:
            # Workers pull from one shared iterator: at most `concurrency` calls in flight.
            me = asyncio.current_task()
            assert me is not None
            for index, spec in pending:
                flight = flights[me] = _Flight(index, self.circuit.clock)
                try:
                    record(await self._send(spec, flight))
                except asyncio.CancelledError:
                    record(flight.cut_short())
                    raise
                finally:
                    del flights[me]
                    if flight.failing:
                        self.circuit.ended_failing()
                if self.circuit.stopped is not None:
                    return

        workers = [asyncio.ensure_future(worker()) for _ in range(self._concurrency)]
        finished = asyncio.gather(*workers, return_exceptions=True)
        stopped = asyncio.ensure_future(self._wake.wait())
        # Until every worker is done, or the run stops sending (the circuit sets _wake).
        await asyncio.wait([finished, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        # Stopped: a request waiting to retry ends now with its last error; one on the wire
        # gets DRAIN_S to answer.
        for task, flight in list(flights.items()):
            if not flight.on_the_wire:
                task.cancel()
        busy = [w for w in workers if not w.done()]
        if busy:
            _, late = await asyncio.wait(busy, timeout=DRAIN_S)
            for task in late:
                task.cancel()
        await finished
        # An input without an outcome was left by a worker that stopped with the run.
        reason = self.circuit.stopped
        for index in range(len(items)):
            if index not in outcomes:
                record(BulkOutcome(index, Outcome.NOT_SENT, error=f"not sent: {reason}"))
        return [outcomes[index] for index in range(len(items))]

    async def _send(self, spec: TaskSpec, flight: _Flight) -> BulkOutcome:
        try:
            if needs_offload(self._pipeline, spec):
                # The upload blocks: in a thread, so other tasks of the run go on meanwhile.
                spec = await asyncio.to_thread(self._offloader.offload, spec)
            task = build_task(self._pipeline, spec)
        except (UsageError, UploadError) as exc:
            return BulkOutcome(flight.index, Outcome.FAILED, error=str(exc))
        circuit = self.circuit
        first_budget = circuit.remaining()
        if first_budget == 0:
            # Spent by requests that have ended (as this one was picked up): anything sent
            # now could not wait for an answer at all.
            circuit.budget_spent()
            return BulkOutcome(flight.index, Outcome.NOT_SENT, error=f"not sent: {circuit.stopped}")

        def on_error(exc: Exception) -> None:
            flight.errors.append(exc)
            circuit.failed_transiently(exc)

        retry = AsyncRetry(
            predicate=circuit.may_retry,
            initial=retries.INITIAL_BACKOFF_S,
            maximum=retries.MAX_BACKOFF_S,
            multiplier=2.0,
            # The budget runs down at most as fast as the clock, and exactly that fast once
            # this request fails: so no back-off ends past this.
            timeout=circuit.remaining(),
            on_error=on_error,
        )

        async def attempt() -> tasks_v2.Task:
            # The first attempt goes with the budget seen above: the clock may have moved
            # since, but a request never sent has no error to fail with.
            budget = circuit.remaining() if flight.errors else first_budget
            if budget == 0:  # spent during the back-off: this request still fails
                circuit.failed_transiently(flight.errors[-1])
                raise exceptions.RetryError(
                    f"retry deadline ({circuit.retry_deadline_s:g}s) spent", None
                )
            if flight.errors:
                circuit.retries += 1
            flight.on_the_wire = True
            sent = circuit.clock()
            try:
                response = await self._client.create_task(
                    parent=self._pipeline.queue,
                    task=task,
                    retry=None,
                    timeout=min(self._call_timeout_s, budget),
                )
            except asyncio.CancelledError:
                raise  # cut short on the wire: the flag stays for cut_short()
            except BaseException as exc:
                flight.on_the_wire = False
                if isinstance(exc, Exception) and retries.TRANSIENT(exc) and not flight.failing:
                    flight.failing = True
                    circuit.began_failing(sent)
                raise
            flight.on_the_wire = False
            return response

        try:
            # pyright reads AsyncRetry's ParamSpec wrapper as wanting arguments; it has none.
            response = await retry(attempt)()  # pyright: ignore[reportCallIssue]
        except exceptions.AlreadyExists as exc:
            circuit.succeeded()  # the backend answered
            if not task.name:
                return flight.done(Outcome.FAILED, error=describe(exc))
            return flight.done(Outcome.EXISTED, task_name=task.name)
        except exceptions.GoogleAPIError as exc:
            if fatal(exc):
                circuit.abort(f"{describe(exc)} (stops the run: retrying cannot fix it)")
            # A RetryError's cause went through on_error already (or it has none: the
            # budget ran out during the back-off).
            if not isinstance(exc, exceptions.RetryError):
                flight.errors.append(exc)
                if retries.TRANSIENT(exc):
                    circuit.failed_transiently(exc)
            return flight.ended(describe(exc))
        circuit.succeeded()
        return flight.done(Outcome.CREATED, task_name=response.name)


def _may_have_arrived(exc: Exception) -> bool:
    """Whether a failed attempt may still have created its task: a call that timed out, or
    a connection lost after the call went out. gRPC says UNAVAILABLE both for a channel
    that never connected ("failed to connect to all addresses": nothing was sent) and for
    a connection dropped mid-call."""
    if isinstance(exc, exceptions.DeadlineExceeded):
        return True
    if isinstance(exc, exceptions.ServiceUnavailable):
        # An address that does not resolve (fatal) sends nothing either.
        return "failed to connect to all addresses" not in str(exc).lower() and not fatal(exc)
    return False


@dataclass
class _Flight:
    """One input on its way: its attempts so far, and whether one is on the wire now."""

    index: int
    clock: Callable[[], float]
    started: float = field(init=False)
    errors: list[Exception] = field(default_factory=list)
    on_the_wire: bool = False
    failing: bool = False
    """Had a transient failure: spending the run's retry budget until it ends."""

    def __post_init__(self) -> None:
        self.started = self.clock()

    def done(
        self, outcome: Outcome, *, task_name: str | None = None, error: str | None = None
    ) -> BulkOutcome:
        # `errors` holds every failed attempt, so an answered one adds one more.
        answered = outcome in (Outcome.CREATED, Outcome.EXISTED) or self.on_the_wire
        return BulkOutcome(
            self.index,
            outcome,
            task_name=task_name,
            error=error,
            attempts=len(self.errors) + answered,
            latency_s=self.clock() - self.started,
        )

    def ended(self, error: str) -> BulkOutcome:
        """No success: UNKNOWN if an attempt may have reached Cloud Tasks without its answer
        reaching us, FAILED if every attempt was refused or never got through."""
        if any(_may_have_arrived(e) for e in self.errors):
            return self.done(Outcome.UNKNOWN, error=f"no answer ({error}): it may exist")
        return self.done(Outcome.FAILED, error=error)

    def cut_short(self) -> BulkOutcome:
        """The outcome of a request the run stopped waiting for."""
        if self.on_the_wire:
            return self.done(
                Outcome.UNKNOWN, error="sent, but no answer before the run stopped: it may exist"
            )
        last = describe(self.errors[-1]) if self.errors else "never sent"
        return self.ended(f"stopped retrying: {last}")
