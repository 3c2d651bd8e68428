"""What a bulk run tells its user: progress while it runs, an account of every line after."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from taskclient.bulk import BulkOutcome, Outcome

# Not on a terminal (CI logs, pipes): one progress line this often instead of a bar.
PROGRESS_EVERY_S = 5.0


class Progress:
    """A tqdm bar with failures and retries on a terminal; a periodic line elsewhere.
    `total` None: not known up front (a replay pulls until the subscription is empty)."""

    def __init__(self, total: int | None, stream: IO[str] = sys.stderr) -> None:
        self._total, self._stream = total, stream
        self._counts: Counter[Outcome] = Counter()
        self._started = self._last_line = time.monotonic()
        self._bar = tqdm(total=total, unit="task", file=stream) if stream.isatty() else None

    def update(self, outcome: BulkOutcome, retries: int) -> None:
        self._counts[outcome.outcome] += 1
        if self._bar is not None:
            not_created = sum(
                n
                for kind, n in self._counts.items()
                if kind not in (Outcome.CREATED, Outcome.EXISTED)
            )
            self._bar.set_postfix(
                {"not created": not_created, "retries": retries},
                refresh=False,
            )
            self._bar.update()
            return
        now = time.monotonic()
        if now - self._last_line >= PROGRESS_EVERY_S:
            self._last_line = now
            done = sum(self._counts.values())
            rate = done / max(now - self._started, 1e-9)
            counts = ", ".join(f"{kind.value} {n}" for kind, n in self._counts.items())
            of = f"/{self._total}" if self._total is not None else ""
            print(
                f"progress: {done}{of} ({counts}), {rate:.0f}/s, retries {retries}",
                file=self._stream,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass(frozen=True)
class Summary:
    lines: int
    counts: dict[str, int]
    elapsed_s: float
    retries: int
    p50_ms: float | None
    p99_ms: float | None
    stopped: str | None
    exit_code: int
    noun: str = "lines"
    """What was counted: input lines (bulk), messages (replay)."""

    @property
    def rate(self) -> float:
        sent = self.lines - self.counts.get(Outcome.NOT_SENT.value, 0)
        return sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def text(self) -> str:
        counts = ", ".join(f"{kind.value} {self.counts.get(kind.value, 0)}" for kind in Outcome)
        latency = (
            f", latency p50 {self.p50_ms:.0f} ms p99 {self.p99_ms:.0f} ms"
            if self.p50_ms is not None and self.p99_ms is not None
            else ""
        )
        line = (
            f"{self.lines} {self.noun}: {counts}; {self.rate:.0f} tasks/s over"
            f" {self.elapsed_s:.1f}s, {self.retries} retries{latency}"
        )
        return line + (f"\nstopped: {self.stopped}" if self.stopped else "")

    def as_json(
        self, failures: list[dict[str, object]], extra: Mapping[str, object] | None = None
    ) -> str:
        return json.dumps(
            {
                **(extra or {}),
                self.noun: self.lines,
                "outcomes": {kind.value: self.counts.get(kind.value, 0) for kind in Outcome},
                "elapsedSeconds": round(self.elapsed_s, 3),
                "tasksPerSecond": round(self.rate, 1),
                "retries": self.retries,
                "latencyMs": {"p50": self.p50_ms, "p99": self.p99_ms},
                "stopped": self.stopped,
                "exitCode": self.exit_code,
                "notCreated": failures,
            }
        )


def summarize(
    outcomes: list[BulkOutcome],
    *,
    elapsed_s: float,
    retries: int,
    stopped: str | None,
    exit_code: int,
    noun: str = "lines",
) -> Summary:
    latencies = sorted(o.latency_s * 1000 for o in outcomes if o.latency_s is not None)
    percentile = (
        (lambda q: statistics.quantiles(latencies, n=100, method="inclusive")[q - 1])
        if len(latencies) >= 2
        else (lambda q: latencies[0] if latencies else None)
    )
    return Summary(
        lines=len(outcomes),
        counts={kind.value: n for kind, n in Counter(o.outcome for o in outcomes).items()},
        elapsed_s=elapsed_s,
        retries=retries,
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        stopped=stopped,
        exit_code=exit_code,
        noun=noun,
    )


def write_not_created(path: Path, outcomes: list[BulkOutcome], lines: list[str]) -> int:
    """The input lines that were not created, as they were: feed the file back as --input."""
    kept = [lines[o.index] for o in outcomes if not o.ok]
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return len(kept)
