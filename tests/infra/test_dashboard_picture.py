"""The operations page's dashboard picture is what docs/dashboard.py draws from the layout
the program deploys."""

from __future__ import annotations

import json

from PIL import Image, ImageChops

from docs.dashboard import PICTURE, picture_layout, render
from plan import document, tree
from plan.recorder import Recording


def _tiles(dashboard: dict) -> list[tuple[int, int, int, int, str]]:
    return [
        (t["xPos"], t["yPos"], t["width"], t["height"], t["widget"]["title"])
        for t in dashboard["mosaicLayout"]["tiles"]
    ]


def test_picture_layout_is_the_deployed_layout(stack_recordings: dict[str, Recording]) -> None:
    [deployed] = stack_recordings["prod"].of_type("gcp:monitoring/dashboard:Dashboard")
    assert _tiles(json.loads(deployed.inputs["dashboardJson"])) == _tiles(
        picture_layout().to_json()
    )


def test_committed_picture_is_what_the_script_draws() -> None:
    drawn = render(picture_layout())
    with Image.open(PICTURE) as committed:
        assert committed.size == drawn.size
        difference = ImageChops.difference(committed.convert("RGB"), drawn)
        assert difference.getbbox() is None, "run `python -m docs.dashboard` and commit"


def test_plan_tree_lists_alerts_and_dashboard(stack_recordings: dict[str, Recording]) -> None:
    text = tree.render(document.build(stack_recordings["prod"]))
    for pipeline in ("orders", "reports"):
        for kind in ("backlog", "failing-attempts", "dead-letters", "capacity", "claims-lost"):
            assert f"monitoring.AlertPolicy {pipeline}-{kind}\n" in text
    assert "enabled, severity ERROR, notifies 2 channels" in text
    assert "when more than 60000 tasks waiting for 300s (PromQL, for 300s)" in text
    # Per row: its header and 8 charts (claims lost/min the last).
    assert "2 rows, 18 tiles: Pipeline orders, Pipeline reports" in text
    assert "dashboardUrl:" in text
