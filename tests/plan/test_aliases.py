"""Aliases: a renamed or moved resource is kept by the engine, and `--diff` says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plan import diff, document
from plan.recorder import run_program

ACCOUNT = "gcp:serviceaccount/account:Account"
STACK = "pulumi:pulumi:Stack"

PROGRAM = """
import pulumi, pulumi_gcp as gcp

class Box(pulumi.ComponentResource):
    def __init__(self, name, type_="test:index:Box", opts=None):
        super().__init__(type_, name, None, opts)

def account(name, parent=None, aliases=(), account_id=None, **extra):
    opts = pulumi.ResourceOptions(parent=parent, aliases=list(aliases))
    account_id = account_id or name
    return gcp.serviceaccount.Account(name, project="p", account_id=account_id, opts=opts, **extra)
"""

BEFORE = (
    PROGRAM
    + """
box, carton = Box("box"), Box("carton")
for name in ("worker", "keeper"):
    account(name, box)
account("inside", carton)
account("loner")
account("spare")
"""
)

# Each resource changes place or name; with ALIASED, each says where it was. `inside`
# has no alias: it is kept through its parent's (the engine gives children those).
AFTER = (
    PROGRAM
    + """
ALIASED = {aliased}
box, crate = Box("box"), Box("crate", "test:index:Crate")
carton = Box(
    "carton", "test:index:Carton",
    pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="test:index:Box")] * ALIASED),
)
old_box = pulumi.create_urn("box", "test:index:Box")
account("worker", crate, [pulumi.Alias(parent=old_box)] * ALIASED)
account("holder", box, [pulumi.Alias(name="keeper")] * ALIASED, "keeper", display_name="renamed")
account("inside", carton)
account("loner", crate, [pulumi.Alias(parent=None)] * ALIASED)
# A URN as the engine spells it (full type chain, no stack type), not as the mocks do.
account("spare2", None, ["urn:pulumi:test::aliases::{account}::spare"] * ALIASED, "spare")
account("fresh", aliases=[pulumi.Alias(name="fresh", stack="elsewhere")])
"""
)


def plan(directory: Path, program: str) -> dict[str, Any]:
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text("name: aliases\nruntime: python\n")
    (directory / "__main__.py").write_text(program)
    return document.build(run_program(directory, "test", {}, preview=True))


def after(tmp_path: Path, aliased: bool) -> dict[str, Any]:
    return plan(tmp_path / "after", AFTER.format(aliased=aliased, account=ACCOUNT))


@pytest.fixture
def before(tmp_path: Path) -> dict[str, Any]:
    return plan(tmp_path / "before", BEFORE)


def test_aliases_are_recorded_as_the_keys_they_name(tmp_path: Path) -> None:
    resources = after(tmp_path, aliased=True)["resources"]

    def aliases(key: str) -> list[str]:
        # pulumi-gcp gives Account an alias of its own: the type's former spelling.
        return [a for a in resources[key]["aliases"] if "serviceAccount/" not in a]

    assert aliases(f"test:index:Crate${ACCOUNT}::worker") == [f"test:index:Box${ACCOUNT}::worker"]
    assert aliases(f"test:index:Box${ACCOUNT}::holder") == [f"test:index:Box${ACCOUNT}::keeper"]
    assert aliases(f"test:index:Crate${ACCOUNT}::loner") == [f"{STACK}${ACCOUNT}::loner"]
    assert aliases(f"{STACK}${ACCOUNT}::spare2") == [f"{STACK}${ACCOUNT}::spare"]
    assert aliases(f"{STACK}$test:index:Carton::carton") == [f"{STACK}$test:index:Box::carton"]
    assert aliases(f"{STACK}${ACCOUNT}::fresh") == [], "an alias to another stack matches nothing"


def test_renamed_moved_and_re_typed_resources_are_kept(
    before: dict[str, Any], tmp_path: Path
) -> None:
    changes = diff.compare(before, after(tmp_path, aliased=True))
    assert changes.moved == {
        f"test:index:Box${ACCOUNT}::holder": f"test:index:Box${ACCOUNT}::keeper",
        f"test:index:Crate${ACCOUNT}::worker": f"test:index:Box${ACCOUNT}::worker",
        f"test:index:Crate${ACCOUNT}::loner": f"{STACK}${ACCOUNT}::loner",
        f"{STACK}${ACCOUNT}::spare2": f"{STACK}${ACCOUNT}::spare",
        f"{STACK}$test:index:Carton::carton": f"{STACK}$test:index:Box::carton",
        f"test:index:Carton${ACCOUNT}::inside": f"test:index:Box${ACCOUNT}::inside",
    }
    assert sorted(r.label for r in changes.added) == ["Crate crate", "serviceaccount.Account fresh"]
    assert changes.removed == []
    # Compared across the move: the rename changed the display name, nothing else.
    assert changes.changed == {
        f"test:index:Box${ACCOUNT}::holder": [("displayName", "(absent)", "renamed")]
    }
    text = diff.render(changes, "before", "after")
    assert "!!" not in text
    assert "  > serviceaccount.Account worker: moved from Box box to Crate crate\n" in text
    assert "  > serviceaccount.Account holder: renamed from keeper\n" in text
    assert "  > serviceaccount.Account loner: moved from the stack to Crate crate\n" in text
    assert "  > Carton carton: was a Box\n" in text
    assert "  > serviceaccount.Account inside: moved from Box carton to Carton carton\n" in text
    assert text.endswith("2 added, 0 removed, 6 moved, 1 changed, 0 replaced.\n")


def test_without_aliases_they_are_deleted_and_re_created(
    before: dict[str, Any], tmp_path: Path
) -> None:
    changes = diff.compare(before, after(tmp_path, aliased=False))
    assert changes.moved == {}
    removed = ["carton", "inside", "keeper", "loner", "spare", "worker"]
    assert sorted(r.name for r in changes.removed) == removed
    assert len(changes.added) == len(removed) + 2


def test_a_plan_written_before_aliases_were_recorded_still_compares(
    before: dict[str, Any], tmp_path: Path
) -> None:
    for entry in before["resources"].values():
        del entry["aliases"]
    changes = diff.compare(before, after(tmp_path, aliased=True))
    assert len(changes.moved) == 6


def test_an_old_resource_is_claimed_once_and_the_next_alias_is_tried() -> None:
    base = {"resources": {}, "outputs": {}}
    head = {"resources": {}, "outputs": {}}
    for key in ("T$A::a", "T$A::b"):
        base["resources"][key] = _entry(key, [])
    head["resources"]["T$A::x"] = _entry("T$A::x", ["T$A::a"])
    head["resources"]["T$A::y"] = _entry("T$A::y", ["T$A::a", "T$A::b"])
    assert diff.compare(base, head).moved == {"T$A::x": "T$A::a", "T$A::y": "T$A::b"}


def _entry(key: str, aliases: list[str]) -> dict[str, Any]:
    return {
        "type": "A",
        "name": key.split("::")[1],
        "parent": "",
        "component": False,
        "protect": False,
        "aliases": aliases,
        "dependsOn": [],
        "inputDependencies": {},
        "inputs": {},
    }
