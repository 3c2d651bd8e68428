"""Enqueue one task or many onto a pipeline's queue."""

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from google.api_core import exceptions
from google.cloud import tasks_v2

from taskclient import pipelines, retries, transport
from taskclient.bulk import BulkOutcome, BulkRun, describe
from taskclient.errors import EnqueueError
from taskclient.offload import Offloader, UploadError
from taskclient.pipelines import Pipeline
from taskclient.replay import Replayed, ReplayRun, subscription_of
from taskclient.task_builder import TaskSpec, build_task

T = TypeVar("T")


@dataclass(frozen=True)
class EnqueueResult:
    task_name: str
    created: bool
    """False when ALREADY_EXISTS answered: a task with this de-dup key was created before."""
    attempts: int


def _result(task: tasks_v2.Task, response: tasks_v2.Task | None, attempts: int) -> EnqueueResult:
    if response is None:
        return EnqueueResult(task_name=task.name, created=False, attempts=attempts)
    return EnqueueResult(task_name=response.name, created=True, attempts=attempts)


class TaskClient:
    """Creates HTTP tasks for the pipelines of one stack.

    `emulator`: HOST:PORT of a local Cloud Tasks emulator (default: TASKS_EMULATOR_HOST);
    without it the real API is used with Application Default Credentials.
    `retry_deadline_s`: how long transient errors are retried for: per call for `enqueue`;
    for `enqueue_many` and `replay` the time the whole run may spend failing, which also
    caps each call's timeout (taskclient.bulk.Circuit).
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
        self._offloaders: dict[str, Offloader] = {}

    @classmethod
    def from_env(cls) -> "TaskClient":
        """For code on Cloud Run: pipelines from TASKS_PIPELINES (emulator: TASKS_EMULATOR_HOST)."""
        return cls(pipelines.load_env())

    def pipeline(self, name: str) -> Pipeline:
        return pipelines.select(self._pipelines, name)

    def enqueue(self, pipeline_name: str, spec: TaskSpec) -> EnqueueResult:
        """Creates one task; UsageError for bad input, EnqueueError if Cloud Tasks refuses
        (or a body over the pipeline's threshold could not be stored in its bucket)."""
        pipeline = self.pipeline(pipeline_name)
        try:
            spec = self._offloaders.setdefault(pipeline_name, Offloader(pipeline)).prepare(spec)
        except UploadError as exc:
            raise EnqueueError(str(exc)) from exc
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
            raise EnqueueError(describe(exc)) from exc
        return _result(task, response, len(errors) + 1)

    def _in_private_loop(self, work: Coroutine[object, object, T]) -> T:
        # A private loop, never installed as the thread's current one: asyncio.run() would
        # leave "no current event loop" behind for code that calls get_event_loop() later
        # (Pulumi's runtime does).
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(work)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def enqueue_many(
        self,
        pipeline_name: str,
        specs: Iterable[TaskSpec],
        *,
        concurrency: int = 32,
        on_outcome: Callable[[BulkOutcome], object] | None = None,
        on_start: Callable[[BulkRun], object] | None = None,
    ) -> list[BulkOutcome]:
        """Creates many tasks, `concurrency` requests in flight; an outcome per spec, in order.

        Never raises for one task's failure; see taskclient.bulk for when a run stops early.
        `on_start` gets the run (to stop it, e.g. from a signal handler on this thread).
        """
        return self._in_private_loop(
            self.enqueue_many_async(
                pipeline_name,
                specs,
                concurrency=concurrency,
                on_outcome=on_outcome,
                on_start=on_start,
            )
        )

    async def enqueue_many_async(
        self,
        pipeline_name: str,
        specs: Iterable[TaskSpec],
        *,
        concurrency: int = 32,
        on_outcome: Callable[[BulkOutcome], object] | None = None,
        on_start: Callable[[BulkRun], object] | None = None,
    ) -> list[BulkOutcome]:
        pipeline = self.pipeline(pipeline_name)
        client = transport.async_client(self._emulator)
        try:
            run = BulkRun(
                client,
                pipeline,
                concurrency=concurrency,
                retry_deadline_s=self._retry_deadline_s,
                call_timeout_s=self._call_timeout_s,
                on_outcome=on_outcome,
            )
            if on_start is not None:
                on_start(run)
            return await run.run(specs)
        finally:
            await client.transport.close()

    def replay(
        self,
        pipeline_name: str,
        *,
        pubsub_emulator: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        concurrency: int = 32,
        on_replayed: Callable[[Replayed], object] | None = None,
        on_start: Callable[[ReplayRun], object] | None = None,
    ) -> list[Replayed]:
        """Re-creates the dead letters waiting in the pipeline's dead-letter subscription as
        tasks, acknowledging each message once its task exists (see taskclient.replay).

        `pubsub_emulator`: HOST:PORT of a Pub/Sub emulator (default: PUBSUB_EMULATOR_HOST).
        An outcome per message of the backlog pulled, in pull order; never raises for one
        message's failure. Messages that arrived during the run are not replayed and not in
        the list: the run (given to `on_start`) lists them in `arrived`.
        """
        return self._in_private_loop(
            self.replay_async(
                pipeline_name,
                pubsub_emulator=pubsub_emulator,
                limit=limit,
                dry_run=dry_run,
                concurrency=concurrency,
                on_replayed=on_replayed,
                on_start=on_start,
            )
        )

    async def replay_async(
        self,
        pipeline_name: str,
        *,
        pubsub_emulator: str | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        concurrency: int = 32,
        on_replayed: Callable[[Replayed], object] | None = None,
        on_start: Callable[[ReplayRun], object] | None = None,
    ) -> list[Replayed]:
        pipeline = self.pipeline(pipeline_name)
        subscription = subscription_of(pipeline, pipeline_name)
        subscriber = transport.async_subscriber(
            pubsub_emulator or transport.pubsub_emulator_from_env()
        )
        client = transport.async_client(self._emulator)
        try:
            run = ReplayRun(
                subscriber,
                subscription,
                pipeline,
                BulkRun(
                    client,
                    pipeline,
                    concurrency=concurrency,
                    retry_deadline_s=self._retry_deadline_s,
                    call_timeout_s=self._call_timeout_s,
                ),
                limit=limit,
                dry_run=dry_run,
                on_replayed=on_replayed,
            )
            if on_start is not None:
                on_start(run)
            return await run.run()
        finally:
            await client.transport.close()
            await subscriber.transport.close()

    def close(self) -> None:
        if self._sync is not None:
            self._sync.transport.close()
            self._sync = None

    def __enter__(self) -> "TaskClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
