"""What a soak run found, and whether it passes: every task finished once, none lost.

A task is one of two kinds:
  work      the processor returns: it must have exactly one completed run
  rejected  the processor raises PermanentTaskError: it must have a dead letter kept by the
            Pub/Sub subscription
Outcomes per task:
  lost      work with no completed run, or rejected with no dead letter, or (either) never
            acknowledged with a 2xx by the end of the run
  doubled   work with two or more completed runs, unless every extra run follows a run cut
            by a SIGKILL after its processor returned and before the handler logged its
            answer (its `processed` record may not have been written): at-least-once
            delivery can't tell such a run from one that never happened, and runs it again.
            Those are counted apart, as `rerun after a kill`, and don't fail the run.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """One completed run: the task, the handler incarnation that ran it (a restart is a new
    one) and its line in that incarnation's runs file."""

    task: str
    incarnation: str
    line: int


@dataclass(frozen=True)
class SoakReport:
    tasks: int
    rejected_tasks: int
    deliveries: int
    kills: int
    firestore_freezes: int
    pubsub_down_s: float
    seconds: float
    runs_per_task: Mapping[int, int]
    """completed runs -> how many work tasks had that many."""
    lost: Sequence[str]
    doubled: Sequence[str]
    rerun_after_kill: Sequence[str]
    dead_letters: int

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled

    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def text(self) -> str:
        runs = ", ".join(f"{n} run{'s' if n != 1 else ''}: {count}" for n, count in sorted(
            self.runs_per_task.items()
        ))  # fmt: skip
        lines = [
            f"tasks:             {self.tasks} ({self.tasks - self.rejected_tasks} work,"
            f" {self.rejected_tasks} rejected by the processor)",
            f"deliveries:        {self.deliveries}",
            f"kills:             {self.kills} SIGKILLs of a handler (each restarted)",
            f"firestore frozen:  {self.firestore_freezes} times",
            f"pubsub down:       {self.pubsub_down_s:g} s",
            f"duration:          {self.seconds:.0f} s",
            f"completed runs:    {runs or 'none'} (work tasks)",
            f"dead letters:      {self.dead_letters} (kept by the subscription)",
            f"rerun after kill:  {len(self.rerun_after_kill)}"
            + (f" ({', '.join(self.rerun_after_kill[:5])})" if self.rerun_after_kill else ""),
            f"lost:              {len(self.lost)}"
            + (f" ({', '.join(self.lost[:5])})" if self.lost else ""),
            f"doubled:           {len(self.doubled)}"
            + (f" ({', '.join(self.doubled[:5])})" if self.doubled else ""),
            "PASS" if self.passed else "FAIL",
        ]
        return "\n".join(lines)


def judge(
    *,
    work: Sequence[str],
    rejected: Sequence[str],
    acknowledged: set[str],
    runs: Sequence[Run],
    cut_after_return: set[Run],
    dead_lettered: set[str],
    deliveries: int,
    kills: int,
    firestore_freezes: int,
    pubsub_down_s: float,
    seconds: float,
) -> SoakReport:
    """`runs`: every completed run; `cut_after_return`: those of them whose handler was
    SIGKILLed before it logged the task's answer; `dead_lettered`: task names of the dead
    letters pulled from the subscription."""
    per_task: dict[str, list[Run]] = {name: [] for name in work}
    for run in runs:
        if run.task in per_task:
            per_task[run.task].append(run)
    lost = sorted(
        [name for name in work if not per_task[name] or name not in acknowledged]
        + [name for name in rejected if name not in dead_lettered or name not in acknowledged]
    )
    doubled, rerun = [], []
    for name, task_runs in per_task.items():
        if len(task_runs) < 2:
            continue
        cut = sum(1 for run in task_runs if run in cut_after_return)
        # Every run but one was cut after returning: each explains the run after it.
        (rerun if cut >= len(task_runs) - 1 else doubled).append(name)
    return SoakReport(
        tasks=len(work) + len(rejected),
        rejected_tasks=len(rejected),
        deliveries=deliveries,
        kills=kills,
        firestore_freezes=firestore_freezes,
        pubsub_down_s=pubsub_down_s,
        seconds=seconds,
        runs_per_task=Counter(len(task_runs) for task_runs in per_task.values()),
        lost=lost,
        doubled=sorted(doubled),
        rerun_after_kill=sorted(rerun),
        dead_letters=len(dead_lettered),
    )
