"""`mutmut` as `make mutation` runs it: the same command line, with its wall-clock timeout
sent only to the mutant's own process.

mutmut 3.8.1 (mutmut/workers/timeout.py) queues (deadline, pid) for every mutant it forks
and, at the deadline, sends SIGXCPU to that pid, whether or not the mutant has long since
ended and been reaped. By then the kernel may have given the pid to any other process of
the machine: a mutation run beside other work killed an unrelated `make unit` with SIGXCPU.
Here the pid is turned into a pidfd when the mutant is forked (it is this process's child
and not yet reaped, so the pidfd is that process and no other), and the signal goes through
the pidfd: once that process has ended, nothing is sent.

    .venv/bin/python -m tests.mutmut_run run --max-children 2 [GLOB ...]
"""

from __future__ import annotations

import heapq
import os
import signal
import sys
import threading
import time

import mutmut.__main__
import mutmut.workers.isolation

_due: list[tuple[float, int, int]] = []
"""(deadline, sequence, pidfd)"""
_lock = threading.Condition()
_checker_in: int | None = None
"""The process whose thread sends them (a forked process has no thread of its parent's)."""
_sequence = 0


def register_timeout(pid: int, timeout_s: float) -> None:
    """mutmut.workers.timeout.register_timeout's contract: SIGXCPU to `pid` after
    `timeout_s`, if it still runs."""
    global _checker_in, _sequence
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone (and reaped): nothing to time out
    with _lock:
        if _checker_in != os.getpid():
            _checker_in = os.getpid()
            _due.clear()  # a parent's, whose pidfds are that parent's to send through
            threading.Thread(target=_send_when_due, name="mutant-timeouts", daemon=True).start()
        _sequence += 1
        heapq.heappush(_due, (time.time() + timeout_s, _sequence, pidfd))
        _lock.notify()


def _send_when_due() -> None:
    with _lock:
        while True:
            now = time.time()
            while _due and _due[0][0] <= now:
                _, _, pidfd = heapq.heappop(_due)
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGXCPU)
                except ProcessLookupError:
                    pass  # that mutant ended: its pid may be another process's now
                finally:
                    os.close(pidfd)
            _lock.wait(timeout=_due[0][0] - now if _due else None)


def install() -> None:
    # isolation.py binds the name at import: that binding is the one its runners call.
    if not callable(getattr(mutmut.workers.isolation, "register_timeout", None)):
        sys.exit("mutmut.workers.isolation.register_timeout is gone: see tests/mutmut_run.py")
    setattr(mutmut.workers.isolation, "register_timeout", register_timeout)  # noqa: B010


def main() -> None:
    install()
    # `python -m tests.mutmut_run` imported this tree's `tests` package: mutmut's pytest
    # runs in mutants/ and must import the copy there, as when mutmut is run as a script.
    for name in [m for m in sys.modules if m == "tests" or m.startswith("tests.")]:
        del sys.modules[name]
    sys.argv[0] = "mutmut"
    mutmut.__main__.cli()


if __name__ == "__main__":
    main()
