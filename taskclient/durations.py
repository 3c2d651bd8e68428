"""Durations as written in stack config and on the command line: "30s", "1.5m", "250ms"."""

import re
from datetime import timedelta

from taskclient.errors import UsageError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, *, argument: str) -> timedelta:
    """Parses NUMBER+UNIT (ms, s, m, h); `argument` names the input in the error message."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"{argument}: {text!r} is not a duration; use e.g. 30s, 1.5m, 250ms, 2h")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNIT_SECONDS[unit])
