"""The bulk report: progress on a terminal and off it, and the final figures."""

from __future__ import annotations

import io
import json

import pytest

from taskclient import report
from taskclient.bulk import BulkOutcome, Outcome


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def outcome(index: int, kind: Outcome, latency_s: float | None = 0.01) -> BulkOutcome:
    return BulkOutcome(index, kind, latency_s=latency_s)


def test_off_a_terminal_a_progress_line_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 6.0, 7.0, 12.5])
    monkeypatch.setattr(report.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = report.Progress(10, stream)  # t=0
    progress.update(outcome(0, Outcome.CREATED), retries=0)  # t=1: too soon
    progress.update(outcome(1, Outcome.FAILED), retries=3)  # t=6: a line
    progress.update(outcome(2, Outcome.CREATED), retries=3)  # t=7: too soon
    progress.update(outcome(3, Outcome.UNKNOWN), retries=4)  # t=12.5: a line
    progress.close()
    assert stream.getvalue().splitlines() == [
        "progress: 2/10 (created 1, failed 1), 0/s, retries 3",
        "progress: 4/10 (created 2, failed 1, unknown 1), 0/s, retries 4",
    ]


def test_on_a_terminal_the_bar_shows_what_was_not_created_and_retries() -> None:
    stream = Terminal()
    progress = report.Progress(3, stream)
    progress.update(outcome(0, Outcome.CREATED), retries=0)
    progress.update(outcome(1, Outcome.FAILED), retries=2)
    progress.update(outcome(2, Outcome.EXISTED), retries=2)
    progress.close()
    final = stream.getvalue().split("\r")[-1]
    assert "3/3" in final and "not created=1" in final and "retries=2" in final


def test_summary_counts_rate_and_percentiles() -> None:
    outcomes = [outcome(i, Outcome.CREATED, latency_s=(i + 1) / 1000) for i in range(100)]
    outcomes += [outcome(100, Outcome.NOT_SENT, latency_s=None)]
    summary = report.summarize(outcomes, elapsed_s=2.0, retries=5, stopped=None, exit_code=1)
    assert summary.rate == 50.0  # sent lines only
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    data = json.loads(summary.as_json([{"line": 101, "outcome": "not sent", "error": "x"}]))
    assert data["outcomes"] == {
        "created": 100, "already existed": 0, "failed": 0, "unknown": 0, "not sent": 1
    }  # fmt: skip
    assert data["exitCode"] == 1 and data["retries"] == 5
    assert summary.text().startswith("101 lines: created 100, already existed 0, failed 0,")
