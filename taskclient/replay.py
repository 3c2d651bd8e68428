"""Dead letters back onto their queue: pull them from the pipeline's dead-letter subscription,
re-create each as a task, acknowledge a message only once its task exists.

The message format is the handler's (handler/dead_letter.py): data = the exact request body,
or, with attribute `envelope` = 1 (attributes had to be cut to Pub/Sub's 1,024-byte limit),
a JSON object holding the whole request (the attributes below uncut, and `bodyBase64`); a
letter cut without an envelope is not replayed (it would send less); attributes `taskName`,
`queue`, `originalTask` (queue/name the replay's idempotency is keyed on, sent as
X-Replay-Of), `retryCount`, `reason`, `path` (the request target as the handler got it: raw
path and ?query, percent-encoding untouched; the replay requests exactly that, appended to
the service URL), `contentType`, `headers` (JSON object of the request's non-credential
headers) and `traceparent`/`tracestate` (the original task's W3C trace context, attributes of
their own so that the header cut for size never drops them).

- The replayed task keeps the original's trace context, so the replay's handler logs under
  the same trace id. Re-parsed by OpenTelemetry's propagator: a letter without one, or with
  one that is not valid W3C, gets a new trace (a task is never held back over its trace).

- The replayed task's id is the SHA-256 of `replay:<taskName>:<messageId>`: deterministic, so
  a message delivered or replayed twice finds its task ALREADY_EXISTS (then acknowledged)
  instead of creating a second one. The Pub/Sub message id is part of the key because a task
  name can come back (a de-dup key re-used after Cloud Tasks' window): two dead letters of the
  same name are two messages, and the second must not be acknowledged for the first's task.
- Acknowledged: only messages whose task was CREATED or already EXISTED. Everything else
  (invalid message, failed, unknown, not sent) is handed back to the subscription at the end
  of the run (ack deadline 0), so the next replay sees it at once and nothing is lost.
- Creating goes through taskclient.bulk: the same run-wide retry budget, circuit and outcomes.
- A run replays the backlog it found: a message published after the run began (by Pub/Sub's
  publish time), or the dead letter of a task this run created (its replay failed again), is
  not replayed by it. Such a message is held like the others, handed back at the end for the
  next replay (not acknowledged: it is a task that failed, and must not be lost) and
  reported as having arrived meanwhile. A pull that brings no backlog message ends the run,
  so a replay whose tasks keep failing ends instead of replaying its own dead letters.
- Dry run: pull, show, create nothing, acknowledge nothing, hand every message back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from google.api_core import exceptions
from google.pubsub_v1 import PubsubMessage, ReceivedMessage, SubscriberAsyncClient

from handler.dead_letter import ENVELOPE_ATTRIBUTE, ENVELOPE_VERSION, REPLAYED, TRACE_NAMES
from taskclient import tracing
from taskclient.bulk import DRAIN_S, BulkOutcome, BulkRun, Circuit, Outcome, describe, fatal
from taskclient.errors import UsageError
from taskclient.pipelines import Pipeline
from taskclient.task_builder import REPLAY_OF_HEADER, TaskSpec, build_task, task_id

# Attributes a message must carry to be replayed; the others are shown when present.
REQUIRED = ("taskName", "path", "contentType")
# Cut attributes a replay would send short (the reason is only shown).
CUT_REFUSED = (*REPLAYED, *TRACE_NAMES)
# Messages asked for per pull (Pub/Sub allows up to 1,000): one bulk run's worth of work.
PULL_BATCH = 100
# How long a pull may wait for messages. An empty answer (or none in time) means the
# subscription has nothing more for us right now: the run ends.
PULL_WAIT_S = 10.0
# Pub/Sub's longest ack deadline.
MAX_ACK_DEADLINE_S = 600
# Ack ids per acknowledge / modifyAckDeadline call (each request must stay under 512 KB).
ACK_CHUNK = 500
ACK_TIMEOUT_S = 30.0
# Headers Cloud Tasks or Cloud Run set on every delivery (a replayed task gets its own) or
# that describe the old connection: not copied onto the replayed task. Cloud Tasks reserves
# Host, Content-Length, User-Agent, X-Google-* and X-AppEngine-* (HttpRequest.headers) and
# sets X-CloudTasks-*; Cloud Run adds forwarding and trace headers.
DROPPED_HEADERS = {
    "host", "content-length", "content-type", "user-agent", "connection", "keep-alive",
    "te", "transfer-encoding", "upgrade", "accept-encoding", "forwarded", "via",
    "traceparent", "tracestate", "x-cloud-trace-context",
}  # fmt: skip
DROPPED_PREFIXES = ("x-cloudtasks-", "x-google-", "x-appengine-", "x-forwarded-")


class InvalidDeadLetter(ValueError):
    """A message replay cannot turn into a task: the message says which attribute and why."""


@dataclass(frozen=True)
class DeadLetter:
    """One pulled message, decoded."""

    message_id: str
    task_name: str
    path: str
    content_type: str
    body: bytes
    headers: Mapping[str, str]
    reason: str = ""
    queue: str = ""
    retry_count: str = ""
    original_task: str = ""
    """queue/name of the task this dead letter's task is or replays (the handler's
    `originalTask` attribute; older letters have it as an X-Replay-Of header, or not at all)."""
    trace: Mapping[str, str] = field(default_factory=dict)
    """The original task's valid trace context headers; {} if it had none."""

    @property
    def replay_key(self) -> str:
        return replay_key(self.task_name, self.message_id)

    @property
    def replay_of(self) -> str | None:
        """The original task, when this dead letter is a replay's written before dead letters
        carried `originalTask`."""
        return next(
            (v for n, v in self.headers.items() if n.lower() == REPLAY_OF_HEADER.lower()), None
        )

    def spec(self) -> TaskSpec:
        """The task that replays it: same body, path, content type and own headers."""
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in DROPPED_HEADERS
            and not name.lower().startswith(DROPPED_PREFIXES)
            and name.lower() != REPLAY_OF_HEADER.lower()
        }
        if self.content_type:
            headers["Content-Type"] = self.content_type
        headers.update(self.trace)
        # The original task as queue/name, also for a replay's own dead letter: the handler
        # keys a replay's idempotency on it, so that the task runs once however many replays
        # it goes through, even on a queue that has since been replaced.
        original = f"{self.queue}/{self.task_name}" if self.queue else self.task_name
        return TaskSpec(
            payload=self.body,
            path=self.path,
            headers=headers,
            dedup_key=self.replay_key,
            replay_of=self.original_task or self.replay_of or original,
        )


def replay_key(task_name: str, message_id: str) -> str:
    """The de-dup key of a dead letter's replay (hashed into the task id by build_task)."""
    return f"replay:{task_name}:{message_id}"


def replay_task_id(task_name: str, message_id: str) -> str:
    return task_id(replay_key(task_name, message_id))


def _unwrap(attributes: dict[str, str], data: bytes) -> tuple[dict[str, str], bytes]:
    """The attributes and body a dead letter stands for: its own, or, when the handler had to
    cut attributes to Pub/Sub's 1,024-byte limit, the whole request from its envelope. A cut
    letter without one (written before envelopes) is refused: replaying it would send less
    than the original (a shorter target, fewer headers)."""
    if attributes.get(ENVELOPE_ATTRIBUTE) != ENVELOPE_VERSION:
        cut = [n for n in attributes.get("truncated", "").split(",") if n in CUT_REFUSED]
        if cut:
            raise InvalidDeadLetter(
                f"attribute {', '.join(cut)} cut to Pub/Sub's 1,024-byte limit and no envelope:"
                " a replay would send less than the original; replay it by hand from the"
                " handler's log record (deadLetter=true, taskName)"
            )
        return attributes, data
    try:
        envelope: object = json.loads(data)
    except (ValueError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("bodyBase64"), str):
        raise InvalidDeadLetter("envelope: not a JSON object with bodyBase64")
    fields: dict[str, object] = envelope  # pyright: ignore[reportUnknownVariableType]
    try:
        body = base64.b64decode(str(fields["bodyBase64"]), validate=True)
    except ValueError:
        raise InvalidDeadLetter("envelope: bodyBase64 is not base64") from None
    whole = dict(attributes)
    for name, value in fields.items():
        if name == "headers":
            whole[name] = json.dumps(value)
        elif name != "bodyBase64" and isinstance(value, str):
            whole[name] = value
    return whole, body


def decode(message: ReceivedMessage) -> DeadLetter:
    """The dead letter in `message`; InvalidDeadLetter names what is missing or malformed."""
    attributes, data = _unwrap(dict(message.message.attributes), bytes(message.message.data))
    missing = [name for name in REQUIRED if name not in attributes]
    if missing:
        raise InvalidDeadLetter(f"missing attribute {', '.join(missing)}")
    if not attributes["taskName"]:
        raise InvalidDeadLetter("attribute taskName is empty")
    headers: object = {}
    if "headers" in attributes:
        try:
            headers = json.loads(attributes["headers"])
        except json.JSONDecodeError as exc:
            raise InvalidDeadLetter(f"attribute headers: invalid JSON ({exc.msg})") from None
        except (ValueError, RecursionError):
            raise InvalidDeadLetter("attribute headers: JSON Python can't hold") from None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidDeadLetter("attribute headers: not a JSON object of strings")
    return DeadLetter(
        message_id=message.message.message_id,
        task_name=attributes["taskName"],
        path=attributes["path"],
        content_type=attributes["contentType"],
        body=data,
        headers=headers,
        reason=attributes.get("reason", ""),
        queue=attributes.get("queue", ""),
        retry_count=attributes.get("retryCount", ""),
        original_task=attributes.get("originalTask", ""),
        trace=tracing.parsed(
            {name: attributes[name] for name in tracing.TRACE_HEADERS if name in attributes}
        ),
    )


def subscription_of(pipeline: Pipeline, name: str) -> str:
    if not pipeline.dead_letter_subscription:
        raise UsageError(
            f"--pipeline: pipeline {name!r} has no deadLetterSubscription in its stack output"
            " (deployed before dead letters went to Pub/Sub? run `pulumi up` first)"
        )
    return pipeline.dead_letter_subscription


@dataclass(frozen=True)
class Replayed:
    """One message's fate. `outcome.ok`: its task exists and the message was acknowledged.
    In a dry run a replayable message is NOT_SENT with the name its task would get."""

    message_id: str
    outcome: BulkOutcome
    letter: DeadLetter | None
    """None if the message could not be decoded (its outcome says why)."""


@dataclass(frozen=True)
class Arrived:
    """A message the run pulled but did not replay: published after the run began, or the
    dead letter of a task the run created."""

    message_id: str
    task_name: str
    """Its `taskName` attribute ("" if it has none)."""
    own: bool
    """The dead letter of a task this run created: that replay failed again."""


class ReplayRun:
    """One replay; `stop()` may be called from a signal handler on the loop's thread."""

    def __init__(
        self,
        subscriber: SubscriberAsyncClient,
        subscription: str,
        pipeline: Pipeline,
        bulk: BulkRun,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        pull_wait_s: float = PULL_WAIT_S,
        on_replayed: Callable[[Replayed], object] | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise UsageError(f"--limit: {limit} must be at least 1")
        self._subscriber, self._subscription = subscriber, subscription
        self._pipeline, self.bulk = pipeline, bulk
        self._limit, self._dry_run, self._pull_wait_s = limit, dry_run, pull_wait_s
        self._on_replayed = on_replayed
        self._held: dict[str, str] = {}
        """Pulled and not acknowledged, handed back at the end: message id -> newest ack id."""
        self._seen: set[str] = set()
        self._results: list[Replayed] = []
        self.arrived: list[Arrived] = []
        """Pulled, not replayed: arrived after the run began (handed back at the end)."""
        self._began: datetime | None = None
        self._made: set[str] = set()
        """Ids of the tasks this run's replays may have created."""
        self._stopping = asyncio.Event()
        # Long enough for a batch to be created with every retry the run allows: a message
        # should not be redelivered to another replayer while its task is being made.
        self._ack_deadline_s = min(
            MAX_ACK_DEADLINE_S, math.ceil(bulk.circuit.retry_deadline_s + DRAIN_S + 60)
        )

    @property
    def circuit(self) -> Circuit:
        return self.bulk.circuit

    def stop(self, reason: str) -> None:
        self.bulk.stop(reason)
        self._stopping.set()

    async def run(self) -> list[Replayed]:
        """Every message of the backlog pulled, in pull order, each with exactly one outcome
        (those that arrived meanwhile are in `arrived`)."""
        self._began = datetime.now(UTC)
        try:
            while self.circuit.stopped is None:
                wanted = PULL_BATCH
                if self._limit is not None:
                    wanted = min(wanted, self._limit - len(self._results))
                if wanted <= 0:
                    break
                backlog = [m for m in await self._pull(wanted) if not self._arrived(m)]
                if not backlog:
                    break
                await self._handle(backlog)
        finally:
            await self._hand_back()
        return self._results

    async def _pull(self, wanted: int) -> list[ReceivedMessage]:
        """Messages not seen before in this run; [] once there are none."""
        pull = asyncio.ensure_future(
            self._subscriber.pull(
                subscription=self._subscription, max_messages=wanted, timeout=self._pull_wait_s
            )
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([pull, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not pull.done():
            # Anything the cancelled pull was delivering is unacknowledged: Pub/Sub
            # redelivers it after its ack deadline.
            pull.cancel()
            return []
        try:
            response = pull.result()
        except exceptions.DeadlineExceeded:
            return []  # nothing arrived in time: drained
        except exceptions.GoogleAPIError as exc:
            why = "retrying cannot fix it" if fatal(exc) else "after retries"
            self.circuit.abort(f"pulling {self._subscription}: {describe(exc)} ({why})")
            return []
        fresh: list[ReceivedMessage] = []
        for received in response.received_messages:
            message_id = received.message.message_id
            if message_id in self._seen:
                # Handled earlier in this run and redelivered (its ack deadline ran out):
                # its outcome stands; the newest ack id is the one that can hand it back.
                if message_id in self._held:
                    self._held[message_id] = received.ack_id
                continue
            self._seen.add(message_id)
            self._held[message_id] = received.ack_id
            fresh.append(received)
        if fresh and not self._dry_run:
            await self._set_deadline([m.ack_id for m in fresh], self._ack_deadline_s)
        return fresh

    def _arrived(self, received: ReceivedMessage) -> bool:
        """Whether `received` is not the run's to replay (then it is noted in `arrived`)."""
        message = received.message
        task_name = message.attributes.get("taskName", "")
        own = task_name in self._made
        stamp = PubsubMessage.pb(message).publish_time
        # Pub/Sub's clock against ours: a skew moves the line by its size; this run's own
        # dead letters are recognised by task name whatever the clocks say.
        published = stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None
        if not own and (published is None or self._began is None or published <= self._began):
            return False
        self.arrived.append(Arrived(message.message_id, task_name, own))
        return True

    async def _set_deadline(self, ack_ids: list[str], seconds: int) -> None:
        for start in range(0, len(ack_ids), ACK_CHUNK):
            try:
                await self._subscriber.modify_ack_deadline(
                    subscription=self._subscription,
                    ack_ids=ack_ids[start : start + ACK_CHUNK],
                    ack_deadline_seconds=seconds,
                    timeout=ACK_TIMEOUT_S,
                )
            except exceptions.GoogleAPIError:
                # Best effort either way: a message whose deadline was not extended may be
                # redelivered and replayed again under the same name (ALREADY_EXISTS, then
                # acknowledged); one not handed back returns when its deadline runs out.
                continue

    def _outcome(self, letter: DeadLetter | InvalidDeadLetter) -> BulkOutcome:
        """What a dry run reports; a real run's outcomes for decoded letters come from bulk."""
        if isinstance(letter, InvalidDeadLetter):
            return BulkOutcome(-1, Outcome.FAILED, error=f"not a replayable dead letter: {letter}")
        try:
            task = build_task(self._pipeline, letter.spec())
        except UsageError as exc:
            return BulkOutcome(-1, Outcome.FAILED, error=str(exc))
        return BulkOutcome(-1, Outcome.NOT_SENT, task_name=task.name, error="dry run")

    async def _handle(self, messages: list[ReceivedMessage]) -> None:
        letters: list[DeadLetter | InvalidDeadLetter] = []
        for received in messages:
            try:
                letters.append(decode(received))
            except InvalidDeadLetter as exc:
                letters.append(exc)
        if self._dry_run:
            for received, letter in zip(messages, letters, strict=True):
                self._record(received, letter, self._outcome(letter))
            return
        valid = [letter for letter in letters if isinstance(letter, DeadLetter)]
        # Every task this run may create, answered or not: its dead letter is not ours to
        # replay again.
        self._made.update(replay_task_id(v.task_name, v.message_id) for v in valid)
        sent = iter(await self.bulk.run([letter.spec() for letter in valid]))
        outcomes = [
            next(sent) if isinstance(letter, DeadLetter) else self._outcome(letter)
            for letter in letters
        ]
        exists = [r.ack_id for r, o in zip(messages, outcomes, strict=True) if o.ok]
        ack_error = await self._acknowledge(exists)
        for received, letter, outcome in zip(messages, letters, outcomes, strict=True):
            if outcome.ok and ack_error is not None:
                outcome = replace(
                    outcome,
                    outcome=Outcome.FAILED,
                    error=(
                        f"task {outcome.task_name} exists, but the message was not"
                        f" acknowledged ({ack_error}): the next replay finds the task and"
                        " acknowledges it"
                    ),
                )
            elif outcome.ok:
                del self._held[received.message.message_id]
            self._record(received, letter, outcome)

    async def _acknowledge(self, ack_ids: list[str]) -> str | None:
        """None once every message is acknowledged, else the error."""
        try:
            for start in range(0, len(ack_ids), ACK_CHUNK):
                await self._subscriber.acknowledge(
                    subscription=self._subscription,
                    ack_ids=ack_ids[start : start + ACK_CHUNK],
                    timeout=ACK_TIMEOUT_S,
                )
        except exceptions.GoogleAPIError as exc:
            return describe(exc)
        return None

    def _record(
        self, received: ReceivedMessage, letter: DeadLetter | InvalidDeadLetter, o: BulkOutcome
    ) -> None:
        result = Replayed(
            message_id=received.message.message_id,
            outcome=replace(o, index=len(self._results)),
            letter=letter if isinstance(letter, DeadLetter) else None,
        )
        self._results.append(result)
        if self._on_replayed is not None:
            self._on_replayed(result)

    async def _hand_back(self) -> None:
        """Every message not acknowledged goes back to the subscription now (ack deadline
        0), for the next replay, instead of staying invisible until its deadline."""
        if self._held:
            await self._set_deadline(list(self._held.values()), 0)
            self._held.clear()
