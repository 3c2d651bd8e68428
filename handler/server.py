"""gunicorn, configured for Cloud Run, serving the app from this process.

One worker with threads is what Cloud Run recommends: an instance gets its CPU share and
concurrency from Cloud Run, not from forking. No worker timeout: Cloud Run's request timeout
(which must be >= the queue's dispatch deadline) bounds a request. On SIGTERM gunicorn stops
accepting and lets in-flight tasks finish for GRACEFUL_TIMEOUT_S; Cloud Run kills the
instance 10 s after SIGTERM, so this stays under that.

A worker never outlives its arbiter: if the arbiter is killed outright (SIGKILL, as when
`make local` is killed and its children die with it) the worker is killed too, instead of
serving on for up to a graceful timeout with nobody to stop it.
"""

import logging
import os
import signal
from typing import Any

import pyprctl
from flask import Flask
from gunicorn.app.base import BaseApplication

from handler.logs import logging_config

GRACEFUL_TIMEOUT_S = 8


def _post_fork(server: Any, worker: Any) -> None:
    # Runs in the new worker, forked by the arbiter's main thread (which the kernel ties this to).
    pyprctl.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != worker.ppid:  # the arbiter died before the line above took effect
        os._exit(1)


def _when_ready(settings: dict[str, object]) -> Any:
    def when_ready(server: Any) -> None:
        log = logging.getLogger("handler.server")
        # Which store and dead-letter sink serve, so that a fallback is never silent.
        log.info({"message": "settings", **settings})
        # The bound address as a log line: with --port 0 this is how a caller learns the port.
        for listener in server.LISTENERS:
            host, port = listener.sock.getsockname()[:2]
            log.info({"message": "listening", "host": host, "port": port})

    return when_ready


class HandlerServer(BaseApplication):
    def __init__(
        self, app: Flask, *, host: str, port: int, threads: int, settings: dict[str, object]
    ) -> None:
        self._app = app
        bind_host = f"[{host}]" if ":" in host else host
        self._options: dict[str, Any] = {
            "bind": f"{bind_host}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 0,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "logconfig_dict": logging_config(),
            "when_ready": _when_ready(settings),
            "post_fork": _post_fork,
            # gunicorn 27's control socket lives at one path per user: instances side by side
            # (tests, local runs) would fight over it, and nothing here uses it.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)  # pyright: ignore[reportOptionalMemberAccess]

    def load(self) -> Any:
        # Any: typeshed's gunicorn stub wants a dict environ, Flask takes any mapping.
        return self._app
