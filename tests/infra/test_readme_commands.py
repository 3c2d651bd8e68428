"""The README and the site are a contract: every command in their shell blocks is a real
`make` target with real variables, or `.venv/bin/python -m MODULE` with flags that MODULE's
`--help` lists, or `cd` into a directory of this repository; only the commands that need a
real project, a checkout or a Docker engine (pulumi, gcloud, git, docker) are taken on
trust, as the getting-started page says."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache

import pytest

from tests.docs.pages import ROOT, block_commands, pages, text

MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# Commands that act on a real Google Cloud project, a git checkout or a Docker engine.
TRUSTED = {"pulumi", "gcloud", "git", "docker"}


def commands() -> list[str]:
    """Each command of every page's sh blocks, in page order."""
    return [c for page in pages() for c in block_commands(page.read_text(encoding="utf-8"))]


def _where() -> dict[str, str]:
    return {
        c: str(page.relative_to(ROOT))
        for page in pages()
        for c in block_commands(page.read_text(encoding="utf-8"))
    }


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
WHERE = _where()


def test_the_pages_have_commands() -> None:
    assert len(COMMANDS) >= 30
    # Every page with a shell block is read, not only the README.
    assert {"README.md", "docs/client.md", "docs/plan.md", "docs/gitops.md"} <= set(WHERE.values())


def test_what_the_site_says_about_its_commands_is_this_test() -> None:
    """getting-started.md names the programs taken on trust: exactly TRUSTED."""
    said = " ".join(text("getting-started.md").split())
    named = re.search(r"or is a (.*?) command that needs a real project", said)
    assert named, "getting-started.md no longer says which commands are taken on trust"
    assert set(re.findall(r"`(\w+)`", named.group(1))) == TRUSTED


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_a_make_target_or_the_venvs_python(command: str) -> None:
    words = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "))
    program = words[0]
    where = WHERE[command]
    if program in TRUSTED:
        return
    if program == "cd":
        assert len(words) == 2 and (ROOT / words[1]).is_dir(), f"{where}: {command!r}"
        return
    if program == "make":
        targets = [w for w in words[1:] if "=" not in w]
        variables = [w.split("=", 1)[0] for w in words[1:] if "=" in w]
        assert set(targets) <= make_targets(), f"{where}: {command!r}"
        assert all(f"$({v})" in MAKEFILE for v in variables), f"{where}: {command!r}"
        return
    assert program == ".venv/bin/python" and words[1] == "-m", (
        f"{where}: {command!r}: use a make target or .venv/bin/python (no bare python -m,"
        " which only works inside an activated virtualenv)"
    )
    module = words[2]
    assert (ROOT / module.replace(".", "/") / "__main__.py").is_file() or (
        ROOT / f"{module.replace('.', '/')}.py"
    ).is_file(), f"{where}: {command!r}"
    subcommand = words[3] if len(words) > 3 and not words[3].startswith("-") else None
    listed = help_text(module, subcommand)
    missing = [flag for flag in flags(command) if flag not in listed]
    assert missing == [], (
        f"{where}: {command!r}: {missing} not in `{module} {subcommand or ''} --help`"
    )


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
