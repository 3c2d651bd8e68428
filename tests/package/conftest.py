"""The distribution as a consumer gets it: a wheel built from this checkout, installed
into a fresh virtualenv outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(source: Path, into: Path) -> Path:
    """`pip wheel` with this virtualenv's setuptools and setuptools-scm (both in the dev
    lock): no build isolation, so no download. pip builds in SOURCE (build/, the egg-info,
    setuptools-scm's git calls), so SOURCE must be a tree nothing else is using."""
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-build-isolation", "--wheel-dir", str(into), str(source)),
        ],
        capture_output=True,
        text=True,
        cwd=source,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel {source} failed:\n{result.stdout}{result.stderr}"
    (wheel,) = into.glob("cloudrun_tasks-*.whl")
    return wheel


def working_tree_copy(into: Path) -> Path:
    """This working tree as it is now (committed or not), in a clone of its own: the same
    commit, tags and dirty state, so the same version. Building in ROOT itself raced with
    whatever else reads or writes it at the time (`make test` runs every check at once)."""
    git = ["git", "-C", str(ROOT)]
    subprocess.run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", str(ROOT), str(into)], check=True
    )
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    checkout = ["git", "-C", str(into), "checkout", "--quiet", "--detach", head.stdout.strip()]
    subprocess.run(checkout, check=True)
    listed = subprocess.run(
        [*git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    )
    for name in filter(None, listed.stdout.split("\0")):
        source, target = ROOT / name, into / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)  # deleted in the working tree, not yet committed
    return into


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A new virtualenv holding the wheel, installed by pip.

    Its dependencies are this virtualenv's, hash-locked from requirements.txt, made visible
    through a .pth file: installing pulumi-gcp again into every test venv would cost a
    minute of unpacking and prove nothing about the package. `pip check` then proves the
    wheel's declared ranges accept those locked versions. The repository is not on its path.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, cwd=path.parent
    )
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "locked-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip(python, "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    return python


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--python",
            str(python),
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def outside(python: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run PYTHON in CWD, away from the repository, with only ENV added to PATH and HOME."""
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        timeout=300,
    )


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = working_tree_copy(tmp_path_factory.mktemp("source") / "tree")
    return build_wheel(source, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """Python of a fresh virtualenv with the wheel installed."""
    return fresh_venv(tmp_path_factory.mktemp("consumer") / "venv", wheel)
