"""Proxy mode: the processor is an HTTP app on the instance's loopback (a Cloud Run sidecar
in any language), and this handler stands in front of it.

`AppProxy` is a processor like any other (handler/app.py calls it after the claim, the claim
check's resolution and the trace's continuation, and maps what it raises exactly as for a
Python processor): it forwards the delivery to TASK_APP_URL and turns the app's answer into
a return (done) or an exception (rejected, or failed and retried). The contract an app
implements is docs/proxy.md.

The forward runs on a worker thread; the request waits for it as long as the answer budget
allows. An app still working then is not abandoned: `AppStillRunning` hands the forward to
handler/app.py, which answers Cloud Tasks 409 while the claim, moved to the worker and
renewed, stays held until the app answers (or HOLD_CAP_S passes), and the worker settles the
outcome as the request would have. So, as with a Python processor that outlives its budget,
no other delivery reaches the app while it works.

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

import http.client
import re
import select
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from handler.context import FENCING_HEADER, IDEMPOTENCY_HEADER, current
from handler.task import PermanentTaskError, TaskRequest
from handler.tracing import PROPAGATOR

APP_URL_ENV = "TASK_APP_URL"
APP_HOSTS = ("localhost", "127.0.0.1")
"""The app is another container of the same instance (Cloud Run containers share localhost),
or a child process of `make local`: never a host elsewhere."""

# Hop-by-hop headers (RFC 9110 7.6.1; Proxy-Connection and Keep-Alive are the legacy ones it
# names) describe the connection from Cloud Run to this handler, not the request: a proxy
# must not forward them. Host names the service Cloud Tasks called, not the app (http.client
# writes the app's). The Content-Length is the app's body's (a resolved claim check is not
# the reference's length). Expect: the body is read already; nothing waits for a 100 Continue.
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
"""With no answer budget known (no dispatch deadline), how long the request waits for the
app: Cloud Tasks' default dispatch deadline."""
RESERVE_SHARE = 0.1
RESERVE_MIN_S = 0.5
RESERVE_MAX_S = 10.0
"""Kept back from the time left for the wait: settling the claim and answering Cloud Tasks
while it still listens (a tenth, 0.5-10 s). A hung app is thus answered for in time (409, its
claim kept: handler/app.py)."""
MIN_FORWARD_S = 0.1
"""With less than this left after the reserve, the app is not called: failed, retried."""
CONNECT_S = 5.0
"""A loopback connection is made at once or not at all."""
HOLD_CAP_S = 3600.0
"""How long a forward may wait for the app at most (each connect, send or read), answered
in time or held over: Cloud Run's maximum request timeout, 60 minutes ("can be extended up
to 60 minutes (3600 seconds)", docs.cloud.google.com/run/docs/configuring/request-timeout).
No task's work may take longer behind a Cloud Run service, in process or not; past it the
app is taken as lost: the attempt fails (released, or dead-lettered if none will follow)."""
ANSWER_BYTES = 1024
"""How much of the app's answer body is kept, for the log line and the dead letter's reason."""


class AppFailed(Exception):
    """The app answered with a retryable status, or could not be reached, or its connection
    broke, or no worker was free to call it in time: the attempt fails and Cloud Tasks
    retries it."""


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
    return str(parts.hostname), port or 80


class Forward:
    """One forward to the app, run by a worker of AppProxy. Its answer goes to the request
    that waits for it or, once that request has stopped waiting (`hold_over`), to what the
    request left to run on the worker."""

    def __init__(self, exchange: Callable[[], Mapping[str, object]]) -> None:
        self._exchange = exchange
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self._started = threading.Event()
        # Set by run(): the worker's thread before _started, its answer before _answered.
        self._thread: int
        self._result: Mapping[str, object]
        self._error: BaseException | None = None
        self._then: Callable[[], None] | None = None

    def run(self) -> None:
        """On the worker."""
        self._thread = threading.get_ident()
        self._started.set()
        try:
            self._result = self._exchange()
        except BaseException as exc:
            self._error = exc
        with self._lock:
            self._answered.set()
            then = self._then
        if then is not None:
            then()

    def wait(self, timeout: float) -> bool:
        return self._answered.wait(timeout)

    def outcome(self) -> Mapping[str, object]:
        """Once answered: the app's answer as a processor's, returned (done) or raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def hold_over(self, hand_over: Callable[[int], None], then: Callable[[], None]) -> bool:
        """For the request that stopped waiting. If the app answered meanwhile: False, and
        the request settles the answer itself. Else True: `hand_over(thread)` has moved what
        the request held (its claim) to the worker's thread, before the answer can arrive,
        and `then` runs on the worker once it does."""
        self._started.wait()  # running already (it could not be cancelled): set at once
        with self._lock:
            if self._answered.is_set():
                return False
            hand_over(self._thread)
            self._then = then
            return True


class AppStillRunning(Exception):
    """The app has not answered within what the request may wait; its forward goes on."""

    def __init__(self, forward: Forward) -> None:
        super().__init__("the app is still working on the task")
        self.forward = forward


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the app (readable means EOF, or
    bytes nobody asked for): it is not reused. poll, not select: descriptors past 1024."""
    if connection.sock is None:
        return False
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))


class AppProxy:
    """The processor of proxy mode: `workers` threads (the handler's concurrency: one per
    request served at once), each with its own keep-alive connection to the app."""

    def __init__(self, url: str, *, workers: int) -> None:
        self._host, self._port = app_url(url)
        self.url = url
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="app-forward")
        self._local = threading.local()

    def __call__(self, task: TaskRequest) -> Mapping[str, object]:
        left = DEFAULT_FORWARD_S if (time_left := task.time_left()) is None else time_left
        allowed = left - min(max(left * RESERVE_SHARE, RESERVE_MIN_S), RESERVE_MAX_S)
        if allowed < MIN_FORWARD_S:
            raise AppFailed(f"{left:.1f} s left of the answer budget: too little to call the app")
        headers = forwarded_headers(task)
        forward = Forward(lambda: self._exchange(task.method, task.target, task.body, headers))
        future = self._pool.submit(forward.run)
        if forward.wait(allowed):
            return forward.outcome()
        if future.cancel():  # never started: every worker is busy with a forward
            raise AppFailed(
                f"no forward worker free within {allowed:.1f} s (all {self.workers} are"
                " waiting on the app): the app was not called"
            )
        raise AppStillRunning(forward)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_S)
            self._local.connection = connection
        elif _dropped(connection):
            connection.close()  # the next request connects anew
        return connection

    def _exchange(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> Mapping[str, object]:
        """One request to the app on this worker's connection, and the app's answer as a
        processor's. http.client sends the method and target exactly as given (it refuses,
        before sending anything, a target with control characters, spaces or non-ASCII
        characters, which no HTTP/1.1 request line may hold: the task is then rejected)."""
        connection = self._connection()
        try:
            if connection.sock is None:
                connection.connect()  # within CONNECT_S
            assert connection.sock is not None
            connection.sock.settimeout(HOLD_CAP_S)
            try:
                # Not `request()`: it would add an Accept-Encoding the task did not carry.
                connection.putrequest(method, target, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(body)))
            except (http.client.InvalidURL, UnicodeEncodeError, ValueError) as exc:
                connection.close()
                raise PermanentTaskError(
                    f"the request can't be sent to the app as received: {exc}"
                ) from exc
            connection.endheaders(body)
            response = connection.getresponse()
            answer = response.read(ANSWER_BYTES)
            if response.read(1) or not response.isclosed():
                connection.close()  # more than is kept: the connection is not reused
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise AppFailed(
                f"the app at {self.url} could not be reached or its connection broke: {exc!r}"
            ) from exc
        status = response.status
        text = answer.decode("utf-8", errors="replace")
        outcome = verdict(status)
        if outcome == "done":
            return {"appStatus": status}
        if outcome == "permanent":
            raise PermanentTaskError(f"the app answered {status} (permanent): {text}")
        raise AppFailed(f"the app answered {status}: {text}")
