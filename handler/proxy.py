"""Proxy mode: the processor is an HTTP app on the instance's loopback (a Cloud Run sidecar
in any language), and this handler stands in front of it.

`AppProxy` is a processor like any other (handler/app.py calls it after the claim, the claim
check's resolution and the trace's continuation, and maps what it raises exactly as for a
Python processor): it forwards the delivery to TASK_APP_URL and turns the app's answer into
a return (done) or an exception (rejected, or failed and retried). The contract an app
implements is docs/proxy.md.

Answers (`verdict`):
  2xx                                  done
  4xx but 408, 409, 423, 425 and 429   permanent: rejected and dead-lettered, never retried
  anything else (1xx, 3xx, 5xx, 408, 409, 423, 425, 429), a refused or reset connection,
  no answer within the time allowed    failed: retried under the queue's retry rule

Permanent is the 4xx class (RFC 9110 15.5: "the client seems to have erred"), less the 4xx
codes HTTP itself defines as worth repeating: 408 Request Timeout (RFC 9110 15.5.9, "MAY
repeat"), 409 Conflict (15.5.10, a conflict with the resource's current state, which
changes), 423 Locked (RFC 4918 11.3, until the lock is released), 425 Too Early (RFC 8470
5.2, "MAY retry") and 429 Too Many Requests (RFC 6585 4, "Retry-After"). A redirect is
never followed (the app is the end of the line): 3xx is a misconfiguration a redeploy fixes,
so it is retried, and dead-lettered like any failure once the retry rule is spent.
"""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from handler.context import FENCING_HEADER, IDEMPOTENCY_HEADER, current
from handler.task import PermanentTaskError, TaskRequest
from handler.tracing import PROPAGATOR

APP_URL_ENV = "TASK_APP_URL"
APP_HOSTS = ("localhost", "127.0.0.1")
"""The app is another container of the same instance (Cloud Run containers share localhost),
or a child process of `make local`: never a host elsewhere."""

# Hop-by-hop headers (RFC 9110 7.6.1; Proxy-Connection and Keep-Alive are the legacy ones it
# names) describe the connection from Cloud Run to this handler, not the request: a proxy
# must not forward them. Host names the service Cloud Tasks called, not the app. The
# Content-Length is the app's body's (a resolved claim check is not the reference's length),
# which urllib3 computes. Expect: the body is read already; nothing waits for a 100 Continue.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    }
)
# Set by the handler for this delivery, whatever the request carried: the stable key and the
# claim's generation are the store's (a caller's value is never trusted, handler/context.py),
# and the trace context is the handler's own span, a child of the task's.
_REPLACED = frozenset(
    {IDEMPOTENCY_HEADER.lower(), FENCING_HEADER.lower(), "traceparent", "tracestate"}
)
_TOKEN_LIST = re.compile(r"[,\s]+")

RETRYABLE_4XX = frozenset({408, 409, 423, 425, 429})
"""4xx answers that are retried, not rejected: HTTP defines each as worth repeating."""

DEFAULT_FORWARD_S = 600.0
"""With no answer budget known (no dispatch deadline), how long the app may take: Cloud
Tasks' default dispatch deadline."""
RESERVE_SHARE = 0.1
RESERVE_MIN_S = 0.5
RESERVE_MAX_S = 10.0
"""Kept back from the time left for the forward: settling the claim and answering Cloud
Tasks while it still listens (a tenth, 0.5-10 s). A hung app is thus answered for in time:
failed and retried, or dead-lettered on the last attempt."""
MIN_FORWARD_S = 0.1
"""With less than this left after the reserve, the app is not called: failed, retried."""
CONNECT_S = 5.0
"""A loopback connection is made at once or not at all; longer only if time allows less."""
ANSWER_BYTES = 1024
"""How much of the app's answer body is kept, for the log line and the dead letter's reason."""


class AppFailed(Exception):
    """The app answered with a retryable status, or could not be reached or heard in time:
    the attempt fails and Cloud Tasks retries it."""


def verdict(status: int) -> str:
    """ "done", "permanent" or "retry" for the app's HTTP status (see the module's text)."""
    if 200 <= status <= 299:
        return "done"
    if 400 <= status <= 499 and status not in RETRYABLE_4XX:
        return "permanent"
    return "retry"


def forwarded_headers(task: TaskRequest) -> dict[str, str]:
    """The headers the app receives: the delivery's (claim check resolved: the original
    Content-Type), less hop-by-hop ones and Host and Content-Length, plus the idempotency key,
    the fencing generation and the handler's trace context. Call during the delivery."""
    connection = task.headers.get("connection", "")
    named = {token.lower() for token in _TOKEN_LIST.split(connection) if token}
    dropped = _NOT_FORWARDED | _REPLACED | named
    headers = {name: value for name, value in task.headers.items() if name not in dropped}
    headers.update(current().headers())
    PROPAGATOR.inject(headers)  # the current span: the handler's, a child of the task's
    return headers


def app_url(raw: str) -> tuple[str, int]:
    """(host, port) of TASK_APP_URL; ValueError names what is wrong."""
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme != "http"
        or parts.hostname not in APP_HOSTS
        or parts.username is not None
        or parts.password is not None
        or parts.path
        or parts.query
        or parts.fragment
        or port == -1
        or port == 0
    ):
        raise ValueError(
            f"{raw!r} must be http://localhost[:port] or http://127.0.0.1[:port], with no"
            " path: the app listens on the instance's loopback"
        )
    return parts.hostname or APP_HOSTS[0], port or 80


class AppProxy:
    """The processor of proxy mode: one pool of up to `connections` keep-alive connections to
    the app (the handler's concurrency: one per request being served)."""

    def __init__(self, url: str, *, connections: int) -> None:
        host, port = app_url(url)
        self.url = url
        # No retries and no redirects inside the forward: Cloud Tasks retries the task, under
        # the queue's rule, and a redirect is an answer (retried). block: never more
        # connections than requests served at once.
        self._pool = urllib3.HTTPConnectionPool(
            host, port, maxsize=connections, block=True, retries=False
        )

    def __call__(self, task: TaskRequest) -> Mapping[str, object]:
        left = DEFAULT_FORWARD_S if (time_left := task.time_left()) is None else time_left
        allowed = left - min(max(left * RESERVE_SHARE, RESERVE_MIN_S), RESERVE_MAX_S)
        if allowed < MIN_FORWARD_S:
            raise AppFailed(f"{left:.1f} s left of the answer budget: too little to call the app")
        headers = forwarded_headers(task)
        try:
            # urllib3 sends the raw target as received, except that it writes percent-escapes'
            # hex digits in upper case and escapes characters RFC 3986 doesn't allow in a
            # target: the same URI (RFC 3986 6.2.2.1).
            response = self._pool.urlopen(
                task.method,
                task.target,
                body=task.body,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(CONNECT_S, allowed), read=allowed),
                # The pool holds a connection per request served: it is never waited for.
                preload_content=False,
                release_conn=False,
                redirect=False,
            )
            try:
                answer = response.read(ANSWER_BYTES)
                if response.read(1):  # more than is kept: the connection is not reused
                    response.close()
            finally:
                response.release_conn()
        except HTTPError as exc:
            raise AppFailed(
                f"the app at {self.url} did not answer in time or at all: {exc!r}"
            ) from exc
        status = response.status
        text = answer.decode("utf-8", errors="replace")
        outcome = verdict(status)
        if outcome == "done":
            return {"appStatus": status}
        if outcome == "permanent":
            raise PermanentTaskError(f"the app answered {status} (permanent): {text}")
        raise AppFailed(f"the app answered {status}: {text}")
