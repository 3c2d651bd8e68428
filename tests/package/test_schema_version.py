"""The provider's schema as `pulumi package add` gets it, from any checkout: valid against
Pulumi's own metaschema (tests/package/metaschema/, with its source and commit), with the
version the installed distribution has, made semver (components.provider.semver).

Pulumi's binder parses the version with blang/semver ("failed to parse semver",
pkg/codegen/schema/bind.go); here python-semver (Pulumi's SDK's own dependency) and the
metaschema's own pattern, run by an ECMA-262 engine, judge it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import regress
import semver as python_semver
import setuptools_scm
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend

from components.provider import semver
from tests.package.conftest import ROOT, build_wheel, fresh_venv, outside

METASCHEMA_DIR = Path(__file__).parent / "metaschema"
METASCHEMA = METASCHEMA_DIR / "pulumi.json"


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """JSON Schema's `pattern` with ECMA-262 semantics, as the metaschema's authors wrote
    it (Python's `re` rejects its `(?<name>` groups)."""
    if validator.is_type(instance, "string") and regress.Regex(pattern, "u").find(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = extend(Draft202012Validator, {"pattern": _ecma_pattern})


def schema_problems(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """Where SCHEMA breaks Pulumi's metaschema, as (JSON path, message) pairs."""
    metaschema = json.loads(METASCHEMA.read_text())
    validator = _Validator(metaschema)
    return sorted((error.json_path, error.message) for error in validator.iter_errors(schema))


def test_the_kept_metaschema_is_the_file_its_source_note_names() -> None:
    note = (METASCHEMA_DIR / "SOURCE.md").read_text()
    assert "https://github.com/pulumi/pulumi" in note
    assert "`pkg/codegen/schema/pulumi.json`" in note
    assert re.search(r"commit: `[0-9a-f]{40}`", note)
    digest = hashlib.sha256(METASCHEMA.read_bytes()).hexdigest()
    assert f"sha256: `{digest}`" in note
    metaschema = json.loads(METASCHEMA.read_text())
    # Not a trimmed copy: the version rule this file exists for is in it.
    assert "(?<prerelease>" in metaschema["properties"]["version"]["pattern"]


@pytest.mark.parametrize(
    ("pep440", "expected"),
    [
        ("0.1.0", "0.1.0"),
        ("7.3.1", "7.3.1"),
        ("0.1.dev261+g0a7f696c1", "0.1.0-dev.261+g0a7f696c1"),
        ("0.2.1.dev3+g1234abcd.d20261207", "0.2.1-dev.3+g1234abcd.d20261207"),
        ("0.1.dev0+d20261207", "0.1.0-dev.0+d20261207"),
        ("1.0.0rc1", "1.0.0-rc.1"),
        ("1.0.0rc1.dev2+gabc", "1.0.0-rc.1.dev.2+gabc"),
        ("2", "2.0.0"),
        ("1.0.0.post2", "1.0.0+post.2"),
    ],
)
def test_pep440_versions_become_semver(pep440: str, expected: str) -> None:
    assert semver(pep440) == expected
    assert str(python_semver.Version.parse(expected)) == expected
    assert schema_problems({"name": "cloudrun-tasks", "version": expected}) == []


def test_a_development_version_sorts_before_its_release() -> None:
    dev = python_semver.Version.parse(semver("0.2.1.dev3+g1234abcd"))
    assert dev < python_semver.Version.parse(semver("0.2.1"))
    assert dev > python_semver.Version.parse(semver("0.2.0"))


@pytest.mark.parametrize("bad", ["1!2.0.0", "1.2.3.4", "not a version"])
def test_a_version_without_a_semver_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        semver(bad)


def test_the_metaschema_refuses_the_pep440_spelling() -> None:
    """What the provider passed before: Pulumi refuses it, and so does this judge."""
    problems = schema_problems({"name": "cloudrun-tasks", "version": "0.1.dev261+g0a7f696c1"})
    assert [path for path, _ in problems] == ["$.version"]


SCHEMA = """
import json
from pulumi.provider.experimental.component import ComponentProvider
from {package}.provider import COMPONENTS, NAME, version
print(json.dumps(json.loads(ComponentProvider(COMPONENTS, NAME, None, version()).schema)))
"""


def test_the_live_schema_of_this_checkout_is_valid() -> None:
    """The schema as this working tree's provider makes it, with the version a wheel built
    from here gets (setuptools-scm, as the build runs it)."""
    pep440 = setuptools_scm.get_version(root=str(ROOT))
    script = SCHEMA.format(package="components").replace("version()", f"semver({pep440!r})")
    script = script.replace("import COMPONENTS, NAME, version", "import COMPONENTS, NAME, semver")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    schema = json.loads(result.stdout)
    assert schema_problems(schema) == []
    assert schema["version"] == semver(pep440)
    assert python_semver.Version.parse(schema["version"])


def _checkout(tmp_path: Path) -> tuple[Path, list[str]]:
    """A clone holding this working tree's package as one commit (so what is tested is
    what is here, committed or not), with no tag."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for tag in subprocess.run(
        [*git, "tag"], check=True, capture_output=True, text=True
    ).stdout.split():
        subprocess.run([*git, "tag", "-d", tag], check=True, capture_output=True)
    subprocess.run(
        ["cp", "-r", *(str(ROOT / p) for p in ("components", "provider", "pyproject.toml")), "."],
        check=True,
        cwd=clone,
    )
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--allow-empty", "-m", "snapshot"], check=True)
    return clone, git


def _installed_schema(clone: Path, tmp_path: Path, label: str) -> dict[str, Any]:
    wheel = build_wheel(clone, tmp_path / f"dist-{label}")
    python = fresh_venv(tmp_path / f"venv-{label}", wheel)
    result = outside(python, "-c", SCHEMA.format(package="cloudrun_tasks"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_installed_schema_is_valid_on_tagged_untagged_and_dirty_checkouts(
    tmp_path: Path,
) -> None:
    clone, git = _checkout(tmp_path)
    head = subprocess.run(
        [*git, "rev-parse", "--short=9", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    untagged = _installed_schema(clone, tmp_path, "untagged")
    # No tag anywhere: setuptools-scm's 0.1.devN+gHASH.
    assert re.fullmatch(rf"0\.1\.0-dev\.\d+\+g{head[:7]}[0-9a-f]*", untagged["version"])

    (clone / "components" / "roles.py").write_text(
        (clone / "components" / "roles.py").read_text() + "\n"
    )
    dirty = _installed_schema(clone, tmp_path, "dirty")
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert re.fullmatch(rf"0\.1\.0-dev\.\d+\+g[0-9a-f]+\.d{today}", dirty["version"])

    subprocess.run([*git, "checkout", "--quiet", "--", "."], check=True)
    subprocess.run([*git, "tag", "-a", "v7.3.1", "-m", "release"], check=True)
    tagged = _installed_schema(clone, tmp_path, "tagged")
    assert tagged["version"] == "7.3.1"

    for schema in (untagged, dirty, tagged):
        assert schema_problems(schema) == [], schema["version"]
        # Everything but the version is this checkout's interface.
        assert {**schema, "version": None} == {**tagged, "version": None}
