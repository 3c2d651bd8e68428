"""One delivery from Cloud Tasks, as the processing function sees it, and how it may fail."""

import json
from collections.abc import Mapping
from dataclasses import dataclass


class PermanentTaskError(Exception):
    """Raise from a processor when retrying cannot help (e.g. the payload fails validation):
    the task is dead-lettered and acknowledged instead of being retried until it expires."""


class MalformedTask(Exception):
    """The request cannot be a task: retrying it would fail the same way every time."""


@dataclass(frozen=True)
class TaskRequest:
    """The X-CloudTasks-* headers, decoded, plus the request itself.

    `queue` is the short queue id (the emulator sends the full path; it is cut to the id).
    `headers` has lower-case names. `payload` is the decoded JSON body when the request says
    application/json, else None (the raw bytes are always in `body`).
    """

    name: str
    queue: str
    retry_count: int
    execution_count: int
    eta: float | None
    path: str
    headers: Mapping[str, str]
    body: bytes
    payload: object = None

    @property
    def key(self) -> str:
        """Unique per task: task names are unique within a queue."""
        return f"{self.queue}/{self.name}"


def _number(headers: Mapping[str, str], name: str) -> float | None:
    # Cloud Tasks always sends numbers here; anything else is logged as unknown rather than
    # failing a delivery over its metadata.
    try:
        return float(headers[name])
    except (KeyError, ValueError):
        return None


def parse_task(headers: Mapping[str, str], path: str, body: bytes) -> TaskRequest:
    """`headers` with lower-case names. Raises MalformedTask if this is not from Cloud Tasks."""
    name = headers.get("x-cloudtasks-taskname", "")
    queue = headers.get("x-cloudtasks-queuename", "")
    if not name or not queue:
        raise MalformedTask("missing X-CloudTasks-TaskName/QueueName: not a Cloud Tasks delivery")
    return TaskRequest(
        name=name,
        queue=queue.rsplit("/", 1)[-1],
        retry_count=int(_number(headers, "x-cloudtasks-taskretrycount") or 0),
        execution_count=int(_number(headers, "x-cloudtasks-taskexecutioncount") or 0),
        eta=_number(headers, "x-cloudtasks-tasketa"),
        path=path,
        headers=headers,
        body=body,
    )


def decode_payload(task: TaskRequest) -> object:
    """The JSON body if the request declares one; raises MalformedTask if it isn't JSON."""
    content_type = task.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return None
    try:
        return json.loads(task.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedTask(f"body is not valid JSON: {exc}") from None
