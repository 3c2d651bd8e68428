"""`pip install` of a wheel built from this repository gives `import cloudrun_tasks`, every
module of it importable without the repository, and a version from the git tag."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def imported_distributions(package: Path) -> dict[str, set[str]]:
    """Each third-party top-level module the package's source imports, with the
    distributions that provide it here (empty: nothing installed provides it)."""
    provided = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top != "__future__":
                    found[top] = {canonicalize_name(d) for d in provided.get(top, [])}
    return found


def test_every_third_party_import_is_a_declared_dependency(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = Parser().parsestr(archive.read(metadata).decode())
    # The base requirements: the components must not need the client extra.
    declared = {
        canonicalize_name(Requirement(r).name)
        for r in headers.get_all("Requires-Dist", [])
        if Requirement(r).marker is None
    }
    imported = imported_distributions(ROOT / "components")
    # pydantic pins pydantic-core exactly and its docs import custom errors from it.
    declared |= {"pydantic-core"} if "pydantic" in declared else set()
    # A module of this repository outside components/ (handler, taskclient) is provided by
    # no distribution: the installed package could not import it.
    undeclared = {top: dists for top, dists in imported.items() if not dists & declared}
    assert undeclared == {}
    assert {"pulumi", "pulumi-gcp", "pydantic", "cronsim"} <= declared


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
