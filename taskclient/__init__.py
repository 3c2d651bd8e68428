"""Enqueue client for the pipelines this project provisions (Cloud Tasks -> Cloud Run)."""

from taskclient.bulk import BulkOutcome, Outcome
from taskclient.client import EnqueueResult, TaskClient
from taskclient.errors import EnqueueError, UsageError
from taskclient.pipelines import Pipeline, load_env, load_file, load_stack
from taskclient.replay import DeadLetter, Replayed, replay_task_id
from taskclient.task_builder import TaskSpec, build_task, task_id

__all__ = [
    "BulkOutcome",
    "DeadLetter",
    "EnqueueError",
    "EnqueueResult",
    "Outcome",
    "Pipeline",
    "Replayed",
    "TaskClient",
    "TaskSpec",
    "UsageError",
    "build_task",
    "load_env",
    "load_file",
    "load_stack",
    "replay_task_id",
    "task_id",
]
