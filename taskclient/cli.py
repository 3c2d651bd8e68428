"""`python -m taskclient`: enqueue one task, or many from JSON lines, onto a pipeline."""

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, NoReturn

from tqdm import tqdm

from components.durations import NANOS_PER_SECOND, Duration
from taskclient import pipelines
from taskclient.client import BulkOutcome, TaskClient
from taskclient.durations import parse_duration
from taskclient.errors import EnqueueError, UsageError
from taskclient.pipelines import Pipeline
from taskclient.task_builder import TaskSpec

EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr rather than the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="read `pulumi stack output pipelines` of this stack")
    source.add_argument("--outputs", type=Path, help="JSON file of that stack output")
    parser.add_argument("--pipeline", required=True, help="pipeline name in the stack output")
    parser.add_argument("--path", default="/", help="path under the service URL (default /)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="repeatable"
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--delay", help="deliver after this long, e.g. 30s, 5m")
    when.add_argument("--at", help="deliver at this ISO 8601 time with timezone")
    parser.add_argument("--deadline", help="dispatch deadline (default: the pipeline's)")
    parser.add_argument("--emulator", metavar="HOST:PORT", help="local Cloud Tasks emulator")
    parser.add_argument(
        "--retry-deadline", default="60s", help="how long to retry transient errors (60s)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m taskclient", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("enqueue", help="create one task and print its name")
    _add_common(one)
    data = one.add_mutually_exclusive_group()
    data.add_argument("--data", help="JSON payload")
    data.add_argument("--data-file", type=Path, help="file sent as raw bytes")
    one.add_argument("--dedup-key", help="same key, same task: a repeat creates nothing new")
    many = commands.add_parser("bulk", help="create one task per JSON line of --input")
    _add_common(many)
    many.add_argument("--input", default="-", help="JSON lines file, or - for stdin (default)")
    many.add_argument("--dedup-field", help="use this field of each JSON object as its de-dup key")
    many.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
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
    if source == "-":
        return stdin.read().splitlines()
    try:
        return Path(source).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--input: cannot read {source}: {exc.strerror}") from None


def _bulk_specs(args: argparse.Namespace, lines: list[str]) -> tuple[list[int], list[TaskSpec]]:
    """Validates every line before anything is enqueued: a bad file sends nothing."""
    numbers: list[int] = []
    specs: list[TaskSpec] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        payload = _json(line, argument=f"--input line {number}")
        key = None
        if args.dedup_field:
            if not isinstance(payload, dict) or args.dedup_field not in payload:
                raise UsageError(f"--dedup-field: line {number} has no field {args.dedup_field!r}")
            key = str(payload[args.dedup_field])
        numbers.append(number)
        specs.append(_spec(args, payload, key))
    if not specs:
        raise UsageError(f"--input: {args.input} has no JSON lines")
    return numbers, specs


def _report(outcomes: list[BulkOutcome], numbers: list[int]) -> int:
    created = existed = failed = 0
    for outcome in outcomes:
        if outcome.result is None:
            failed += 1
            print(f"line {numbers[outcome.index]}: failed: {outcome.error}", file=sys.stderr)
            continue
        print(outcome.result.task_name)
        if outcome.result.created:
            created += 1
        else:
            existed += 1
    print(
        f"created {created}, already existed {existed}, failed {failed}",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else 0


def _run(args: argparse.Namespace, stdin: IO[str]) -> int:
    retry_deadline = parse_duration(args.retry_deadline, argument="--retry-deadline")
    client = TaskClient(
        _load_pipelines(args),
        emulator=args.emulator,
        retry_deadline_s=retry_deadline.nanos / NANOS_PER_SECOND,
    )
    with client:
        client.pipeline(args.pipeline)  # fail on a wrong name before reading any input
        if args.command == "enqueue":
            result = client.enqueue(args.pipeline, _spec(args, _one_payload(args), args.dedup_key))
            print(result.task_name)
            if not result.created:
                print("already existed: nothing new was created", file=sys.stderr)
            return 0
        numbers, specs = _bulk_specs(args, _read_lines(args.input, stdin))
        # disable=None: a bar on a terminal, nothing in logs or pipes.
        with tqdm(total=len(specs), unit="task", file=sys.stderr, disable=None) as progress:
            outcomes = client.enqueue_many(
                args.pipeline,
                specs,
                concurrency=args.concurrency,
                on_outcome=lambda _outcome: progress.update(),
            )
        return _report(outcomes, numbers)


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
