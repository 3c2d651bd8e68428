"""Configuration from the environment (set on the Cloud Run service).

TASK_PROCESSOR     module:function of the processing function (default handler.example:process)
TASK_MAX_ATTEMPTS  the queue's retry_config.max_attempts; unset or -1 = unlimited, in which case
                   a retryable failure is never dead-lettered by the handler
"""

import importlib
import os
from collections.abc import Mapping
from typing import cast

from handler.app import Processor

DEFAULT_PROCESSOR = "handler.example:process"


class SettingsError(ValueError):
    """A bad environment variable: the message names it and what is allowed."""


def load_processor(spec: str) -> Processor:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise SettingsError(f"TASK_PROCESSOR: {spec!r} must be module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"TASK_PROCESSOR: cannot import {module_name!r}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise SettingsError(f"TASK_PROCESSOR: {module_name!r} has no function {attribute!r}")
    return cast(Processor, function)


def max_attempts(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("TASK_MAX_ATTEMPTS", "").strip()
    if not raw or raw == "-1":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"TASK_MAX_ATTEMPTS: {raw!r} must be a positive integer or -1")
    return int(raw)


def processor(environ: Mapping[str, str] = os.environ) -> Processor:
    return load_processor(environ.get("TASK_PROCESSOR") or DEFAULT_PROCESSOR)
