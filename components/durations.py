"""Durations, the one type for stack config, the components and the enqueue client.

Held as integer nanoseconds and parsed with Decimal, never floats: Google's APIs take a
duration as a decimal number of seconds with at most nine fractional digits and a
trailing `s` (protobuf `google.protobuf.Duration`, JSON mapping: "3s", "3.000000001s"),
and reject exponent forms such as `2.592e+06s` that float formatting produces.

Importable without Pulumi: the client uses it too.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import total_ordering
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

NANOS_PER_SECOND = 1_000_000_000
_UNIT_NANOS = {"ms": 1_000_000, "s": NANOS_PER_SECOND, "m": 60 * NANOS_PER_SECOND}
_UNIT_NANOS["h"] = 60 * _UNIT_NANOS["m"]
# protobuf Duration: seconds within +-315,576,000,000 (about 10,000 years), nanos 0..999,999,999
# (google/protobuf/duration.proto). Larger values can't be sent anywhere.
MAX_SECONDS = 315_576_000_000
_TEXT = re.compile(r"(\d{1,15})(?:\.(\d{1,30}))?(ms|s|m|h)")
EXAMPLES = "'600s', '10m', '1.5h' or '250ms'"


class DurationError(ValueError):
    """Text that is not a duration Google can take; the message says why."""


@total_ordering
class Duration:
    """A non-negative duration with nanosecond precision, immutable."""

    __slots__ = ("nanos",)
    nanos: int

    def __init__(self, nanos: int) -> None:
        object.__setattr__(self, "nanos", nanos)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Duration is immutable")

    def __reduce__(self) -> tuple[type[Duration], tuple[int]]:
        return (Duration, (self.nanos,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and self.nanos == other.nanos

    def __lt__(self, other: Duration) -> bool:
        return self.nanos < other.nanos

    def __hash__(self) -> int:
        return hash(self.nanos)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """NUMBER+UNIT with unit ms, s, m or h: '600s', '10m', '1.25h', '0.5s', '250ms'."""
        match = _TEXT.fullmatch(text)
        if match is None:
            raise DurationError(f"must be a duration such as {EXAMPLES}")
        whole, fraction, unit = match.groups()
        nanos = Decimal(f"{whole}.{fraction or 0}") * _UNIT_NANOS[unit]
        if nanos != nanos.to_integral_value():
            raise DurationError(
                "has more than nanosecond precision (at most 9 decimal places of a second)"
            )
        if nanos > MAX_SECONDS * NANOS_PER_SECOND:
            raise DurationError(f"must be at most {MAX_SECONDS}s (protobuf Duration's range)")
        return cls(int(nanos))

    @classmethod
    def of_seconds(cls, seconds: int) -> Duration:
        return cls(seconds * NANOS_PER_SECOND)

    @property
    def seconds(self) -> int:
        """Whole seconds; `nanos_part` holds the rest (protobuf Duration's two fields)."""
        return self.nanos // NANOS_PER_SECOND

    @property
    def nanos_part(self) -> int:
        return self.nanos % NANOS_PER_SECOND

    def __str__(self) -> str:
        """Google's form: '2592000s', '4500s', '0.5s', '0.000000001s'."""
        if not self.nanos_part:
            return f"{self.seconds}s"
        return f"{self.seconds}.{self.nanos_part:09d}".rstrip("0") + "s"

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """In pydantic models: a duration string in, a Duration held, the string out."""

        def validate(value: Any) -> Duration:
            if isinstance(value, Duration):
                return value
            try:
                if not isinstance(value, str):
                    raise DurationError(f"must be a duration string such as {EXAMPLES}")
                return cls.parse(value)
            except DurationError as error:
                raise PydanticCustomError("invalid", "{message}", {"message": str(error)}) from None

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )


# Cloud Tasks' duration limits, shared by the program and the client
# (cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues.tasks#Task):
# an HTTP task's dispatchDeadline is 15 s..30 min; scheduleTime at most 30 days ahead.
MIN_DISPATCH_DEADLINE = Duration.of_seconds(15)
MAX_DISPATCH_DEADLINE = Duration.of_seconds(30 * 60)
MAX_SCHEDULE_AHEAD = Duration.of_seconds(30 * 24 * 3600)
