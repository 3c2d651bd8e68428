"""`python -m taskclient`: enqueue one task, or many from JSON lines, onto a pipeline; replay
its dead letters."""

import argparse
import asyncio
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Generic, NoReturn, Protocol, TypeVar

from taskclient import pipelines, replay, tick, transport
from taskclient.bulk import BulkOutcome, BulkRun, Circuit, Outcome
from taskclient.client import TaskClient
from taskclient.durations import parse_duration
from taskclient.errors import EnqueueError, UsageError
from taskclient.pipelines import Pipeline
from taskclient.replay import Arrived, Replayed, ReplayRun, subscription_of
from taskclient.report import Progress, summarize, write_not_created
from taskclient.shared import NANOS_PER_SECOND, Duration
from taskclient.task_builder import TaskSpec, build_task

# JSON's insignificant whitespace (RFC 8259 section 2): a line of only these is blank.
JSON_WHITESPACE = " \t\r\n"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
MAX_CONCURRENCY = 1000
EXIT_CODES = """exit status:
  0    every task created (or already there, for a de-dup key)
  1    some lines not created: failed, unknown (sent, no answer: may exist) or not sent
  2    bad command line or input: nothing was sent
  3    aborted: an error retrying cannot fix (credentials, permission, missing queue,
       unresolvable address), or the circuit opened (every request failed for a while)
  130  interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM): in-flight requests were
       given 5 s, the rest not sent, the report printed
"""
REPLAY_EXIT_CODES = """exit status:
  0    every message of the backlog pulled was replayed: its task created (or already
       there from an earlier replay) and the message acknowledged; --dry-run: every one is
       replayable. Dead letters that arrived during the run (published after it began, or
       from its own replays) are not replayed by it: counted, left for the next replay
  1    some messages not replayed: not a dead letter replay can read, failed, unknown,
       not sent, or not acknowledged; they go back to the subscription for the next replay
  2    bad command line, or the pipeline has no dead-letter subscription: nothing pulled
  3    aborted: an error retrying cannot fix (credentials, permission, missing queue or
       subscription), or the circuit opened; what was pulled and not replayed goes back
  130  interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM): in-flight requests were
       given 5 s, the rest handed back to the subscription, the report printed
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr rather than the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="read `pulumi stack output pipelines` of this stack")
    source.add_argument("--outputs", type=Path, help="JSON file of that stack output")
    parser.add_argument("--pipeline", required=True, help="pipeline name in the stack output")


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emulator", metavar="HOST:PORT", help="local Cloud Tasks emulator")
    parser.add_argument(
        "--storage-emulator",
        metavar="HOST:PORT",
        help="local Cloud Storage emulator for a payload bucket's uploads (default:"
        f" {transport.STORAGE_EMULATOR_ENV}=http://HOST:PORT)",
    )
    parser.add_argument(
        "--retry-deadline",
        default="60s",
        help="time the whole run may spend retrying transient errors; also caps each call's"
        " timeout (60s)",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency", type=int, default=32, help=f"requests in flight, 1..{MAX_CONCURRENCY} (32)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the final report as one JSON object"
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    _add_source(parser)
    parser.add_argument("--path", default="/", help="path under the service URL (default /)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="repeatable"
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--delay", help="deliver after this long, e.g. 30s, 5m")
    when.add_argument("--at", help="deliver at this ISO 8601 time with timezone")
    parser.add_argument("--deadline", help="dispatch deadline (default: the pipeline's)")
    _add_connection(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m taskclient",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser(
        "enqueue",
        help="create one task and print its name",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(one)
    data = one.add_mutually_exclusive_group()
    data.add_argument("--data", help="JSON payload")
    data.add_argument("--data-file", type=Path, help="file sent as raw bytes")
    one.add_argument("--dedup-key", help="same key, same task: a repeat creates nothing new")
    many = commands.add_parser(
        "bulk",
        help="create one task per JSON line of --input",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(many)
    many.add_argument("--input", default="-", help="JSON lines file, or - for stdin (default)")
    many.add_argument("--dedup-field", help="use this field of each JSON object as its de-dup key")
    many.add_argument(
        "--failed-out",
        type=Path,
        metavar="FILE",
        help="write the lines not created here, as they were: re-run them with --input FILE",
    )
    _add_output(many)
    again = commands.add_parser(
        "replay",
        help="re-create the dead letters waiting in the pipeline's dead-letter subscription",
        description=replay.__doc__,
        epilog=REPLAY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(again)
    _add_connection(again)
    again.add_argument(
        "--pubsub-emulator",
        metavar="HOST:PORT",
        help=f"local Pub/Sub emulator (default: {transport.PUBSUB_EMULATOR_ENV})",
    )
    again.add_argument(
        "--limit", type=int, help="handle at most N messages (default: until none are left)"
    )
    again.add_argument(
        "--dry-run",
        action="store_true",
        help="pull and show what would be replayed; create and acknowledge nothing",
    )
    _add_output(again)
    ticks = commands.add_parser(
        "tick",
        help="fire one schedule now (or --at a time), as its Cloud Scheduler job would",
        description=tick.__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(ticks)
    ticks.add_argument("--schedule", required=True, help="schedule name in the pipeline")
    ticks.add_argument(
        "--at", help="the tick's time, ISO 8601 with timezone (default: now, to the second)"
    )
    _add_connection(ticks)
    return parser


def _load_pipelines(args: argparse.Namespace) -> dict[str, Pipeline]:
    if args.stack:
        return pipelines.load_stack(args.stack)
    if args.outputs:
        return pipelines.load_file(args.outputs)
    return pipelines.load_env()


def _headers(raw: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header: {item!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _schedule(args: argparse.Namespace) -> tuple[Duration | None, datetime | None]:
    if args.delay:
        return parse_duration(args.delay, argument="--delay"), None
    if args.at:
        try:
            return None, datetime.fromisoformat(args.at)
        except ValueError:
            raise UsageError(f"--at: {args.at!r} is not ISO 8601, e.g. 2030-01-01T12:00Z") from None
    return None, None


def _spec(args: argparse.Namespace, payload: object, dedup_key: str | None) -> TaskSpec:
    deadline = parse_duration(args.deadline, argument="--deadline") if args.deadline else None
    delay, schedule_time = _schedule(args)
    return TaskSpec(
        payload=payload,
        path=args.path,
        headers=_headers(args.header),
        dispatch_deadline=deadline,
        dedup_key=dedup_key,
        delay=delay,
        schedule_time=schedule_time,
    )


def _json(text: str, *, argument: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{argument}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python's json won't hold: an integer of more digits than
        # sys.get_int_max_str_digits() (4,300), or nesting past the recursion limit.
        why = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise UsageError(f"{argument}: JSON Python can't hold ({why})") from None


def _one_payload(args: argparse.Namespace) -> object:
    if args.data is not None:
        return _json(args.data, argument="--data")
    if args.data_file is not None:
        try:
            return Path(args.data_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"--data-file: cannot read {args.data_file}: {exc.strerror}") from None
    return None


def _read_lines(source: str, stdin: IO[str]) -> list[str]:
    try:
        if source == "-":
            raw = getattr(stdin, "buffer", None)  # bytes, so a bad encoding is ours to report
            data = raw.read() if raw is not None else stdin.read().encode()
        else:
            data = Path(source).read_bytes()
        # JSON Lines separates lines with \n only: str.splitlines() also splits on U+2028,
        # U+0085 and other characters JSON strings may hold raw, which shifts line numbers
        # and cuts lines apart in --failed-out. A \r before the \n is JSON whitespace.
        return data.decode("utf-8").split("\n")
    except OSError as exc:
        raise UsageError(f"--input: cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--input: {source} is not UTF-8 (byte {exc.start})") from None


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    spec: TaskSpec | None
    error: str | None


def _bulk_lines(args: argparse.Namespace, lines: list[str]) -> list[_Line]:
    """One entry per non-blank line; a bad line fails alone and the rest still run."""
    entries: list[_Line] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip(JSON_WHITESPACE):
            continue
        try:
            payload = _json(text, argument=f"--input line {number}")
            key = _dedup_key(payload, args.dedup_field, number) if args.dedup_field else None
            entries.append(_Line(number, text, _spec(args, payload, key), None))
        except UsageError as exc:
            entries.append(_Line(number, text, None, str(exc)))
    return entries


def _dedup_key(payload: object, field: str, number: int) -> str:
    """The line's de-dup key: its field's value as JSON text (json.dumps: a string keeps its
    quotes), so 1, "1", 1.0 and true are four keys, not one as str() made them. Null,
    arrays and objects are refused: null is no key (two nulls are not one task), and a
    structure in the key field is more likely the wrong field than an id."""
    if not isinstance(payload, dict):
        raise UsageError(f"--dedup-field: line {number} is not a JSON object")
    if field not in payload:
        raise UsageError(f"--dedup-field: line {number} has no field {field!r}")
    value = payload[field]
    # type(), not isinstance(): bool is an int subclass, and true is not 1.
    if type(value) not in (str, int, float, bool):
        shown = json.dumps(value)[:40]
        raise UsageError(
            f"--dedup-field: line {number}: field {field!r} is {shown}; a de-dup key must be"
            " a string, number or boolean (not null, an array or an object)"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(
            f"--dedup-field: line {number}: field {field!r} is {value}, not a JSON number"
        )
    if value == "":
        raise UsageError(f"--dedup-field: line {number}: field {field!r} is an empty string")
    return json.dumps(value, ensure_ascii=False)


class _Run(Protocol):
    """What BulkRun and ReplayRun share: their circuit, and a way to stop them."""

    @property
    def circuit(self) -> Circuit: ...

    def stop(self, reason: str) -> None: ...


R = TypeVar("R", bound=_Run)


class _Watched(Generic[R]):
    """A run once started (`on_start`), stopped by SIGINT/SIGTERM, and how it ended."""

    def __init__(self) -> None:
        self.run: R | None = None
        self.caught: list[signal.Signals] = []

    def on_start(self, run: R) -> None:
        self.run = run
        _stop_on_signals(self.caught, run.stop)

    @property
    def retries(self) -> int:
        return self.run.circuit.retries if self.run is not None else 0

    def stopped_code(self) -> int | None:
        """The exit status of a run stopped by a signal or an open circuit, else None."""
        if self.caught:
            return EXIT_SIGNAL[self.caught[0]]
        if self.run is not None and self.run.circuit.aborted:
            return EXIT_ABORTED
        return None


def _bulk(args: argparse.Namespace, client: TaskClient, entries: list[_Line]) -> int:
    """Run, report every line, write --failed-out; the exit status says how it ended."""
    sendable = [entry for entry in entries if entry.spec is not None]
    progress = Progress(len(entries))
    watched = _Watched[BulkRun]()

    def on_outcome(outcome: BulkOutcome) -> None:
        progress.update(outcome, watched.retries)

    rejected = {
        entry.number: BulkOutcome(-1, Outcome.FAILED, error=entry.error)
        for entry in entries
        if entry.spec is None
    }
    for outcome in rejected.values():
        on_outcome(outcome)
    started = time.monotonic()
    try:
        sent = client.enqueue_many(
            args.pipeline,
            [entry.spec for entry in sendable if entry.spec is not None],
            concurrency=args.concurrency,
            on_outcome=on_outcome,
            on_start=watched.on_start,
        )
    finally:
        progress.close()
    by_line = {entry.number: outcome for entry, outcome in zip(sendable, sent, strict=True)}
    outcomes = [
        replace(by_line.get(entry.number) or rejected[entry.number], index=index)
        for index, entry in enumerate(entries)
    ]
    code = watched.stopped_code()
    if code is None:
        code = EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED
    failures: list[dict[str, object]] = []
    for entry, outcome in zip(entries, outcomes, strict=True):
        if outcome.ok:
            if not args.json:
                print(outcome.task_name)
            continue
        failures.append(
            {"line": entry.number, "outcome": outcome.outcome.value, "error": outcome.error}
        )
        print(f"line {entry.number}: {outcome.outcome.value}: {outcome.error}", file=sys.stderr)
    summary = summarize(
        outcomes,
        elapsed_s=time.monotonic() - started,
        retries=watched.retries,
        stopped=watched.run.circuit.stopped if watched.run is not None else None,
        exit_code=code,
    )
    if args.failed_out is not None:
        kept = write_not_created(args.failed_out, outcomes, [entry.text for entry in entries])
        print(f"{kept} lines not created written to {args.failed_out}", file=sys.stderr)
    if any(o.outcome is Outcome.UNKNOWN for o in outcomes):
        print(
            "unknown: sent without an answer, these tasks may exist; re-running them is safe"
            " with de-dup keys (--dedup-field), and may duplicate them without",
            file=sys.stderr,
        )
    print(summary.text(), file=sys.stderr)
    if args.json:
        print(summary.as_json(failures))
    return code


def _stop_on_signals(caught: list[signal.Signals], stop: Callable[[str], None]) -> None:
    """Stop signals stop the run (on the loop's thread); the first one sets the exit status."""

    def handle(signum: signal.Signals) -> None:
        caught.append(signum)
        stop(f"{signum.name}: stopped sending")

    loop = asyncio.get_running_loop()
    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, handle, signum)


def _arrivals(arrived: list[Arrived]) -> dict[str, object]:
    """What arrived during a replay and was left alone: said on stderr, returned for --json."""
    own = sum(a.own for a in arrived)
    if arrived:
        print(
            f"{len(arrived)} dead letters arrived during the run ({own} of them from this"
            " run's own replays, which failed again): not replayed, left in the subscription"
            " for the next replay",
            file=sys.stderr,
        )
    return {"arrivedMeanwhile": len(arrived), "arrivedFromThisRun": own}


def _dry_run_report(
    args: argparse.Namespace,
    results: list[Replayed],
    arrived: list[Arrived],
    stopped: str | None,
    code: int | None,
) -> int:
    """What each message would become; `code` set if the run was stopped or aborted."""
    failures: list[dict[str, object]] = []
    for result in results:
        letter, outcome = result.letter, result.outcome
        if outcome.outcome is Outcome.NOT_SENT and letter is not None:
            if not args.json:
                print(
                    f"{outcome.task_name}  replays {letter.task_name} (message"
                    f" {result.message_id}): POST {letter.path},"
                    f" {letter.content_type or 'no content type'}, {len(letter.body)} bytes;"
                    f" dead-lettered from {letter.queue or '?'} after retry"
                    f" {letter.retry_count or '?'}:"
                    f" {letter.reason or '(no reason given)'}"
                )
            continue
        failures.append(_failure(result))
    replayable = len(results) - len(failures)
    if code is None:
        code = EXIT_FAILED if failures else EXIT_OK
    print(
        f"dry run: {len(results)} messages pulled, {replayable} replayable, {len(failures)} not;"
        " nothing created, nothing acknowledged: every message went back to the subscription"
        + (f"\nstopped: {stopped}" if stopped else ""),
        file=sys.stderr,
    )
    arrivals = _arrivals(arrived)
    if args.json:
        print(
            json.dumps(
                {
                    **arrivals,
                    "dryRun": True,
                    "messages": len(results),
                    "replayable": replayable,
                    "stopped": stopped,
                    "exitCode": code,
                    "notReplayable": failures,
                }
            )
        )
    return code


def _failure(result: Replayed) -> dict[str, object]:
    """Reported on stderr as one line; returned for --json."""
    original = result.letter.task_name if result.letter else None
    outcome = result.outcome
    print(
        f"message {result.message_id} (task {original or '?'}): {outcome.outcome.value}:"
        f" {outcome.error}",
        file=sys.stderr,
    )
    return {
        "messageId": result.message_id,
        "taskName": original,
        "outcome": outcome.outcome.value,
        "error": outcome.error,
    }


def _replay(args: argparse.Namespace, client: TaskClient) -> int:
    """Run, report every message; the exit status says how it ended."""
    progress = None if args.dry_run else Progress(args.limit)
    watched = _Watched[ReplayRun]()

    def on_replayed(result: Replayed) -> None:
        if progress is not None:
            progress.update(result.outcome, watched.retries)

    started = time.monotonic()
    try:
        results = client.replay(
            args.pipeline,
            pubsub_emulator=args.pubsub_emulator,
            limit=args.limit,
            dry_run=args.dry_run,
            concurrency=args.concurrency,
            on_replayed=on_replayed,
            on_start=watched.on_start,
        )
    finally:
        if progress is not None:
            progress.close()
    if watched.run is None:
        raise RuntimeError("replay returned without starting its run")
    circuit = watched.run.circuit
    code = watched.stopped_code()
    if args.dry_run:
        return _dry_run_report(args, results, watched.run.arrived, circuit.stopped, code)
    if code is None:
        code = EXIT_OK if all(r.outcome.ok for r in results) else EXIT_FAILED
    failures: list[dict[str, object]] = []
    for result in results:
        if result.outcome.ok and result.letter is not None:
            if not args.json:
                print(
                    f"{result.outcome.task_name}  replays {result.letter.task_name}"
                    f" ({result.outcome.outcome.value})"
                )
            continue
        failures.append(_failure(result))
    outcomes = [result.outcome for result in results]
    if failures:
        print(
            f"{len(failures)} messages not replayed went back to the subscription: run replay"
            " again once their cause is fixed",
            file=sys.stderr,
        )
    summary = summarize(
        outcomes,
        elapsed_s=time.monotonic() - started,
        retries=circuit.retries,
        stopped=circuit.stopped,
        exit_code=code,
        noun="messages",
    )
    arrivals = _arrivals(watched.run.arrived)
    print(summary.text(), file=sys.stderr)
    if args.json:
        print(summary.as_json(failures, arrivals))
    return code


def _checked(args: argparse.Namespace) -> None:
    """Every argument that can be checked without sending anything, before anything is."""
    retry_deadline = parse_duration(args.retry_deadline, argument="--retry-deadline")
    if retry_deadline.nanos == 0:
        raise UsageError("--retry-deadline: must be more than 0s")
    args.retry_deadline_s = retry_deadline.nanos / NANOS_PER_SECOND
    if args.command in ("bulk", "replay") and not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency: {args.concurrency} must be 1..{MAX_CONCURRENCY}")
    if args.command == "replay" and args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: {args.limit} must be at least 1")


def _emulator(given: str | None, env_value: str | None, *, argument: str, env: str) -> str | None:
    """The emulator address from its flag or else its variable, checked (naming which)."""
    address = given or env_value
    if address:
        transport.check_emulator(address, argument=argument if given else env)
    return address


def _storage(args: argparse.Namespace, pipeline: Pipeline, emulator: str | None) -> None:
    """The storage emulator for a payload bucket's uploads, checked; with a local Cloud
    Tasks emulator and a payload bucket, its absence is named now, not as missing Google
    credentials at the first big body."""
    address = _emulator(
        args.storage_emulator,
        transport.storage_emulator_from_env(),
        argument="--storage-emulator",
        env=transport.STORAGE_EMULATOR_ENV,
    )
    if address:
        transport.use_storage_emulator(address)
    elif emulator and pipeline.payload_bucket:
        raise UsageError(
            f"--storage-emulator: pipeline {args.pipeline!r} has a payload bucket"
            f" ({pipeline.payload_bucket}) and --emulator is a local Cloud Tasks emulator:"
            " its big bodies go to a local storage emulator too; pass --storage-emulator"
            f" HOST:PORT (make local prints it) or set {transport.STORAGE_EMULATOR_ENV}"
        )


def _tick(args: argparse.Namespace, pipeline_map: dict[str, Pipeline]) -> int:
    pipeline = pipelines.select(pipeline_map, args.pipeline)
    when = datetime.now(UTC).replace(microsecond=0)
    if args.at is not None:
        try:
            when = datetime.fromisoformat(args.at)
        except ValueError:
            raise UsageError(f"--at: {args.at!r} is not an ISO 8601 time") from None
    emulator = _emulator(
        args.emulator,
        transport.emulator_from_env(),
        argument="--emulator",
        env=transport.EMULATOR_ENV,
    )
    client = transport.sync_client(emulator)
    try:
        fired = tick.fire(client, pipeline, args.schedule, when)
    finally:
        client.transport.close()
    print(fired.task_name)
    if not fired.created:
        print("already existed: this tick was fired before", file=sys.stderr)
    return EXIT_OK


def _run(args: argparse.Namespace, stdin: IO[str]) -> int:
    _checked(args)
    pipeline_map = _load_pipelines(args)
    if args.command == "tick":
        return _tick(args, pipeline_map)
    if args.command == "replay":
        subscription_of(pipelines.select(pipeline_map, args.pipeline), args.pipeline)
        emulator = _emulator(
            args.emulator,
            transport.emulator_from_env(),
            argument="--emulator",
            env=transport.EMULATOR_ENV,
        )
        args.pubsub_emulator = _emulator(
            args.pubsub_emulator,
            transport.pubsub_emulator_from_env(),
            argument="--pubsub-emulator",
            env=transport.PUBSUB_EMULATOR_ENV,
        )
        _storage(args, pipelines.select(pipeline_map, args.pipeline), emulator)
        with TaskClient(
            pipeline_map, emulator=emulator, retry_deadline_s=args.retry_deadline_s
        ) as client:
            return _replay(args, client)
    # A wrong name, and every option a task takes, fail before any input is read.
    build_task(pipelines.select(pipeline_map, args.pipeline), _spec(args, None, None))
    entries = _bulk_lines(args, _read_lines(args.input, stdin)) if args.command == "bulk" else []
    payload = _one_payload(args) if args.command == "enqueue" else None
    emulator = _emulator(
        args.emulator,
        transport.emulator_from_env(),
        argument="--emulator",
        env=transport.EMULATOR_ENV,
    )
    _storage(args, pipelines.select(pipeline_map, args.pipeline), emulator)
    with TaskClient(
        pipeline_map, emulator=emulator, retry_deadline_s=args.retry_deadline_s
    ) as client:
        if args.command == "enqueue":
            result = client.enqueue(args.pipeline, _spec(args, payload, args.dedup_key))
            print(result.task_name)
            if not result.created:
                print("already existed: nothing new was created", file=sys.stderr)
            return EXIT_OK
        return _bulk(args, client, entries)


def main(argv: Sequence[str] | None = None, stdin: IO[str] = sys.stdin) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args, stdin)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EnqueueError as exc:
        print(f"error: enqueue failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_SIGNAL[signal.SIGINT]
