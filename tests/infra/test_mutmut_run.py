"""tests/mutmut_run.py: a mutant's wall-clock timeout reaches that mutant while it runs,
and nothing once it has ended (its pid may be another process's by then)."""

from __future__ import annotations

import signal
import subprocess
import threading

import mutmut.workers.isolation
import pytest

from tests import mutmut_run


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def test_a_running_mutant_gets_sigxcpu_at_its_deadline() -> None:
    child = sleeper()
    try:
        mutmut_run.register_timeout(child.pid, 0.05)
        assert child.wait(timeout=60) == -signal.SIGXCPU
    finally:
        child.kill()
        child.wait()


def test_a_mutant_that_ended_gets_nothing_at_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[BaseException | None] = []
    done = threading.Event()
    real = signal.pidfd_send_signal

    def recorded(pidfd: int, sig: int) -> None:
        try:
            real(pidfd, sig)
            sent.append(None)
        except BaseException as exc:
            sent.append(exc)
            raise
        finally:
            done.set()

    monkeypatch.setattr(signal, "pidfd_send_signal", recorded)
    child = subprocess.Popen(["true"], start_new_session=True)
    mutmut_run.register_timeout(child.pid, 0.2)  # registered while it is this test's child
    child.wait()  # then it ends and is reaped: its pid is free for any process
    assert done.wait(timeout=60)
    # The signal went to that process (through its pidfd), which is gone: no other got it.
    assert len(sent) == 1 and isinstance(sent[0], ProcessLookupError)


def test_a_pid_already_reaped_is_not_queued() -> None:
    child = subprocess.Popen(["true"], start_new_session=True)
    child.wait()
    before = list(mutmut_run._due)
    mutmut_run.register_timeout(child.pid, 0.0)
    assert mutmut_run._due == before


def test_install_replaces_the_function_mutmuts_runners_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = getattr(mutmut.workers.isolation, "register_timeout")  # noqa: B009
    monkeypatch.setattr(mutmut.workers.isolation, "register_timeout", original)
    assert original is not mutmut_run.register_timeout
    mutmut_run.install()
    assert getattr(mutmut.workers.isolation, "register_timeout") is mutmut_run.register_timeout  # noqa: B009
