"""What a soak run found, and whether it passes: every task finished once, none lost.

A task is one of two kinds:
  work      the processor returns: it must have exactly one completed run, and its effect
            (soak/processor.py: a store that checks the idempotency key and fencing token)
            applied exactly once
  rejected  the processor raises PermanentTaskError: it must have a dead letter kept by the
            Pub/Sub subscription
Outcomes per task:
  lost      work with no completed run, or rejected with no dead letter, or (either) never
            acknowledged with a 2xx by the end of the run
  doubled   work with two or more completed runs. Inside the guarantee envelope
            (docs/guarantees.md) this must never happen, in process or in proxy mode (an app
            that outlives its answer budget keeps its claim). Beyond it, by cause, reported
            and not failing the run:
              rerun after a kill   every extra run follows a run cut by a SIGKILL after its
                                   processor returned and before its `processed` record was
                                   written (in the request, or by the store in the
                                   background): at-least-once delivery runs it again
              claim lost           a handler logged that another delivery took the task
                                   over while its work ran (its holder was paused or cut
                                   off from Firestore for a whole lease)
  effect    work whose effect was not applied exactly once, whatever the runs: fails the run
            (the fencing token and the idempotency key must keep effects once even beyond
            the envelope)
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
    committed: bool = True
    """Its effect was applied by this run (False: refused, another run had applied it or a
    newer holder had reserved it)."""


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
    """Inside the envelope: no cause beyond it explains the extra run."""
    rerun_after_kill: Sequence[str]
    dead_letters: int
    claim_lost: Sequence[str] = ()
    """Doubled beyond the envelope: a handler logged its claim lost (a pause past a lease)."""
    effect_errors: Sequence[str] = ()
    """Work tasks whose effect was not applied exactly once."""
    contention: int = 0
    """Busy loops run meanwhile (CPU contention), 0 for none."""

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled and not self.effect_errors

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
            f"cpu contention:    {self.contention} busy loops"
            if self.contention
            else "cpu contention:    none",
            f"completed runs:    {runs or 'none'} (work tasks)",
            f"dead letters:      {self.dead_letters} (kept by the subscription)",
            "beyond the envelope (reported, not failing):",
            f"  rerun after kill:  {len(self.rerun_after_kill)}" + _some(self.rerun_after_kill),
            f"  claim lost:        {len(self.claim_lost)}" + _some(self.claim_lost),
            "inside the envelope (must be 0):",
            f"lost:              {len(self.lost)}" + _some(self.lost),
            f"doubled:           {len(self.doubled)}" + _some(self.doubled),
            f"effect not once:   {len(self.effect_errors)}" + _some(self.effect_errors),
            "PASS" if self.passed else "FAIL",
        ]
        return "\n".join(lines)


def _some(names: Sequence[str]) -> str:
    return f" ({', '.join(names[:5])})" if names else ""


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
    claim_lost: set[str] | None = None,
    effects: Mapping[str, bool] | None = None,
    contention: int = 0,
) -> SoakReport:
    """`runs`: every completed run; `cut_after_return`: those of them whose handler was
    SIGKILLed before it logged the task's answer; `dead_lettered`: task names of the dead
    letters pulled from the subscription; `claim_lost`: tasks a handler logged its claim
    lost on; `effects`: per work task, whether its effect store says applied (None: the
    runs alone are judged)."""
    per_task: dict[str, list[Run]] = {name: [] for name in work}
    for run in runs:
        if run.task in per_task:
            per_task[run.task].append(run)
    lost = sorted(
        [name for name in work if not per_task[name] or name not in acknowledged]
        + [name for name in rejected if name not in dead_lettered or name not in acknowledged]
    )
    doubled, rerun, paused = [], [], []
    for name, task_runs in per_task.items():
        if len(task_runs) < 2:
            continue
        cut = sum(1 for run in task_runs if run in cut_after_return)
        # Every run but one was cut after returning: each explains the run after it.
        if cut >= len(task_runs) - 1:
            rerun.append(name)
        elif name in (claim_lost or set()):
            paused.append(name)
        else:
            doubled.append(name)
    effect_errors: list[str] = []
    if effects is not None:
        for name, task_runs in per_task.items():
            commits = sum(1 for run in task_runs if run.committed)
            if commits > 1 or (name in acknowledged and not effects.get(name, False)):
                effect_errors.append(name)
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
        claim_lost=sorted(paused),
        effect_errors=sorted(effect_errors),
        contention=contention,
    )
