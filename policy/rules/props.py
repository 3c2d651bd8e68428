"""Reading resource properties the way the engine hands them to a policy.

During `pulumi preview` a value computed from another resource's output is unknown:
the engine sends a sentinel, and pulumi-policy's proxy raises `UnknownValueError` when
a policy touches it. An uncaught raise skips the whole policy for that resource (and,
for a stack policy, for the whole stack), so every policy reads through `lookup`,
which turns "unknown" into the `UNKNOWN` marker and "absent" into None. A policy then
reports only values it knows to be bad; unknowns are judged again at `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

_SENTINELS: Final = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""A value only a deployment will know."""


def lookup(props: Any, *path: str | int) -> Any:
    """The value at `path` under `props`: None when absent, UNKNOWN when not yet known."""
    value = props
    for key in path:
        if value is None or value is UNKNOWN:
            return value
        try:
            if isinstance(key, int):
                if not isinstance(value, Sequence) or isinstance(value, str):
                    return None
                value = value[key] if -len(value) <= key < len(value) else None
            else:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(key)
        except UnknownValueError:
            return UNKNOWN
        if isinstance(value, str) and value in _SENTINELS:
            return UNKNOWN
    return value


def known_str(props: Any, *path: str | int) -> str | None:
    """A string value when it is known, else None (absent, unknown or not a string)."""
    value = lookup(props, *path)
    return value if isinstance(value, str) else None


def known_number(props: Any, *path: str | int) -> float | None:
    """A numeric value when it is known, else None."""
    value = lookup(props, *path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def items(props: Any, *path: str | int) -> list[Any]:
    """The known elements of the list at `path`; unknown elements come back as UNKNOWN."""
    value = lookup(props, *path)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [lookup(value, index) for index in range(len(value))]


def type_name(resource_type: str) -> str:
    """The last part of a type token: 'gcp:projects/iAMMember:IAMMember' -> 'IAMMember'."""
    return resource_type.rsplit(":", 1)[-1]


def module(resource_type: str) -> str:
    """The module part of a type token: 'gcp:projects/iAMMember:IAMMember' -> 'projects'."""
    parts = resource_type.split(":")
    return parts[1].split("/", 1)[0] if len(parts) == 3 else ""
