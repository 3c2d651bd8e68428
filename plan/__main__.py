"""`python -m plan --stack dev`: print what a stack would create, computed offline.

Exit status: 0 when the plan (or diff) was written, 1 when the stack config is invalid
(every problem on its own line, as `pulumi up` reports it), 2 for a bad command line,
a missing or malformed stack file, or a `--diff` file that is not a plan.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import pulumi

from plan import diff, document, graph, tree
from plan.recorder import run_program
from plan.stackfile import StackFileError, read_stack_file

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "json", "mermaid", "markdown")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plan",
        description="Run the Pulumi program for a stack under mocks (no cloud, no"
        " credentials, no CLI) and show every resource it would register.",
    )
    parser.add_argument("--stack", required=True, help="reads Pulumi.STACK.yaml")
    parser.add_argument(
        "--stack-file",
        type=Path,
        metavar="FILE",
        help="read the config from FILE instead of Pulumi.STACK.yaml (to try a change)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text: tree with key settings; json: sorted document for diff/--diff;"
        " mermaid: resource graph; markdown: text and graph for a PR comment",
    )
    parser.add_argument(
        "--diff",
        metavar="BASE.json",
        help="show what changed from BASE.json (a plan written with --format json)"
        " to this plan; with --format markdown, the diff heads the comment",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    parser.add_argument(
        "--program-dir",
        type=Path,
        default=ROOT,
        help="directory holding __main__.py and the stack files (default: this project)",
    )
    args = parser.parse_args(argv)
    if args.diff and args.format not in ("text", "markdown"):
        parser.error("--diff: only with --format text or markdown")
    return args


def _markdown(plan: dict, changes: str | None) -> str:
    title = f"## Offline plan: stack `{plan['stack']}`"
    note = (
        "Computed from the program under mocks: no cloud, no credentials, not a"
        " `pulumi preview`. Values marked unknown are only known after deployment."
    )
    parts = [title, "", note, ""]
    if changes is not None:
        parts += ["### Changes", "", "```text", changes.rstrip(), "```", ""]
    parts += ["### Resources", "", "```text", tree.render(plan).rstrip(), "```", ""]
    parts += ["### Graph", "", "```mermaid", graph.render(plan).rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _render(args: argparse.Namespace) -> str:
    base = document.load(args.diff) if args.diff else None
    stack_file = read_stack_file(args.stack_file) if args.stack_file else None
    recording = run_program(
        args.program_dir,
        args.stack,
        stack_file.config if stack_file else None,
        secret_keys=stack_file.secret_keys if stack_file else (),
        preview=True,
    )
    plan = document.build(recording)
    changes = diff.render(diff.compare(base, plan), args.diff, "this plan") if base else None
    if args.format == "json":
        return document.dumps(plan)
    if args.format == "mermaid":
        return graph.render(plan)
    if args.format == "markdown":
        return _markdown(plan, changes)
    return changes if changes is not None else tree.render(plan)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        text = _render(args)
    except pulumi.RunError as error:
        # ConfigError: the same message `pulumi up` prints, one problem per line.
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (document.PlanFileError, StackFileError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    status = main()
    # Everything the run allocated dies with the process. Frozen, it is skipped by the
    # interpreter's final collection, which would otherwise scan it all (0.4 s at 100
    # pipelines, a fifth of the command).
    gc.freeze()
    sys.exit(status)
