"""`pip install` of a wheel built from this repository gives `import cloudrun_tasks`, every
module of it importable without the repository, and a version from the git tag."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from tests.package.conftest import ROOT, build_wheel, outside, pip

# Every module of components/, as the installed package names it.
MODULES = sorted(
    "cloudrun_tasks" + ".".join(("", *path.relative_to(ROOT / "components").with_suffix("").parts))
    for path in (ROOT / "components").rglob("*.py")
)


def test_every_module_of_components_is_in_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "cloudrun_tasks/" + str(path.relative_to(ROOT / "components"))
        for path in (ROOT / "components").rglob("*.py")
    }
    assert expected - names == set()
    assert "cloudrun_tasks/py.typed" in names


def test_installed_package_imports_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    modules = [m.removesuffix(".__init__") for m in MODULES]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import cloudrun_tasks\n"
        "print(cloudrun_tasks.__file__)\n"
        "print(cloudrun_tasks.TaskPipeline.__module__, cloudrun_tasks.ProjectApis.__module__)\n"
        "print('components' in sys.modules)\n"
    )
    result = outside(installed, "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where, classes, repository_imported = result.stdout.splitlines()
    assert "site-packages/cloudrun_tasks/" in where
    assert classes == "cloudrun_tasks.package cloudrun_tasks.package"
    # An absolute `components.` import inside the package would have failed above; nothing
    # reached for this repository's folder either.
    assert repository_imported == "False"


def test_declared_dependency_ranges_accept_the_locked_versions(installed: Path) -> None:
    # The fresh venv sees the locked dependencies; pip checks them against Requires-Dist.
    assert "No broken requirements" in pip(installed, "check").stdout


def test_version_comes_from_the_git_tag(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "tag", "-a", "v7.3.1", "-m", "release"], check=True)
    assert build_wheel(clone, tmp_path / "tagged").name.startswith("cloudrun_tasks-7.3.1-")
    # One commit past the tag: a development version after it, never the tag's own.
    subprocess.run([*git, "commit", "--quiet", "--allow-empty", "-m", "next"], check=True)
    later = build_wheel(clone, tmp_path / "later").name
    assert later.startswith("cloudrun_tasks-7.3.2.dev1+g"), later
