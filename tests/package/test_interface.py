"""A change to a component's public inputs or outputs fails until CHANGELOG.md says what a
consumer must change (its "## Unreleased" section names each changed `Owner.member`)."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.package import interface
from tests.package.conftest import ROOT
from tests.package.test_provider import SNAPSHOT, inferred_schema

CHANGELOG = ROOT / "CHANGELOG.md"


def test_every_interface_change_is_announced_in_the_changelog() -> None:
    changed = interface.changes(json.loads(SNAPSHOT.read_text()), inferred_schema())
    missing = interface.unannounced(changed, CHANGELOG.read_text())
    assert missing == [], (
        f"public interface changed without a CHANGELOG.md entry: {missing}; name each as"
        " `Owner.member` under '## Unreleased' with what a consumer must change"
    )


def _schema() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def test_an_unannounced_change_fails() -> None:
    schema = _schema()
    changed_schema = copy.deepcopy(schema)
    pipeline = changed_schema["resources"]["cloudrun-tasks:index:TaskPipeline"]
    pipeline["inputProperties"]["database"]["type"] = "integer"  # a type changed
    del changed_schema["types"]["cloudrun-tasks:index:QueueInputs"]["properties"]["paused"]
    changed_schema["types"]["cloudrun-tasks:index:QueueInputs"]["properties"]["maxBurst"] = {
        "type": "integer"
    }
    changed = interface.changes(schema, changed_schema)
    assert changed == ["QueueInputs.maxBurst", "QueueInputs.paused", "TaskPipeline.database"]
    released = "# Changelog\n\n## Unreleased\n\n## 0.1.0\n- `TaskPipeline.database` added\n"
    assert interface.unannounced(changed, released) == changed
    announced = (
        "# Changelog\n\n## Unreleased\n- `TaskPipeline.database` is now a number\n"
        "- `QueueInputs.paused` removed: use `QueueInputs.maxBurst`\n\n## 0.1.0\n"
    )
    assert interface.unannounced(changed, announced) == []


def test_a_description_or_required_change_counts() -> None:
    schema = _schema()
    changed_schema = copy.deepcopy(schema)
    store = changed_schema["resources"]["cloudrun-tasks:index:IdempotencyStore"]
    store["inputProperties"]["ttl"]["description"] = "something else"
    store["requiredInputs"].append("ttl")
    changed_schema["resources"]["cloudrun-tasks:index:ProjectApis"]["description"] = "new"
    assert interface.changes(schema, changed_schema) == ["IdempotencyStore.ttl", "ProjectApis"]
    assert interface.changes(schema, copy.deepcopy(schema)) == []
