"""Readable diffs: JSON inputs by key and tile title, long text by line, a one-field change
in a few lines, and a PR comment that fits GitHub's limit without cutting a line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from plan import comment, diff, document, readable
from plan.__main__ import main
from plan.recorder import run_program, stack_config
from tests.plan.conftest import ROOT, write_stack_file

ONE_FIELD_LIMIT = 4096
"""The issue's bound on the markdown diff of a one-field change (it was 41,707 bytes)."""


def _prod_markdown_diff(tmp_path: Path, change: dict[str, Any]) -> str:
    base = tmp_path / "base.json"
    assert main(["--stack", "prod", "--format", "json", "-o", str(base), "--policy", "off"]) == 0
    values = copy.deepcopy(stack_config(ROOT, "prod"))
    for key, value in change.items():
        values[key] = value
    stack_file = write_stack_file(tmp_path, values)
    target = tmp_path / "changes.md"
    argv = ["--stack", "prod", "--stack-file", str(stack_file), "--format", "markdown"]
    assert main([*argv, "--diff", str(base), "-o", str(target), "--policy", "report"]) == 0
    return target.read_text()


def test_one_field_change_diffs_in_a_few_lines(tmp_path: Path) -> None:
    pipelines = copy.deepcopy(stack_config(ROOT, "prod")["cloudrun-tasks:pipelines"])
    pipelines["orders"]["service"]["maxInstances"] = 25
    text = _prod_markdown_diff(tmp_path, {"cloudrun-tasks:pipelines": pipelines})
    assert len(text.encode()) < ONE_FIELD_LIMIT
    assert max(len(line) for line in text.splitlines()) < 700
    assert "template.scaling.maxInstanceCount: 20 -> 25" in text
    assert (
        'dashboardJson(json).mosaicLayout.tiles["Pipeline orders / Cloud Run instances"]'
        ".widget.xyChart.thresholds[0].value: 20.0 -> 25.0"
    ) in text
    assert "0 replaced." in text


def test_dashboard_tiles_are_compared_by_title() -> None:
    base = document.build(run_program(ROOT, "prod", preview=True))
    [key] = [
        k for k, r in base["resources"].items() if r["type"] == "gcp:monitoring/dashboard:Dashboard"
    ]
    head = copy.deepcopy(base)
    dashboard = json.loads(head["resources"][key]["inputs"]["dashboardJson"])
    tiles = dashboard["mosaicLayout"]["tiles"]
    removed = tiles.pop(1)  # the first pipeline's "Queue depth": the others keep their keys
    head["resources"][key]["inputs"]["dashboardJson"] = json.dumps(dashboard)
    changes = diff.compare(base, head).changed[key]
    paths = {path[: path.index('"]') + 2] for path, _, _ in changes}
    assert removed["widget"]["title"] == "Queue depth"
    assert paths == {'dashboardJson(json).mosaicLayout.tiles["Pipeline orders / Queue depth"]'}
    assert all(after == diff.ABSENT for _, _, after in changes)


def test_titles_that_repeat_without_a_heading_stay_a_list() -> None:
    items = [{"title": "a"}, {"title": "a"}]
    assert readable.expand({"j": json.dumps({"tiles": items})}) == {"j(json)": {"tiles": items}}


def test_long_text_changes_by_line() -> None:
    before = "# Title\n\nline one\nline two\nline three\n"
    after = "# Title\n\nline one\nline 2\nline three\n"
    assert readable.line_changes("doc", before, after) == [("doc (line 4)", "line two", "line 2")]


def test_long_one_line_strings_are_cut_around_the_change() -> None:
    before = "x" * 200 + "20" + "y" * 200
    after = "x" * 200 + "25" + "y" * 200
    a, b = readable.elide(before, after)
    # 40 characters either side of the first and last that differ ("0" and "5").
    assert a == "…" + "x" * 39 + "20" + "y" * 40 + "…"
    assert b == "…" + "x" * 39 + "25" + "y" * 40 + "…"
    assert readable.elide("short", "other") == ("short", "other")


# --- the PR comment -------------------------------------------------------------------


def _big_diff(lines: int) -> str:
    details = [f"      setting{i}: {'x' * 80} -> {'y' * 80}" for i in range(lines)]
    return "\n".join(
        [
            "## Offline plan: stack `dev`",
            "```text",
            "!! REPLACE cloudtasks.Queue orders: location (ForceNew location) changed",
            "Changed:",
            "  ~ cloudtasks.Queue orders",
            *details,
            "",
            "0 added, 0 removed, 0 moved, 1 changed, 1 replaced.",
            "```",
        ]
    )


def test_a_comment_that_fits_is_kept_whole() -> None:
    text = _big_diff(3)
    assert comment.fit(text, "<!-- m -->", "footer") == f"<!-- m -->\n{text}\n\nfooter\n"


def test_a_long_comment_is_summarised_by_whole_lines() -> None:
    text = _big_diff(2000)
    assert len(text.encode()) > comment.LIMIT
    body = comment.fit(text, "<!-- m -->", "footer")
    assert len(body.encode()) <= comment.LIMIT
    original = set(text.splitlines())
    added = [line for line in body.splitlines() if line not in original]
    assert added[0] == "<!-- m -->" and added[-1] == "footer"
    [note] = added[1:-1]
    dropped = 2000 - sum(line.startswith("      setting") for line in body.splitlines())
    assert note == f"      … {dropped} more changed settings: see the full diff in the artifact"
    for kept in ("!! REPLACE", "0 added,", "```"):
        assert any(line.startswith(kept) for line in body.splitlines())
    assert body.splitlines().index(note) < body.splitlines().index(
        "0 added, 0 removed, 0 moved, 1 changed, 1 replaced."
    )


def test_a_comment_that_cannot_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="over 100 bytes"):
        comment.fit("!! REPLACE " + "z" * 200, "<!-- m -->", "footer", limit=100)
