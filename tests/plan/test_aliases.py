"""Aliases: a renamed or moved resource is kept by the engine, and `--diff` says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plan import diff, document
from plan.recorder import run_program

ACCOUNT = "gcp:serviceaccount/account:Account"

BEFORE = """
import pulumi, pulumi_gcp as gcp

class Box(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("test:index:Box", name)

box = Box("box")
for name in ("worker", "keeper"):
    gcp.serviceaccount.Account(
        name, project="p", account_id=f"{name}-sa", opts=pulumi.ResourceOptions(parent=box)
    )
"""

# worker moves into a new component, keeper is renamed holder, fresh is new.
AFTER = """
import pulumi, pulumi_gcp as gcp

ALIASED = {aliased}

class Box(pulumi.ComponentResource):
    def __init__(self, name, type_="test:index:Box"):
        super().__init__(type_, name)

box, crate = Box("box"), Box("crate", "test:index:Crate")
old_box = pulumi.create_urn("box", "test:index:Box")
gcp.serviceaccount.Account(
    "worker", project="p", account_id="worker-sa",
    opts=pulumi.ResourceOptions(parent=crate, aliases=[pulumi.Alias(parent=old_box)] * ALIASED),
)
gcp.serviceaccount.Account(
    "holder", project="p", account_id="keeper-sa", display_name="renamed",
    opts=pulumi.ResourceOptions(parent=box, aliases=[pulumi.Alias(name="keeper")] * ALIASED),
)
gcp.serviceaccount.Account("fresh", project="p", account_id="fresh-sa")
"""


def plan(directory: Path, program: str) -> dict[str, Any]:
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text("name: aliases\nruntime: python\n")
    (directory / "__main__.py").write_text(program)
    return document.build(run_program(directory, "test", {}, preview=True))


@pytest.fixture
def before(tmp_path: Path) -> dict[str, Any]:
    return plan(tmp_path / "before", BEFORE)


def test_aliases_are_recorded_as_the_keys_they_name(tmp_path: Path) -> None:
    after = plan(tmp_path / "after", AFTER.format(aliased=True))["resources"]
    # pulumi-gcp adds an alias of its own to Account: the type's former spelling.
    assert (
        f"test:index:Box${ACCOUNT}::worker"
        in after[f"test:index:Crate${ACCOUNT}::worker"]["aliases"]
    )
    assert (
        f"test:index:Box${ACCOUNT}::keeper" in after[f"test:index:Box${ACCOUNT}::holder"]["aliases"]
    )


def test_moved_and_renamed_resources_are_kept(before: dict[str, Any], tmp_path: Path) -> None:
    changes = diff.compare(before, plan(tmp_path / "after", AFTER.format(aliased=True)))
    assert changes.moved == {
        f"test:index:Box${ACCOUNT}::holder": f"test:index:Box${ACCOUNT}::keeper",
        f"test:index:Crate${ACCOUNT}::worker": f"test:index:Box${ACCOUNT}::worker",
    }
    assert sorted(r.label for r in changes.added) == ["Crate crate", "serviceaccount.Account fresh"]
    assert changes.removed == []
    # Compared across the move: the rename changed the display name, nothing else.
    assert changes.changed == {
        f"test:index:Box${ACCOUNT}::holder": [("displayName", "(absent)", "renamed")]
    }
    text = diff.render(changes, "before", "after")
    assert "  > serviceaccount.Account worker: moved from Box box to Crate crate\n" in text
    assert "  > serviceaccount.Account holder: renamed from keeper\n" in text
    assert text.endswith("2 added, 0 removed, 2 moved, 1 changed, 0 replaced.\n")


def test_without_aliases_they_are_deleted_and_re_created(
    before: dict[str, Any], tmp_path: Path
) -> None:
    changes = diff.compare(before, plan(tmp_path / "after", AFTER.format(aliased=False)))
    assert changes.moved == {}
    assert sorted(r.name for r in changes.removed) == ["keeper", "worker"]
    assert sorted(r.name for r in changes.added) == ["crate", "fresh", "holder", "worker"]


def test_a_plan_written_before_aliases_were_recorded_still_compares(
    before: dict[str, Any], tmp_path: Path
) -> None:
    for entry in before["resources"].values():
        del entry["aliases"]
    changes = diff.compare(before, plan(tmp_path / "after", AFTER.format(aliased=True)))
    assert len(changes.moved) == 2
