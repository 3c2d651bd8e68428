"""handler/logs.py on the lines it writes: the configuration takes over loggers that gunicorn
(or anyone) set up before it, and a request's credential values are scrubbed from every text
of a line, formatted messages and tracebacks included."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Callable, Iterator

import pytest

from handler.logs import MAX_DEPTH, REDACTED, logging_config, redact, request_secrets

# Every logger the configuration names, as gunicorn leaves them before applying it: a handler
# of their own, not propagating, every level let through.
NAMED = [
    "gunicorn.error",
    "gunicorn.access",
    "opentelemetry.trace.span",
    "opentelemetry.trace.propagation.tracecontext",
]
Lines = Callable[[], list[dict[str, object]]]
Logged = tuple["Kept", Lines]
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stdout_lines() -> Iterator[Logged]:
    """logging_config("DEBUG") applied over loggers set up as gunicorn sets up its own, its
    stdout handler writing to a buffer; every logger it touches put back afterwards. Yields
    the stray handler and a reader of the JSON lines written."""
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate, list(lg.filters))
        for name in ["", *NAMED]
        for lg in [logging.getLogger(name)]
    }
    stray = Kept()
    for name in NAMED:
        lg = logging.getLogger(name)
        lg.handlers[:] = [stray]
        lg.propagate = False
        lg.setLevel(logging.DEBUG)
    config = logging_config("DEBUG")
    buffer = io.StringIO()
    config["handlers"]["stdout"]["stream"] = buffer
    logging.config.dictConfig(config)

    def read() -> list[dict[str, object]]:
        out = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    try:
        yield stray, read
    finally:
        for name, (level, handlers, propagate, filters) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.filters[:] = filters


def test_the_named_loggers_write_once_through_the_json_handler_at_their_levels(
    stdout_lines: Logged,
) -> None:
    stray, read = stdout_lines
    for name in NAMED:
        logging.getLogger(name).debug(f"{name} debug")
        logging.getLogger(name).info(f"{name} info")
        logging.getLogger(name).warning(f"{name} warning")
        logging.getLogger(name).error(f"{name} error")
    said = [(line["severity"], line["message"]) for line in read()]
    assert said == [
        ("DEBUG", "gunicorn.error debug"),
        ("INFO", "gunicorn.error info"),
        ("WARNING", "gunicorn.error warning"),
        ("ERROR", "gunicorn.error error"),
        ("WARNING", "gunicorn.access warning"),
        ("ERROR", "gunicorn.access error"),
        ("ERROR", "opentelemetry.trace.span error"),
        ("ERROR", "opentelemetry.trace.propagation.tracecontext error"),
    ]
    # Their own handlers are gone: nothing is written twice, or in another format.
    assert stray.records == []


def test_a_requests_credentials_are_scrubbed_from_formatted_messages_and_tracebacks(
    stdout_lines: Logged,
) -> None:
    _, read = stdout_lines
    logger = logging.getLogger("handler.tasks")
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Tenant": "acme-tenant"}
    with request_secrets(headers):
        logger.warning("calling with %s for %s", f"Bearer {TOKEN}", "acme-tenant")
        try:
            raise RuntimeError(f"upstream refused token {TOKEN}")
        except RuntimeError:
            logger.exception("processor failed for %s", "acme-tenant")
        logger.info({"message": "structured", "note": f"saw {TOKEN}", "cookie": "c"})
    # After the request, its values are no longer looked for.
    logger.info("later %s", TOKEN)
    first, failed, structured, later = read()
    assert first["message"] == f"calling with {REDACTED} for acme-tenant"
    assert failed["message"] == "processor failed for acme-tenant"
    trace = failed["exc_info"]
    assert isinstance(trace, str)
    assert trace.startswith("Traceback (most recent call last):")
    assert trace.endswith(f"RuntimeError: upstream refused token {REDACTED}")
    assert TOKEN not in json.dumps([first, failed, structured])
    assert (structured["note"], structured["cookie"]) == (f"saw {REDACTED}", REDACTED)
    assert later["message"] == f"later {TOKEN}"


def test_a_traceback_outside_a_request_is_kept_as_it_is(
    stdout_lines: Logged,
) -> None:
    _, read = stdout_lines
    try:
        raise RuntimeError("plain failure")
    except RuntimeError:
        logging.getLogger("handler.tasks").exception("failed %d times", 2)
    [line] = read()
    assert line["message"] == "failed 2 times"
    assert str(line["exc_info"]).endswith("RuntimeError: plain failure")


def test_nested_mappings_are_cut_at_the_same_depth_as_lists() -> None:
    secrets = ("abcdefgh12345",)
    deep: object = "see abcdefgh12345"
    for _ in range(MAX_DEPTH):
        deep = {"k": deep}
    # MAX_DEPTH mappings deep: whole, and scrubbed at the bottom.
    found = redact(deep, secrets)
    for _ in range(MAX_DEPTH):
        assert isinstance(found, dict)
        found = found["k"]
    assert found == f"see {REDACTED}"
    # One more, and the innermost value is cut.
    found = redact({"k": deep}, secrets)
    for _ in range(MAX_DEPTH + 1):
        assert isinstance(found, dict)
        found = found["k"]
    assert found == "[nested too deeply to log]"
