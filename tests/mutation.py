"""`make mutation`'s verdict: the mutation score of each mutated module, from mutmut's results.

Run after `mutmut run` (which writes one `mutants/<path>.meta` per source file, its mutants'
exit codes): reads them through mutmut's own data class and status table, and prints per
module how many of its covered mutants (those some selected test runs) the tests killed.
A mutant the tests ran into a CPU-time limit counts as killed (it looped, and mutmut
stopped it). Exit 1 if a module is under MIN_SCORE with a survivor that
tests/mutation_accepted.toml does not list, if an entry there no longer survives (the list
is kept exact), or if a mutant was left unchecked.

    .venv/bin/python -m tests.mutation            # the table
    .venv/bin/python -m tests.mutation --list     # and each survivor not accepted
    .venv/bin/python -m tests.mutation --recheck  # before a run: test survivors again

mutmut keeps a result until the function it mutated changes; tests that changed since
may kill a survivor or reach an untested function, so `make mutation` first clears every
result but the kills and the map of which test reaches which function (--recheck), and
mutmut runs the tests once to map them again, then the mutants not killed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

MIN_SCORE = 90.0
ACCEPTED = Path(__file__).with_name("mutation_accepted.toml")
STATS = Path("mutants/mutmut-stats.json")
KILLED = frozenset({"killed", "timeout"})
UNCOVERED = frozenset({"no tests", "skipped"})


@dataclass
class Module:
    path: str
    killed: int = 0
    survivors: list[str] = field(default_factory=list)
    uncovered: int = 0
    unchecked: list[str] = field(default_factory=list)

    @property
    def covered(self) -> int:
        return self.killed + len(self.survivors)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.covered if self.covered else 100.0


def modules() -> list[Module]:
    found = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        module = Module(str(path))
        for name, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            if status in KILLED:
                module.killed += 1
            elif status in UNCOVERED:
                module.uncovered += 1
            elif status == "not checked":
                module.unchecked.append(name)
            else:  # survived, suspicious, segfault, interrupted: the tests did not fail
                module.survivors.append(name)
        if data.exit_code_by_key:
            found.append(module)
    return sorted(found, key=lambda m: m.path)


def recheck() -> int:
    # mutmut maps each test to the functions it reaches once per test *name*: a test whose
    # body changed would keep its old map, and a mutant it now reaches would read "no
    # tests" or keep a stale survivor. So the map is made afresh for every run.
    STATS.unlink(missing_ok=True)
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            if status_by_exit_code[code] not in KILLED:
                data.exit_code_by_key[name] = None
        if data.exit_code_by_key:
            data.save()
    return 0


def accepted() -> dict[str, str]:
    if not ACCEPTED.exists():
        return {}
    return tomllib.loads(ACCEPTED.read_text())["accepted"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The mutation score of each mutated module.")
    parser.add_argument("--list", action="store_true", help="name each survivor not accepted")
    parser.add_argument(
        "--recheck", action="store_true", help="clear every result but the kills, and exit"
    )
    args = parser.parse_args(argv)
    if args.recheck:
        return recheck()
    if not Path("mutants").is_dir():
        print("no mutants/ here: run `make mutation` (or mutmut run) first", file=sys.stderr)
        return 1
    found, ok = modules(), accepted()
    failed = False
    print(f"{'module':40} {'killed/covered':>15} {'score':>7} {'accepted':>9} {'no tests':>9}")
    for module in found:
        open_ = [name for name in module.survivors if name not in ok]
        verdict = "ok" if module.score >= MIN_SCORE or not open_ else "LOW"
        failed |= verdict == "LOW" or bool(module.unchecked)
        print(
            f"{module.path:40} {f'{module.killed}/{module.covered}':>15} {module.score:6.1f}%"
            f" {len(module.survivors) - len(open_):>9} {module.uncovered:>9}  {verdict}"
            + (
                f" ({len(module.unchecked)} not checked: the run was cut short)"
                if module.unchecked
                else ""
            )
        )
        if args.list:
            for name in open_:
                print(f"    survived: {name}")
    killed = sum(m.killed for m in found)
    covered = sum(m.covered for m in found)
    print(f"{'all':40} {f'{killed}/{covered}':>15} {100.0 * killed / max(covered, 1):6.1f}%")
    open_or_surviving = {name for m in found for name in (*m.survivors, *m.unchecked)}
    stale = sorted(set(ok) - open_or_surviving)
    for name in stale:
        print(f"{ACCEPTED.name}: {name} no longer survives (killed, or renamed): remove it")
    if failed or stale:
        print(f"FAIL: every module at {MIN_SCORE:.0f}% or more, or its survivors accepted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
