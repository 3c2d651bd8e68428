"""Inputs as a reviewer reads them: JSON held in a string opened up, long text by line.

A dashboard is one input holding 10-20 KB of JSON; compared as a string, changing one
tile prints the whole document twice. Opened up, the diff names the keys that changed,
and a list whose items all carry a distinct title (dashboard tiles, widgets) is keyed by
that title, so moving or adding a tile does not renumber every other one.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

JSON_MARK = "(json)"
"""Joins an input's name to the paths inside the JSON it holds: `dashboardJson(json).a`."""


def _title(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for holder in (item, item.get("widget")):
        if isinstance(holder, dict) and isinstance(holder.get("title"), str):
            return holder["title"]
    return None


HEADINGS = ("text", "sectionHeader", "collapsibleGroup")
"""Widgets that head a row of a dashboard: a tile's title repeats per row, not within one."""


def _titles(items: list[Any]) -> list[str] | None:
    """Each item's title, qualified by the row heading above it (so a key does not change
    when another row's tile comes or goes); None when some item has no title or two
    still share one."""
    plain = [_title(item) for item in items]
    if not items or None in plain:
        return None
    titles: list[str] = []
    heading = ""
    for item, title in zip(items, plain, strict=True):
        widget = item.get("widget", item)
        if any(kind in widget for kind in HEADINGS):
            heading = f"{title} / "
            titles.append(str(title))
        else:
            titles.append(f"{heading}{title}")
    return titles if len(set(titles)) == len(titles) else None


def _by_title(value: Any) -> Any:
    """Lists of titled items become {'["title"]': item}; everything else as it is."""
    if isinstance(value, dict):
        return {key: _by_title(item) for key, item in value.items()}
    if isinstance(value, list):
        titles = _titles(value)
        if titles is None:
            return [_by_title(item) for item in value]
        return {
            f"[{json.dumps(title, ensure_ascii=False)}]": _by_title(item)
            for title, item in zip(titles, value, strict=True)
        }
    return value


def _parsed(value: str) -> Any | None:
    if not value.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def expand(value: Any) -> Any:
    """VALUE with every string holding a JSON object or array replaced by its content,
    under a key marked JSON_MARK."""
    if isinstance(value, dict):
        opened: dict[str, Any] = {}
        for key, item in value.items():
            parsed = _parsed(item) if isinstance(item, str) else None
            if isinstance(parsed, dict | list):
                opened[f"{key}{JSON_MARK}"] = _by_title(parsed)
            else:
                opened[key] = expand(item)
        return opened
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def is_long_text(value: Any) -> bool:
    return isinstance(value, str) and value.count("\n") >= 2


def line_changes(key: str, before: str, after: str) -> list[tuple[str, Any, Any]]:
    """A multi-line text's changes, one entry per changed run of lines."""
    old, new = before.splitlines(), after.splitlines()
    changes = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        where = f"{key} (line {i1 + 1})" if i2 - i1 <= 1 else f"{key} (lines {i1 + 1}-{i2})"
        gone, came = "\n".join(old[i1:i2]) or "(none)", "\n".join(new[j1:j2]) or "(none)"
        changes.append((where, *elide(gone, came)))
    return changes


ELIDE_OVER = 120
"""Strings longer than this print only around what changed."""
CONTEXT = 40


def elide(before: Any, after: Any) -> tuple[Any, Any]:
    """Two long one-line strings cut to the part that differs, with some context."""
    if not (isinstance(before, str) and isinstance(after, str)):
        return before, after
    if max(len(before), len(after)) <= ELIDE_OVER:
        return before, after
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    head = max(0, start - CONTEXT)
    tails = (len(before) - max(0, end - CONTEXT), len(after) - max(0, end - CONTEXT))

    def cut(text: str, tail: int) -> str:
        return ("…" if head else "") + text[head:tail] + ("…" if tail < len(text) else "")

    return cut(before, tails[0]), cut(after, tails[1])
