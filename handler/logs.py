"""One JSON object per line on stdout: Cloud Run hands such lines to Cloud Logging as
structured entries (`severity`, `message`, `time` are its special fields).

No log line carries a credential: every record passes `RedactCredentials` on its way to
stdout, whatever logged it (the handler, the user's processor, a library). It replaces the
value of any mapping key that names a credential (`is_credential`), however deep, and,
while a request is being handled, any occurrence of that request's credential header values
in any text of the record (messages, errors, tracebacks): a processor that puts a header
into an exception message leaks nothing either.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Header (or field) names that suggest a credential: Authorization, Cookie, and anything
# naming a key, token, secret, password, session, signature or JWT (X-Api-Key, X-Auth-Token,
# X-Client-Secret, X-Goog-Iap-Jwt-Assertion...). Deliberately broad: a redacted harmless
# header costs nothing, a logged secret can't be taken back.
_CREDENTIAL = re.compile(
    r"auth|cookie|key|token|secret|passw|pwd|credential|session|signature|jwt|assertion",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
# Pieces of a credential value shorter than this (`Bearer`, `session`) are not secrets and
# would blank out ordinary words.
MIN_SECRET_CHARS = 8
# Deeper than this, a logged structure is cut: walking (and JSON-encoding) it must not
# exhaust the stack.
MAX_DEPTH = 32


def is_credential(name: str) -> bool:
    return bool(_CREDENTIAL.search(name))


# The credential values of the request this thread is handling (set by `request_secrets`).
_SECRETS: ContextVar[tuple[str, ...]] = ContextVar("request_secrets", default=())


def secret_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credential headers' values, whole and in pieces (the token after `Bearer`, each
    cookie value), longest first so that a whole value is replaced before its parts."""
    found: set[str] = set()
    for name, value in headers.items():
        if is_credential(name) and value:
            found.add(value)
            found.update(p for p in re.split(r"[\s;,=]+", value) if len(p) >= MIN_SECRET_CHARS)
    return tuple(sorted(found, key=len, reverse=True))


@contextmanager
def request_secrets(headers: Mapping[str, str]) -> Iterator[None]:
    """While handling one request: its credential values are scrubbed from every log line."""
    token = _SECRETS.set(secret_values(headers))
    try:
        yield
    finally:
        _SECRETS.reset(token)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact(value: object, secrets: tuple[str, ...] = (), depth: int = 0) -> object:
    """A copy of `value` with every credential-named mapping key's value replaced, and
    `secrets` scrubbed from every string in it."""
    if depth > MAX_DEPTH:
        return "[nested too deeply to log]"
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_credential(str(key)) else redact(item, secrets, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, secrets, depth + 1) for item in value]
    if isinstance(value, str) and secrets:
        return _scrub(value, secrets)
    return value


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _SECRETS.get()
        if isinstance(record.msg, Mapping):
            record.msg = redact(record.msg, secrets)
        elif secrets:
            record.msg, record.args = _scrub(record.getMessage(), secrets), None
        if record.exc_info and secrets:
            # Formatted here so that the text can be scrubbed; the JSON formatter then
            # takes exc_text as it is.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, _scrub(text, secrets)
        return True


FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(message)s",
    "rename_fields": {"levelname": "severity"},
    "timestamp": "time",
}


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """dictConfig for the app's and gunicorn's loggers alike (gunicorn applies it in the
    master and in each worker)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": FORMATTER},
        # On the handler, not a logger: a handler's filters see every record it writes,
        # propagated ones included.
        "filters": {
            "redact": {"()": "handler.logs.RedactCredentials"},
            "trace": {"()": "handler.tracing.TraceLogFields"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact", "trace"],
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        # dictConfig removes the handlers a named logger had (gunicorn's own): its lines reach
        # stdout once, through the root's handler.
        "loggers": {
            "gunicorn.error": {"level": level, "propagate": True},
            "gunicorn.access": {"level": "WARNING", "propagate": True},
            # OpenTelemetry's propagator warns with the text of a malformed tracestate member
            # (and about over-long headers): a caller's bytes, never to reach the log. The
            # header is ignored all the same (handler/tracing.py).
            "opentelemetry.trace.span": {"level": "ERROR", "propagate": True},
            "opentelemetry.trace.propagation.tracecontext": {"level": "ERROR", "propagate": True},
        },
    }
