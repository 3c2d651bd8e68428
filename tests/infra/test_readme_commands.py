"""The README is a contract: every command in its shell blocks is a real `make` target with
real variables, or `.venv/bin/python -m MODULE` with flags that MODULE's `--help` lists;
only the Pulumi CLI and git (which need a real project or a checkout) are taken on trust."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# Commands that act on a real Google Cloud project or a git checkout: not run here.
TRUSTED = {"pulumi", "git"}


def commands() -> list[str]:
    """Each command of the README's sh blocks: continuation lines joined, comments cut."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def flags(command: str) -> list[str]:
    # Optional parts are written [--flag VALUE]; alternatives as [--a X | --b Y].
    return re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command)


@cache
def help_text(module: str, subcommand: str | None) -> str:
    args = [sys.executable, "-m", module, *([subcommand] if subcommand else []), "--help"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_targets() -> set[str]:
    return {
        target
        for line in re.findall(r"^([A-Za-z][\w .-]*):(?!=)", MAKEFILE, re.M)
        for target in line.split()
    }


COMMANDS = commands()


def test_the_readme_has_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_a_make_target_or_the_venvs_python(command: str) -> None:
    words = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "))
    program = words[0]
    if program in TRUSTED:
        return
    if program == "make":
        targets = [w for w in words[1:] if "=" not in w]
        variables = [w.split("=", 1)[0] for w in words[1:] if "=" in w]
        assert set(targets) <= make_targets(), command
        assert all(f"$({v})" in MAKEFILE for v in variables), command
        return
    assert program == ".venv/bin/python" and words[1] == "-m", (
        f"{command!r}: use a make target or .venv/bin/python (no bare python -m, which only"
        " works inside an activated virtualenv)"
    )
    module = words[2]
    assert (ROOT / module.replace(".", "/") / "__main__.py").is_file() or (
        ROOT / f"{module.replace('.', '/')}.py"
    ).is_file(), command
    subcommand = words[3] if len(words) > 3 and not words[3].startswith("-") else None
    listed = help_text(module, subcommand)
    missing = [flag for flag in flags(command) if flag not in listed]
    assert missing == [], f"{command!r}: {missing} not in `{module} {subcommand or ''} --help`"


def test_a_made_up_flag_is_caught() -> None:
    """The check above can fail: a flag the module does not have."""
    listed = help_text("taskclient", "bulk")
    assert "--no-such-flag" not in listed
    assert "--failed-out" in listed


def test_plan_output_to_a_file_is_only_the_plan() -> None:
    """`make plan FORMAT=json > file` must write JSON alone, even when make first builds the
    virtualenv: every recipe that can run before it sends its output to stderr."""
    for target in ("$(VENV)/.installed",):
        recipe = MAKEFILE.split(f"{target}:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
        for line in recipe:
            assert line.startswith("\t@"), f"{target}: {line!r} is echoed to stdout"
            assert line.rstrip().endswith(">&2"), f"{target}: {line!r} writes to stdout"
    result = subprocess.run(
        ["make", "--no-print-directory", "plan", "STACK=dev", "FORMAT=json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")
