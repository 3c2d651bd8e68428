"""Which Cloud Tasks errors are worth another try, and how patiently (the bulk run uses
the same backoff with a run-wide deadline: taskclient.bulk)."""

from collections.abc import Callable

from google.api_core import exceptions
from google.api_core.retry import Retry, if_exception_type

# Transient by gRPC's definition: the same request can succeed later. Everything else
# (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION...) is permanent.
TRANSIENT = if_exception_type(
    exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.ResourceExhausted
)

INITIAL_BACKOFF_S = 0.1
MAX_BACKOFF_S = 10.0


def sync_retry(deadline_s: float, on_error: Callable[[Exception], None]) -> Retry:
    return Retry(
        predicate=TRANSIENT,
        initial=INITIAL_BACKOFF_S,
        maximum=MAX_BACKOFF_S,
        multiplier=2.0,
        timeout=deadline_s,
        on_error=on_error,
    )
