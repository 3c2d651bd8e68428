"""The handler's log configuration as lines on stdout (which loggers speak at which level,
in Cloud Logging's fields), credential redaction's edges, and the shipped example
processor's controls."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from handler import example
from handler.logs import (
    MAX_DEPTH,
    REDACTED,
    is_credential,
    logging_config,
    redact,
    secret_values,
)
from handler.task import PermanentTaskError, TaskRequest

NAMES = [
    "",
    "gunicorn.error",
    "gunicorn.access",
    "opentelemetry.trace.span",
    "opentelemetry.trace.propagation.tracecontext",
]


@contextmanager
def configured() -> Iterator[None]:
    """logging_config("DEBUG") applied (its stream is the sys.stdout of the moment), and
    every logger it touches put back afterwards."""
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate, list(lg.filters))
        for name in NAMES
        for lg in [logging.getLogger(name)]
    }
    logging.config.dictConfig(logging_config("DEBUG"))
    try:
        yield
    finally:
        for name, (level, handlers, propagate, filters) in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.filters[:] = filters


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_each_logger_speaks_at_its_level_as_one_json_object_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with configured():
        logging.getLogger("handler.tasks").debug({"message": "task done", "token": "t0ps3cret"})
        logging.getLogger("gunicorn.error").debug("worker booted")
        logging.getLogger("gunicorn.access").info("GET / 200")
        logging.getLogger("gunicorn.access").warning("slow request")
        logging.getLogger("opentelemetry.trace.span").warning("span ended twice")
        logging.getLogger("opentelemetry.trace.span").error("span export broke")
        tracecontext = logging.getLogger("opentelemetry.trace.propagation.tracecontext")
        tracecontext.warning("bad header")
        tracecontext.error("worse header")
    found = lines(capsys.readouterr().out)
    assert [(line["severity"], line["message"]) for line in found] == [
        ("DEBUG", "task done"),
        ("DEBUG", "worker booted"),
        ("WARNING", "slow request"),
        ("ERROR", "span export broke"),
        ("ERROR", "worse header"),
    ]
    assert found[0]["token"] == REDACTED
    assert all(isinstance(line["time"], str) and line["time"] for line in found)


def test_the_default_level_is_info() -> None:
    config = logging_config()
    assert config["root"]["level"] == "INFO"
    assert config["loggers"]["gunicorn.error"]["level"] == "INFO"


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("Authorization", True),
        ("X-Api-Key", True),
        ("Cookie", True),
        ("X-Session-Id", True),
        ("X-Signature", True),
        ("X-Tenant", False),
        ("Content-Type", False),
    ],
)
def test_credential_names(name: str, credential: bool) -> None:
    assert is_credential(name) is credential


def test_secret_values_are_whole_and_in_pieces_of_eight_or_more_longest_first() -> None:
    found = secret_values(
        {
            "Authorization": "Bearer abcdefgh12345",
            "Cookie": "sid=12345678; short=1234567",
            "X-Tenant": "acme-tenant-name",
            "X-Api-Key": "",
        }
    )
    assert found == (
        "sid=12345678; short=1234567",
        "Bearer abcdefgh12345",
        "abcdefgh12345",
        "12345678",
    )


def test_redaction_goes_deep_until_its_limit() -> None:
    secrets = ("abcdefgh12345",)
    value = {"a": [{"password": "p"}, ("see abcdefgh12345",)], "n": 1, "b": b"abcdefgh12345"}
    assert redact(value, secrets) == {
        "a": [{"password": REDACTED}, ["see [redacted]"]],
        "n": 1,
        "b": b"abcdefgh12345",
    }
    assert redact("see abcdefgh12345") == "see abcdefgh12345"  # no secrets given
    nested: object = "deep"
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    redacted = redact(nested)
    for _ in range(MAX_DEPTH + 1):
        assert isinstance(redacted, list)
        [redacted] = redacted
    assert redacted == "[nested too deeply to log]"
    shallow: object = "deep"
    for _ in range(MAX_DEPTH):
        shallow = [shallow]
    assert redact(shallow) == shallow


def task(payload: object, retry: int = 0, headers: dict[str, str] | None = None) -> TaskRequest:
    return TaskRequest(
        "t-1", "orders", retry, retry, None, "/p", headers or {}, b"", payload=payload
    )


def test_the_example_echoes_payload_path_and_only_plain_x_headers() -> None:
    result = example.process(
        task(
            {"id": 7},
            headers={
                "x-tenant": "acme",
                "X-Trace-Me": "yes",
                "x-cloudtasks-taskname": "t-1",
                "x-forwarded-for": "1.2.3.4",
                "x-cloud-trace-context": "abc",
                "x-api-key": "k",
                "content-type": "application/json",
            },
        )
    )
    assert result == {
        "echo": {"id": 7},
        "path": "/p",
        "headers": {"x-tenant": "acme", "X-Trace-Me": "yes"},
    }


def test_the_examples_controls() -> None:
    with pytest.raises(PermanentTaskError) as rejected:
        example.process(task({"reject": True}))
    assert str(rejected.value) == "payload asked to be rejected"
    with pytest.raises(RuntimeError) as failed:
        example.process(task({"failAlways": True}, retry=99))
    assert str(failed.value) == "payload asked to fail on every attempt"
    with pytest.raises(RuntimeError) as twice:
        example.process(task({"failTimes": 2}, retry=1))
    assert str(twice.value) == "payload asked to fail 2 times"
    assert example.process(task({"failTimes": 2}, retry=2))["echo"] == {"failTimes": 2}
    assert example.process(task({"failTimes": "2"}))["echo"] == {"failTimes": "2"}
    # Not an object: no controls, echoed as it is.
    assert example.process(task([{"reject": True}]))["echo"] == [{"reject": True}]
    assert example.process(task(None))["echo"] is None


def test_the_example_says_when_it_starts_sleeping(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handler.example")
    example.process(task({"sleepSeconds": 0.01}))
    example.process(task({"sleepSeconds": 0}))
    example.process(task({"sleepSeconds": "1"}))
    records = [r.msg for r in caplog.records if r.name == "handler.example"]
    assert records == [{"message": "working", "taskName": "t-1", "seconds": 0.01}]
