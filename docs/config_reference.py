"""The configuration reference, generated from the settings models (an MkDocs hook).

`components/settings/` declares every stack-file key: its type, default, bounds and, as the
field's docstring, what it means and what is allowed. This hook writes the reference table
into docs/configuration.md where the page holds MARKER, so the page can't drift from the
models: a field without a docstring fails the build.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # MkDocs loads hooks by path, not from the project
    sys.path.insert(0, str(ROOT))

from pydantic import BaseModel, JsonValue  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from components.durations import Duration  # noqa: E402
from components.settings import StackSettings  # noqa: E402
from components.settings.validation import NAMESPACE  # noqa: E402

MARKER = "<!-- configuration-reference -->"
# The placeholder for a map's own keys, by the field that holds the map.
ENTRY_NAMES = {"pipelines": "<pipeline>", "schedules": "<schedule>", "labels": "<key>"}
SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", Duration: "duration"}


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str
    default: str
    description: str
    section: bool


def _base(annotation: Any) -> Any:
    """The type under Annotated[...] and `| None`."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (typing.Union, UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    base = _base(annotation)
    return base if isinstance(base, type) and issubclass(base, BaseModel) else None


def _kind(annotation: Any) -> str:
    base = _base(annotation)
    origin = typing.get_origin(base)
    if origin is list:
        return f"list of {_kind(typing.get_args(base)[0])}"
    if origin is dict:
        value = typing.get_args(base)[1]
        return "map of objects" if _model(value) else f"map of {_kind(value)}"
    if _model(base):
        return "object"
    if typing.get_origin(base) is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(base))
    if base in SCALARS:
        return SCALARS[base]
    if base is typing.Any or base is JsonValue:
        return "any JSON value"
    raise TypeError(f"no documented kind for {annotation!r}")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "" if isinstance(value, BaseModel) else f"`{value!r}`" if value else "empty"
    if field.default is PydanticUndefined:
        return "**required**"
    if field.default is None:
        return "unset"
    if isinstance(field.default, bool):
        return f"`{str(field.default).lower()}`"
    if isinstance(field.default, str) and field.default.replace(".", "").isdigit():
        return f'`"{field.default}"`'  # a string in YAML, such as cpu "1"
    return f"`{field.default}`"


def settings(model: type[BaseModel] = StackSettings, prefix: str = "") -> Iterator[Setting]:
    """Every field of the settings models, depth first, with its full stack-file key."""
    for name, field in model.model_fields.items():
        key_name = field.alias or name
        key = key_name if ":" in key_name else f"{NAMESPACE}:{key_name}"
        key = f"{prefix}{key_name}" if prefix else key
        if not field.description:
            raise ValueError(f"{model.__name__}.{name}: no docstring to document {key} with")
        description = " ".join(field.description.split())
        nested = _model(field.annotation)
        base = _base(field.annotation)
        entries = typing.get_origin(base) is dict and _model(typing.get_args(base)[1])
        yield Setting(
            key, _kind(field.annotation), _default(field), description, bool(nested or entries)
        )
        if nested:
            yield from settings(nested, f"{key}.")
        elif entries:
            yield from settings(entries, f"{key}.{ENTRY_NAMES[name]}.")


def render() -> str:
    rows = [
        "| Key | Type | Default | What it is, what is allowed |",
        "|---|---|---|---|",
    ]
    for setting in settings():
        key = f"`{setting.key}`"
        rows.append(
            f"| {f'**{key}**' if setting.section else key} | {setting.kind} | {setting.default}"
            f" | {setting.description.replace('|', '&#124;')} |"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: the table where a page asks for it."""
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
