"""`make mutation`'s verdict (tests/mutation.py) over mutmut's own result files: a module
passes at 90% of its covered mutants killed, or with every survivor accepted; an accepted
entry that no longer survives, or a mutant left unchecked, fails the run; --recheck keeps
only the kills and drops the map of tests to functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import mutation

KILLED, SURVIVED, TIMEOUT, NO_TESTS = 1, 0, 36, 33


def write_results(path: str, codes: dict[str, int | None]) -> None:
    meta = Path("mutants") / f"{path}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(
        json.dumps(
            {
                "exit_code_by_key": codes,
                "durations_by_key": {},
                "estimated_durations_by_key": {},
            }
        )
    )


def codes(prefix: str, **counts: int) -> dict[str, int | None]:
    """`killed=9, survived=1`: that many mutants of each status, named prefix__mutmut_N."""
    status = {
        "killed": KILLED,
        "survived": SURVIVED,
        "timeout": TIMEOUT,
        "no_tests": NO_TESTS,
        "unchecked": None,
    }
    out: dict[str, int | None] = {}
    for kind, count in counts.items():
        for _ in range(count):
            out[f"{prefix}__mutmut_{len(out) + 1}"] = status[kind]
    return out


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with mutants/ for pkg/a.py and pkg/b.py; returns the accepted file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        mutation, "walk_mutatable_files", lambda: [Path("pkg/a.py"), Path("pkg/b.py")]
    )
    accepted = tmp_path / "accepted.toml"
    accepted.write_text("[accepted]\n")
    monkeypatch.setattr(mutation, "ACCEPTED", accepted)
    return accepted


def accept(file: Path, *names: str) -> None:
    file.write_text("[accepted]\n" + "".join(f'"{n}" = "equivalent"\n' for n in names))


def row(out: str, path: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith(path)]
    return line.split()


def test_a_module_at_90_percent_passes_and_one_below_fails_naming_its_survivors(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_results("pkg/a.py", codes("a.f", killed=8, timeout=1, survived=1, no_tests=4))
    write_results("pkg/b.py", codes("b.f", killed=8, survived=2))
    assert mutation.main(["--list"]) == 1
    out = capsys.readouterr().out
    # A timeout is a kill; a mutant no test reaches is not covered.
    assert row(out, "pkg/a.py") == ["pkg/a.py", "9/10", "90.0%", "0", "4", "ok"]
    assert row(out, "pkg/b.py") == ["pkg/b.py", "8/10", "80.0%", "0", "0", "LOW"]
    assert "survived: b.f__mutmut_9" in out and "survived: b.f__mutmut_10" in out
    assert "survived: a.f__mutmut_10" in out  # every open survivor is named, passing or not
    assert row(out, "all") == ["all", "17/20", "85.0%"]


def test_a_module_below_90_percent_passes_when_every_survivor_is_accepted(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_results("pkg/a.py", codes("a.f", killed=10))
    write_results("pkg/b.py", codes("b.f", killed=8, survived=2))
    accept(results, "b.f__mutmut_9")
    assert mutation.main([]) == 1  # one survivor is still open
    assert row(capsys.readouterr().out, "pkg/b.py")[-2:] == ["0", "LOW"]
    accept(results, "b.f__mutmut_9", "b.f__mutmut_10")
    assert mutation.main([]) == 0
    assert row(capsys.readouterr().out, "pkg/b.py") == ["pkg/b.py", "8/10", "80.0%", "2", "0", "ok"]


def test_an_accepted_mutant_that_no_longer_survives_fails_the_run(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_results("pkg/a.py", codes("a.f", killed=10))
    write_results("pkg/b.py", codes("b.f", killed=10))
    accept(results, "b.f__mutmut_3")
    assert mutation.main([]) == 1
    assert "accepted.toml: b.f__mutmut_3 no longer survives" in capsys.readouterr().out


def test_a_mutant_left_unchecked_fails_the_run_even_at_100_percent(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_results("pkg/a.py", codes("a.f", killed=10, unchecked=1))
    write_results("pkg/b.py", codes("b.f", killed=10))
    assert mutation.main([]) == 1
    assert "(1 not checked: the run was cut short)" in row_text(capsys, "pkg/a.py")


def row_text(capsys: pytest.CaptureFixture[str], path: str) -> str:
    return " ".join(row(capsys.readouterr().out, path))


def test_no_results_is_an_error_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert mutation.main([]) == 1
    assert "no mutants/ here" in capsys.readouterr().err


def test_recheck_keeps_only_the_kills_and_drops_the_test_map(results: Path) -> None:
    write_results("pkg/a.py", codes("a.f", killed=1, timeout=1, survived=1, no_tests=1))
    write_results("pkg/b.py", codes("b.f", unchecked=1))
    stats = Path("mutants/mutmut-stats.json")
    stats.write_text("{}")
    assert mutation.main(["--recheck"]) == 0
    kept = json.loads(Path("mutants/pkg/a.py.meta").read_text())["exit_code_by_key"]
    assert kept == {
        "a.f__mutmut_1": KILLED,
        "a.f__mutmut_2": TIMEOUT,
        "a.f__mutmut_3": None,
        "a.f__mutmut_4": None,
    }
    assert not stats.exists()
