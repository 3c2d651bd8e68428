"""Enqueue one task or many onto a pipeline's queue."""

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from google.api_core import exceptions
from google.cloud import tasks_v2

from taskclient import pipelines, retries, transport
from taskclient.errors import EnqueueError, UsageError
from taskclient.pipelines import Pipeline
from taskclient.task_builder import TaskSpec, build_task


@dataclass(frozen=True)
class EnqueueResult:
    task_name: str
    created: bool
    """False when ALREADY_EXISTS answered: a task with this de-dup key was created before."""
    attempts: int


@dataclass(frozen=True)
class BulkOutcome:
    """One input's fate: exactly one of `result` and `error` is set."""

    index: int
    result: EnqueueResult | None
    error: str | None


def _describe(exc: exceptions.GoogleAPIError) -> str:
    if isinstance(exc, exceptions.RetryError):
        return f"gave up retrying transient errors: {exc.cause or exc.message}"
    if isinstance(exc, exceptions.GoogleAPICallError):
        status = exc.grpc_status_code.name if exc.grpc_status_code else exc.code
        return f"{status}: {exc.message}"
    return str(exc)


def _result(task: tasks_v2.Task, response: tasks_v2.Task | None, attempts: int) -> EnqueueResult:
    if response is None:
        return EnqueueResult(task_name=task.name, created=False, attempts=attempts)
    return EnqueueResult(task_name=response.name, created=True, attempts=attempts)


class TaskClient:
    """Creates HTTP tasks for the pipelines of one stack.

    `emulator`: HOST:PORT of a local Cloud Tasks emulator (default: TASKS_EMULATOR_HOST);
    without it the real API is used with Application Default Credentials.
    `retry_deadline_s`: how long transient errors are retried for, per task.
    """

    def __init__(
        self,
        pipeline_map: Mapping[str, Pipeline],
        *,
        emulator: str | None = None,
        retry_deadline_s: float = 60.0,
        call_timeout_s: float = 30.0,
    ) -> None:
        self._pipelines = dict(pipeline_map)
        self._emulator = emulator or transport.emulator_from_env()
        self._retry_deadline_s = retry_deadline_s
        self._call_timeout_s = call_timeout_s
        self._sync: tasks_v2.CloudTasksClient | None = None

    @classmethod
    def from_env(cls) -> "TaskClient":
        """For code on Cloud Run: pipelines from TASKS_PIPELINES (emulator: TASKS_EMULATOR_HOST)."""
        return cls(pipelines.load_env())

    def pipeline(self, name: str) -> Pipeline:
        return pipelines.select(self._pipelines, name)

    def enqueue(self, pipeline_name: str, spec: TaskSpec) -> EnqueueResult:
        """Creates one task; UsageError for bad input, EnqueueError if Cloud Tasks refuses."""
        pipeline = self.pipeline(pipeline_name)
        task = build_task(pipeline, spec)
        if self._sync is None:
            self._sync = transport.sync_client(self._emulator)
        errors: list[Exception] = []
        try:
            response = self._sync.create_task(
                parent=pipeline.queue,
                task=task,
                retry=retries.sync_retry(self._retry_deadline_s, errors.append),
                timeout=self._call_timeout_s,
            )
        except exceptions.AlreadyExists:
            if not task.name:
                raise
            return _result(task, None, len(errors) + 1)
        except exceptions.GoogleAPIError as exc:
            raise EnqueueError(_describe(exc)) from exc
        return _result(task, response, len(errors) + 1)

    def enqueue_many(
        self,
        pipeline_name: str,
        specs: Iterable[TaskSpec],
        *,
        concurrency: int = 32,
        on_outcome: Callable[[BulkOutcome], object] | None = None,
    ) -> list[BulkOutcome]:
        """Creates many tasks, `concurrency` requests in flight; outcomes in input order.

        Never raises for one task's failure: every input gets an outcome, so nothing is dropped.
        """
        # A private loop, never installed as the thread's current one: asyncio.run() would
        # leave "no current event loop" behind for code that calls get_event_loop() later
        # (Pulumi's runtime does).
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(
                self.enqueue_many_async(
                    pipeline_name, specs, concurrency=concurrency, on_outcome=on_outcome
                )
            )
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def enqueue_many_async(
        self,
        pipeline_name: str,
        specs: Iterable[TaskSpec],
        *,
        concurrency: int = 32,
        on_outcome: Callable[[BulkOutcome], object] | None = None,
    ) -> list[BulkOutcome]:
        if concurrency < 1:
            raise UsageError(f"--concurrency: {concurrency} must be at least 1")
        pipeline = self.pipeline(pipeline_name)
        client = transport.async_client(self._emulator)
        pending: Iterator[tuple[int, TaskSpec]] = enumerate(specs)
        outcomes: list[BulkOutcome] = []

        async def worker() -> None:
            # Workers pull from one shared iterator: at most `concurrency` calls in flight,
            # and inputs are consumed lazily.
            for index, spec in pending:
                outcome = await self._enqueue_async(client, pipeline, index, spec)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            await client.transport.close()
        return sorted(outcomes, key=lambda outcome: outcome.index)

    async def _enqueue_async(
        self,
        client: tasks_v2.CloudTasksAsyncClient,
        pipeline: Pipeline,
        index: int,
        spec: TaskSpec,
    ) -> BulkOutcome:
        try:
            task = build_task(pipeline, spec)
        except UsageError as exc:
            return BulkOutcome(index=index, result=None, error=str(exc))
        errors: list[Exception] = []
        try:
            response = await client.create_task(
                parent=pipeline.queue,
                task=task,
                retry=retries.async_retry(self._retry_deadline_s, errors.append),
                timeout=self._call_timeout_s,
            )
        except exceptions.AlreadyExists as exc:
            if not task.name:
                return BulkOutcome(index=index, result=None, error=_describe(exc))
            return BulkOutcome(index=index, result=_result(task, None, len(errors) + 1), error=None)
        except exceptions.GoogleAPIError as exc:
            return BulkOutcome(index=index, result=None, error=_describe(exc))
        return BulkOutcome(index=index, result=_result(task, response, len(errors) + 1), error=None)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.transport.close()
            self._sync = None

    def __enter__(self) -> "TaskClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
