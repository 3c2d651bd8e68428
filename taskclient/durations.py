"""Durations on the command line: the program's own Duration type, errors as usage errors."""

from taskclient.errors import UsageError
from taskclient.shared import Duration, DurationError


def parse_duration(text: str, *, argument: str) -> Duration:
    """NUMBER+UNIT (ms, s, m, h), exact to the nanosecond; `argument` names the input."""
    try:
        return Duration.parse(text)
    except DurationError as error:
        raise UsageError(f"{argument}: {text!r} {error}") from None
