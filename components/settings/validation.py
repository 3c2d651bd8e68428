"""How settings are checked: typed fields, cross-field rules, and one error for every problem.

Field validation is pydantic's (strict types, bounds and patterns beside each field).
Cross-field rules are separate functions (`Settings.rules`) that run on every field that
is valid on its own, whether or not other fields failed: a config with a bad image still
hears that its timeout is shorter than its dispatch deadline. Problems from both are
reported together, sorted by key path.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from types import SimpleNamespace, UnionType
from typing import Annotated, Any, TypeVar

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ..durations import Duration

NAMESPACE = "cloudrun-tasks"
# Protobuf int32, the type of Cloud Tasks' and Cloud Run's integer fields.
INT32_MAX = 2**31 - 1

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, Any]
"""(key path, message, offending value): one line of the final error."""

INVALID: Any = SimpleNamespace()
"""Stands in, in a partial view, for a field that failed its own validation."""


def known(*values: Any) -> bool:
    """True when every value passed its own validation (rules skip the others)."""
    return all(value is not INVALID for value in values)


def fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", "{message}", {"message": message})


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def within(low: float, high: float, *, low_open: bool = False) -> AfterValidator:
    allowed = f"{'>' if low_open else '>='} {_number(low)} and <= {_number(high)}"

    def check(value: float) -> float:
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            raise fail(f"must be {allowed}")
        return value

    return AfterValidator(check)


def duration_within(low: Duration, high: Duration | None = None) -> AfterValidator:
    allowed = f">= {low}" + (f" and <= {high}" if high is not None else "")

    def check(value: Duration) -> Duration:
        if value < low or (high is not None and value > high):
            raise fail(f"must be {allowed}")
        return value

    return AfterValidator(check)


def matching(pattern: str, allowed: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise fail(f"must be {allowed}")
        return value

    return AfterValidator(check)


class Settings(BaseModel):
    """Base of every settings model: strict types, no unknown keys, finite numbers."""

    # strict: no silent coercion of "10" to 10 or "true" to True in stack files.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=False,
        allow_inf_nan=False,
        # A field's docstring is its description: the documentation's configuration
        # reference is generated from these models (docs/config_reference.py).
        use_attribute_docstrings=True,
    )

    @classmethod
    def rules(cls, view: Any) -> Iterator[Problem]:
        """Cross-field rules. `view` has this model's fields, each valid or INVALID."""
        return iter(())

    def resolve(self) -> None:
        """Fill defaults that depend on other fields; runs once everything is valid."""


# --- the partial view: every field that is valid on its own --------------------------


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def nested(annotation: Any) -> tuple[type[Settings] | None, bool]:
    """(settings model, is a map of them) for a field's annotation, else (None, False)."""
    inner = _unwrap_optional(annotation)
    if typing.get_origin(inner) is dict:
        inner, mapped = typing.get_args(inner)[1], True
    else:
        mapped = False
    if isinstance(inner, type) and issubclass(inner, Settings):
        return inner, mapped
    return None, False


@cache
def _adapter(model: type[Settings], name: str) -> TypeAdapter[Any]:
    field: FieldInfo = model.model_fields[name]
    # The field's type with its own validators: what pydantic checks for this field alone.
    annotation: Any = (
        Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    )
    return TypeAdapter(
        annotation,
        config=ConfigDict(strict=True, allow_inf_nan=False),
    )


def partial(model: type[Settings], raw: Any) -> Any:
    """What a model would hold, field by field, where the whole model failed validation."""
    if not isinstance(raw, Mapping):
        return INVALID
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in raw:
            values[name] = (
                INVALID if field.is_required() else field.get_default(call_default_factory=True)
            )
            continue
        sub, mapped = nested(field.annotation)
        value = raw[key]
        if sub is not None and mapped:
            values[name] = (
                {k: partial(sub, v) for k, v in value.items()}
                if isinstance(value, Mapping)
                else INVALID
            )
        elif sub is not None:
            values[name] = partial(sub, value)
        else:
            try:
                values[name] = _adapter(model, name).validate_python(value)
            except ValidationError:
                values[name] = INVALID
    return SimpleNamespace(**values)


@cache
def _inner_models(model: type[Settings]) -> tuple[tuple[str, str, type[Settings], bool], ...]:
    """(field name, config key, model, is a map of them) for each field holding settings."""
    found = []
    for name, field in model.model_fields.items():
        sub, mapped = nested(field.annotation)
        if sub is not None:
            found.append((name, field.alias or name, sub, mapped))
    return tuple(found)


def check_rules(model: type[Settings], view: Any, loc: Loc = ()) -> list[Problem]:
    """Every rule of `model` and of the models inside it, at their key paths."""
    if view is INVALID or view is None:
        return []
    problems = [(loc + where, message, value) for where, message, value in model.rules(view)]
    for name, key, sub, mapped in _inner_models(model):
        value = getattr(view, name)
        if not mapped:
            problems += check_rules(sub, value, (*loc, key))
        elif isinstance(value, Mapping):  # else a map that failed on its own: no entries
            for item, item_view in value.items():
                problems += check_rules(sub, item_view, (*loc, key, item))
    return problems


# --- one error for all problems -------------------------------------------------------


class ConfigError(pulumi.RunError):
    """Invalid stack config. Pulumi prints a RunError's message without a traceback."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"invalid stack config ({len(problems)} problem{'s' * (len(problems) != 1)}):\n"
            + "\n".join(f"  {p}" for p in problems)
        )


SECRET = "[secret]"
"""How a value read from a secret config key appears in an error message."""

_TYPE_NAMES = {
    "int_type": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def model_at(root: type[Settings], loc: Loc) -> type[Settings] | None:
    """The settings model at a key path, so an unknown key's error can list the allowed ones."""
    model: type[Settings] | None = root
    parts = list(loc)
    while parts and model is not None:
        key = parts.pop(0)
        field = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
        if field is None:
            return None
        model, mapped = nested(field.annotation)
        if mapped:
            if not parts:
                return None
            parts.pop(0)  # a map key, e.g. the pipeline name
    return model


def allowed_keys(model: type[Settings]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def closest(word: str, choices: list[str]) -> str | None:
    """The choice most like WORD, best first, if one is at least 60% alike (difflib's cutoff)."""
    return next(iter(difflib.get_close_matches(word, choices)), None)


def path_of(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "config"


def shown(value: Any, secret: bool) -> str:
    return SECRET if secret else json.dumps(value, default=str)


def describe(root: type[Settings], error: Mapping[str, Any], secret: bool) -> tuple[Loc, str]:
    """A pydantic error as (key path, one line); values under secret keys are not shown."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    path = path_of(loc)
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        return loc, f"{path}: is required"
    if kind == "extra_forbidden":
        model = model_at(root, loc[:-1])
        if model is None:
            return loc, f"{path}: unknown key"
        choices = allowed_keys(model)
        close = closest(str(loc[-1]), choices)
        hint = f"did you mean {close}? " if close else ""
        return loc, f"{path}: unknown key; {hint}allowed keys: {', '.join(choices)}"
    if kind in _TYPE_NAMES:
        return loc, f"{path}: must be {_TYPE_NAMES[kind]}, got {shown(given, secret)}"
    if kind == "literal_error":
        return loc, f"{path}: must be one of {error['ctx']['expected']}, got {shown(given, secret)}"
    if kind == "too_short" and path == "pipelines":
        return loc, f"{path}: must declare at least one pipeline"
    got = f", got {shown(given, secret)}" if given is not None and kind == "invalid" else ""
    return loc, f"{path}: {error['msg']}{got}"


M = TypeVar("M", bound=Settings)


def validated(
    model: type[M],
    raw: Mapping[str, Any],
    *,
    secret: Callable[[Loc], bool] = lambda loc: False,
    problems: Iterable[tuple[Loc, str]] = (),
) -> M:
    """Fields, then cross-field rules on whatever is valid, then defaults: `model` with
    every default resolved, or one ConfigError with every problem sorted by key path
    (`problems` found earlier included). Values where `secret(loc)` are not shown."""
    found = list(problems)
    settings: M | None = None
    try:
        settings = model.model_validate(raw)
        view: Any = settings
    except ValidationError as error:
        view = partial(model, raw)
        found += [describe(model, detail, secret(detail["loc"])) for detail in error.errors()]
    for loc, message, value in check_rules(model, view):
        got = "" if value is None else f", got {shown(value, secret(loc))}"
        found.append((loc, f"{path_of(loc)}: {message}{got}"))
    if found or settings is None:
        found.sort(key=lambda problem: sort_key(problem[0]))
        raise ConfigError([line for _, line in found])
    settings.resolve()
    return settings


def sort_key(loc: Loc) -> tuple[tuple[bool, str | int], ...]:
    """Key paths in reading order: list indexes numerically and before names, names
    alphabetically."""
    return tuple((isinstance(part, str), part) for part in loc)
