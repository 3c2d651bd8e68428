"""`python -m plan --stack dev`: print what a stack would create, computed offline.

The policy pack runs on the plan as CI's preview runs it (plan.policy); its violations
are printed with their enforcement level (in the text and markdown output, on stderr
for json and mermaid).

Exit status: 0 when the plan (or diff) was written, 1 when the stack config is invalid
(every problem on its own line, as `pulumi up` reports it), 2 for a bad command line,
a missing or malformed stack file, a `--diff` file that is not a plan, or a policy pack
that could not run, 3 when the plan was written but the pack reports a mandatory
violation (`--policy report` shows them and exits 0).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
from pathlib import Path

import pulumi

from plan import diff, document, graph, policy, tree
from plan.recorder import run_program
from plan.stackfile import StackFileError, read_stack_file

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "json", "mermaid", "markdown")
POLICY_MODES = ("enforce", "report", "off")
BLOCKED = 3


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
    parser.add_argument(
        "--policy",
        choices=POLICY_MODES,
        default="enforce",
        help="enforce: run the policy pack, exit 3 on a mandatory violation (default);"
        " report: show violations, exit 0; off: don't run it (a plan only used as a base)",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    parser.add_argument(
        "--program-dir",
        type=Path,
        default=ROOT,
        help="directory holding __main__.py and the stack files (default: this project); a"
        " program that imports cloudrun_tasks, when that is not installed, gets this"
        " checkout's components/ under that name",
    )
    args = parser.parse_args(argv)
    if args.diff and args.format not in ("text", "markdown"):
        parser.error("--diff: only with --format text or markdown")
    return args


def _markdown(plan: dict, changes: str | None, verdicts: str | None) -> str:
    """The full plan (tree and graph); with a diff, the changes alone: what a reviewer
    reads in a pull request, the full plan beside it (`--format markdown` without --diff)."""
    title = f"## Offline plan: stack `{plan['stack']}`"
    note = (
        "Computed from the program under mocks: no cloud, no credentials, not a"
        " `pulumi preview`. Values marked unknown are only known after deployment."
    )
    parts = [title, "", note, ""]
    if verdicts is not None:
        parts += ["### Policy", "", "```text", verdicts.rstrip(), "```", ""]
    if changes is not None:
        parts += ["### Changes", "", "```text", changes.rstrip(), "```", ""]
        parts += [tree.summary(plan)]
        return "\n".join(parts) + "\n"
    parts += ["### Resources", "", "```text", tree.render(plan).rstrip(), "```", ""]
    parts += ["### Graph", "", "```mermaid", graph.render(plan).rstrip(), "```"]
    return "\n".join(parts) + "\n"


def _labels(plan: dict) -> dict[str, str]:
    prefix = f"urn:pulumi:{plan['stack']}::{plan['project']}::"
    return {prefix + key: r.label for key, r in document.resources(plan).items()}


def _package_from_checkout() -> None:
    """A consumer program (examples/consumer/) imports the package as `cloudrun_tasks`, the
    name `components/` is installed under. Not installed here, it gets this checkout's
    copy, so that its plan shows what this checkout's components would register."""
    if importlib.util.find_spec("cloudrun_tasks") is None:
        import components

        sys.modules["cloudrun_tasks"] = components


def _render(args: argparse.Namespace) -> tuple[str, bool]:
    """The output, and whether the policy pack blocks it."""
    _package_from_checkout()
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
    verdicts, blocked = None, False
    if args.policy != "off":
        violations = policy.evaluate(recording, args.stack)
        verdicts = policy.render(violations, args.stack, _labels(plan))
        blocked = args.policy == "enforce" and policy.blocking(violations)
    if args.format in ("json", "mermaid"):
        if verdicts is not None:
            sys.stderr.write(verdicts)
        text = document.dumps(plan) if args.format == "json" else graph.render(plan)
        return text, blocked
    if args.format == "markdown":
        return _markdown(plan, changes, verdicts), blocked
    text = changes if changes is not None else tree.render(plan)
    return text + ("" if verdicts is None else "\n" + verdicts), blocked


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        text, blocked = _render(args)
    except pulumi.RunError as error:
        # ConfigError: the same message `pulumi up` prints, one problem per line.
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (document.PlanFileError, StackFileError, FileNotFoundError, policy.PolicyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if blocked:
        print(
            f"error: stack {args.stack}: the policy pack reports a mandatory violation"
            " (above); `pulumi preview` and `pulumi up` would stop here",
            file=sys.stderr,
        )
        return BLOCKED
    return 0


if __name__ == "__main__":
    status = main()
    # Everything the run allocated dies with the process. Frozen, it is skipped by the
    # interpreter's final collection, which would otherwise scan it all (0.4 s at 100
    # pipelines, a fifth of the command).
    gc.freeze()
    sys.exit(status)
