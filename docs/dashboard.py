"""The operations page's dashboard picture: `python -m docs.dashboard` writes docs/dashboard.png.

The picture is drawn from the same `Layout` object whose `to_json()` the program deploys
(components/dashboard.py), for the prod stack's pipelines, so the picture and the JSON
can't drift apart; tests/infra/test_dashboard_picture.py checks the committed PNG is what
this script draws now. Names the cloud generates (queue and service suffixes) are stand-ins.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from components.dashboard import COLUMNS, Chart, Layout, RowInput, Text, dashboard_layout
from components.name_rules import payload_bucket_name
from components.names import schedule_job
from components.observability import PipelineNames
from components.settings import settings_from_config
from plan.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "dashboard.png"
STACK = "prod"
CELL_W, CELL_H, MARGIN = 22, 14, 10


def picture_layout(stack: str = STACK) -> Layout:
    """The stack's dashboard layout, with stand-ins for the generated names."""
    stack_file = read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    settings = settings_from_config(stack_file.config, stack_file.secret_keys, stack=stack)
    rows = [
        RowInput(
            PipelineNames(
                name,
                settings.project,
                p.resolved_location,
                f"{name}-XXXX",
                name,
                f"{name}-dead-letters-XXXX",
                payload_bucket_name(settings.project, stack, name) if p.payloads.enabled else None,
            ),
            p.service.max_instances,
            tuple(schedule_job(name, schedule) for schedule in p.schedules),
        )
        for name, p in settings.pipelines.items()
    ]
    return dashboard_layout(stack, rows)


def render(layout: Layout) -> Image.Image:
    height = max(t.y + t.height for t in layout.tiles)
    size = (COLUMNS * CELL_W + 2 * MARGIN, height * CELL_H + 2 * MARGIN + 24)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((MARGIN, MARGIN), layout.display_name, fill="black", font=font)
    top = MARGIN + 24
    for tile in layout.tiles:
        box = (
            MARGIN + tile.x * CELL_W + 2,
            top + tile.y * CELL_H + 2,
            MARGIN + (tile.x + tile.width) * CELL_W - 2,
            top + (tile.y + tile.height) * CELL_H - 2,
        )
        widget = tile.widget
        fill = "#e8f0fe" if isinstance(widget, Text) else "#f8f9fa"
        draw.rectangle(box, fill=fill, outline="#5f6368")
        draw.text((box[0] + 6, box[1] + 4), widget.title, fill="black", font=font)
        if isinstance(widget, Chart):
            # A stand-in plot line per series, and the threshold as a dashed red line.
            for index, _ in enumerate(widget.series):
                y0 = box[3] - 20 - 14 * index
                points = [
                    (box[0] + 10 + step * (box[2] - box[0] - 20) // 8, y0 - (step * 7 % 5) * 6)
                    for step in range(9)
                ]
                draw.line(points, fill=("#1a73e8", "#e37400")[index % 2], width=2)
            if widget.thresholds:
                y = box[1] + 34
                for x in range(box[0] + 10, box[2] - 10, 12):
                    draw.line([(x, y), (x + 6, y)], fill="#d93025", width=1)
            draw.text((box[0] + 6, box[3] - 16), widget.y_label, fill="#5f6368", font=font)
    return image


def main() -> int:
    render(picture_layout()).save(PICTURE, optimize=True)
    print(f"wrote {PICTURE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
