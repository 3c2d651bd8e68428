"""`python -m plan.drift`: the issue a scheduled drift check opens for one stack.

The drift workflow (.github/workflows/drift.yml) runs, as the previewer, `pulumi preview
--refresh --expect-no-changes --json` on each stack: the engine reads every resource from
Google Cloud, then compares the program with what it read. Its JSON (pulumi/pulumi
`pkg/display/json.go`, `PreviewDigest`: `steps`, each with `op`, `urn`, `oldState` and
`newState`, whose `type`, `inputs`, `parent` and `protect` are the resource's) becomes two
plan documents: the cloud as refreshed (each step's old state) and the program (its new
state). Their difference is rendered as the offline plan renders a pull request's
(plan.diff): replacements first with the field that forces them, then added, removed and
changed settings, one line per setting.

Exit status: 0 with `drift=true|false` written to --github-output; 1 when the preview
JSON is missing or not a preview (the preview failed for another reason than drift: the
workflow fails rather than closing or opening an issue on a guess).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plan import diff
from plan.comment import fit
from plan.document import FORMAT, resource_key
from plan.recorder import UNKNOWN

# Steps that change nothing: the resource as the program wants it is what the cloud has.
UNCHANGED = frozenset({"same", "read", "refresh"})
TITLE = "Drift: stack {stack} differs from the program"


class PreviewError(ValueError):
    """The file is not the JSON `pulumi preview --json` writes."""


def marker(stack: str) -> str:
    """The body's first line: how the workflow finds the stack's issue again."""
    return f"<!-- cloudrun-tasks drift: {stack} -->"


def load(text: str) -> dict[str, Any]:
    try:
        preview = json.loads(text)
    except ValueError:
        raise PreviewError("not JSON: the preview failed before writing its plan") from None
    if not isinstance(preview, dict) or not isinstance(preview.get("steps", []), list):
        raise PreviewError("not the JSON of `pulumi preview --json` (no `steps` list)")
    errors = [
        d.get("message", "").strip()
        for d in preview.get("diagnostics", [])
        if isinstance(d, dict) and d.get("severity") == "error"
    ]
    if errors:
        raise PreviewError("the preview reported errors: " + "; ".join(errors))
    return preview


def changed_steps(preview: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in preview.get("steps", []) if step.get("op") not in UNCHANGED]


# How the engine's JSON spells a value it can't know before `pulumi up`
# (sdk/go/common/resource/plugin: UnknownStringValue).
ENGINE_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _inputs(value: Any) -> Any:
    """Inputs as the plan shows them: engine unknowns as plan unknowns, without the
    bridge's bookkeeping keys (`__defaults`, `__meta`)."""
    if isinstance(value, dict):
        return {k: _inputs(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_inputs(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # as plan.document writes numbers: 5, not 5.0
    return UNKNOWN if value == ENGINE_UNKNOWN else value


def _entry(state: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    return {
        "type": state["type"],
        "name": state["urn"].rsplit("::", 1)[-1],
        "parent": keys.get(state.get("parent", ""), ""),
        "component": not state.get("custom", True),
        "protect": bool(state.get("protect", False)),
        "aliases": [],
        "dependsOn": [],
        "inputDependencies": {},
        "inputs": _inputs(state.get("inputs") or {}),
    }


def _document(stack: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "project": "",
        "stack": stack,
        "unknown": UNKNOWN,
        "resources": resources,
        "outputs": {},
    }


def documents(preview: dict[str, Any], stack: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the cloud as refreshed, the program): plan documents of the preview's resources.
    A step's old state is the resource as the refresh read it; its new state is what the
    program declares (absent for a delete, old state absent for a create)."""
    cloud: dict[str, Any] = {}
    program: dict[str, Any] = {}
    steps = [
        s for s in preview.get("steps", []) if s["urn"].split("::")[-2] != "pulumi:pulumi:Stack"
    ]
    keys = {s["urn"]: resource_key(s["urn"]) for s in steps}
    for step in steps:
        for side, resources in (("oldState", cloud), ("newState", program)):
            state = step.get(side)
            if state:
                resources[keys[step["urn"]]] = _entry(state, keys)
    return _document(stack, cloud), _document(stack, program)


def issue_body(preview: dict[str, Any], stack: str, run_url: str) -> str:
    """The issue's markdown: marker, what to do, the readable diff, under GitHub's limit."""
    cloud, program = documents(preview, stack)
    rendered = diff.render(diff.compare(cloud, program), "the cloud", "the program")
    ops = sorted({step["op"] for step in changed_steps(preview)})
    header = "\n".join(
        [
            marker(stack),
            f"`pulumi preview --refresh --expect-no-changes` on stack `{stack}` found"
            f" resources that differ from the program ({', '.join(ops)}): someone or"
            " something changed them outside the pipeline, or the program changed without"
            " being deployed.",
            "",
            "Read as a change the next `pulumi up` would make (from what Google Cloud has now"
            " to what the program declares). Either bring the change into the program by a"
            " pull request, or let the next deploy put the program's values back. This issue"
            " is updated by every scheduled check and closed by the first clean one.",
            "",
            "```text",
        ]
    )
    footer = f"```\n\nRun: {run_url}"
    return fit(rendered, header, footer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan.drift", description=__doc__)
    parser.add_argument("preview", type=Path, help="stdout of pulumi preview --json")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--run-url", required=True, help="the workflow run, linked in the body")
    parser.add_argument("--output", "-o", type=Path, required=True, help="the issue body")
    parser.add_argument("--github-output", type=Path, help="appends drift=true|false")
    args = parser.parse_args(argv)
    try:
        preview = load(args.preview.read_text(encoding="utf-8"))
    except (OSError, PreviewError) as error:
        print(f"error: {args.preview}: {error}", file=sys.stderr)
        return 1
    drift = bool(changed_steps(preview))
    args.output.write_text(issue_body(preview, args.stack, args.run_url) if drift else "")
    if args.github_output:
        with args.github_output.open("a", encoding="utf-8") as out:
            out.write(f"drift={'true' if drift else 'false'}\n")
            out.write(f"title={TITLE.format(stack=args.stack)}\n")
    print(f"stack {args.stack}: {'drift' if drift else 'no drift'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
