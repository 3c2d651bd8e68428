"""The stack's dashboard as typed Python: one row per pipeline, turned into Dashboard JSON.

The layout is built once (`dashboard_layout`) and read twice: `Layout.to_json()` is what
`gcp.monitoring.Dashboard` gets, and `docs/dashboard.py` draws the README's picture from
the same object, so the picture can't drift from what is deployed.

Dashboard JSON: monitoring/api/ref_v3/rest/v1/projects.dashboards (MosaicLayout, Tile,
Widget, XyChart, DataSet, TimeSeriesQuery.prometheusQuery, Threshold, Text). A mosaic
grid is 48 columns wide (MosaicLayout.columns: 1..48); tiles are placed in grid blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import observability as q
from .observability import PipelineNames

COLUMNS = 48
HEADER_HEIGHT = 4
CHART_HEIGHT = 12


@dataclass(frozen=True)
class Series:
    """One PromQL query plotted on a chart."""

    query: str
    legend: str = ""
    """Dashboard legend template, e.g. `${labels.response_code}` (DataSet.legendTemplate)."""
    right_axis: bool = False
    """Plotted against the chart's right axis (DataSet.targetAxis Y2): a second unit."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "timeSeriesQuery": {"prometheusQuery": self.query},
            "plotType": "LINE",
            "targetAxis": "Y2" if self.right_axis else "Y1",
        }
        if self.legend:
            data["legendTemplate"] = self.legend
        return data


@dataclass(frozen=True)
class Chart:
    """An XyChart widget: one or more series, optional threshold lines."""

    title: str
    series: tuple[Series, ...]
    y_label: str = ""
    thresholds: tuple[tuple[float, str], ...] = ()
    """(value, label): a line such as the service's instance ceiling."""
    y2_label: str = ""
    """The right axis' label, for series with `right_axis` (XyChart.y2Axis)."""

    def to_json(self) -> dict[str, Any]:
        chart: dict[str, Any] = {
            "dataSets": [s.to_json() for s in self.series],
            "yAxis": {"label": self.y_label, "scale": "LINEAR"},
        }
        if any(s.right_axis for s in self.series):
            chart["y2Axis"] = {"label": self.y2_label, "scale": "LINEAR"}
        if self.thresholds:
            chart["thresholds"] = [
                {"value": value, "label": label, "color": "RED", "direction": "ABOVE"}
                for value, label in self.thresholds
            ]
        return {"title": self.title, "xyChart": chart}


@dataclass(frozen=True)
class Text:
    """A markdown Text widget: the row's header with links to the queue and service."""

    title: str
    content: str

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "text": {"content": self.content, "format": "MARKDOWN"}}


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    width: int
    height: int
    widget: Chart | Text

    def to_json(self) -> dict[str, Any]:
        return {
            "xPos": self.x,
            "yPos": self.y,
            "width": self.width,
            "height": self.height,
            "widget": self.widget.to_json(),
        }


@dataclass(frozen=True)
class Row:
    """One pipeline's row: a header, then its charts side by side."""

    pipeline: str
    header: Tile
    charts: tuple[Tile, ...]


@dataclass(frozen=True)
class Layout:
    display_name: str
    rows: tuple[Row, ...]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def tiles(self) -> list[Tile]:
        return [tile for row in self.rows for tile in (row.header, *row.charts)]

    def to_json(self) -> dict[str, Any]:
        dashboard: dict[str, Any] = {
            "displayName": self.display_name,
            "mosaicLayout": {"columns": COLUMNS, "tiles": [t.to_json() for t in self.tiles]},
        }
        if self.labels:
            dashboard["labels"] = dict(self.labels)
        return dashboard


@dataclass(frozen=True)
class RowInput:
    """What one pipeline's row needs: its names and its service's instance ceiling."""

    names: PipelineNames
    max_instances: int
    schedule_jobs: tuple[str, ...] = ()
    """The pipeline's Cloud Scheduler job ids: with any, the row has the ticks-per-job chart
    (components/schedule.py's logs-based metric)."""


def _rate(metric: str, selector: str, by: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group}(rate({metric}{{{selector}}}[{q.CHART_WINDOW}]))"


def _quantile(quantile: float, metric: str, selector: str) -> str:
    return (
        f"histogram_quantile({quantile:g}, sum by (le)"
        f"(rate({metric}_bucket{{{selector}}}[{q.CHART_WINDOW}])))"
    )


def payload_chart(project: str, bucket: str) -> Chart:
    """The claim checks waiting in the payload bucket: objects, and bytes on the right
    axis. Google measures both once a day (components/observability.py): the title says
    so, lest a flat line read as "nothing offloaded since this morning"."""
    return Chart(
        "Payload bucket (measured daily)",
        (
            Series(q.stored_objects(project, bucket), "objects"),
            Series(q.stored_bytes(project, bucket), "bytes", right_axis=True),
        ),
        "objects",
        y2_label="bytes",
    )


def pipeline_charts(row: RowInput) -> list[Chart]:
    """The charts of one row, left to right."""
    n = row.names
    qs, ss = n.queue_selector, n.service_selector
    return [
        Chart("Queue depth", (Series(f"sum({q.QUEUE_DEPTH}{{{qs}}})", "tasks"),), "tasks"),
        Chart(
            "Attempts/s by response code",
            (Series(_rate(q.ATTEMPTS, qs, "response_code"), "${labels.response_code}"),),
            "attempts/s",
        ),
        Chart(
            "Attempt delay",
            (
                Series(_quantile(0.5, q.ATTEMPT_DELAYS, qs), "p50"),
                Series(_quantile(0.99, q.ATTEMPT_DELAYS, qs), "p99"),
            ),
            "ms",
        ),
        Chart(
            "Cloud Run requests/s",
            (
                Series(
                    _rate(q.REQUESTS, ss, "response_code_class"), "${labels.response_code_class}"
                ),
            ),
            "requests/s",
        ),
        Chart(
            "Cloud Run latency",
            (
                Series(_quantile(0.5, q.LATENCIES, ss), "p50"),
                Series(_quantile(0.99, q.LATENCIES, ss), "p99"),
            ),
            "ms",
        ),
        Chart(
            "Cloud Run instances",
            (Series(f"sum by (state)({q.INSTANCES}{{{ss}}})", "${labels.state}"),),
            "instances",
            thresholds=((float(row.max_instances), "maxInstances"),),
        ),
        Chart("Dead letters waiting", (Series(q.dead_letters(n), "messages"),), "messages"),
        Chart(
            "Claims lost/min", (Series(q.claims_lost_per_minute(n), "claims lost"),), "claims/min"
        ),
        *([payload_chart(n.project, n.payload_bucket)] if n.payload_bucket else []),
        *(
            [
                Chart(
                    "Schedule ticks/min by job",
                    (
                        Series(
                            q.ticks_per_job_query(
                                n.pipeline, n.project, n.location, list(row.schedule_jobs)
                            ),
                            "${labels.job_id} ${labels.status}",
                        ),
                    ),
                    "ticks/min",
                )
            ]
            if row.schedule_jobs
            else []
        ),
    ]


def chart_widths(count: int) -> list[int]:
    """COUNT widths filling the row: the columns spread as evenly as the grid allows."""
    base, extra = divmod(COLUMNS, count)
    return [base + (index < extra) for index in range(count)]


def dashboard_layout(stack: str, rows: Sequence[RowInput]) -> Layout:
    """One row per pipeline, in the order given (the stack file's)."""
    built = []
    y = 0
    for row in rows:
        n = row.names
        header = Tile(
            0,
            y,
            COLUMNS,
            HEADER_HEIGHT,
            Text(
                f"Pipeline {n.pipeline}",
                f"Queue [{n.queue}]({q.queue_link(n)}) -> service"
                f" [{n.service}]({q.service_link(n)}) in {n.location}; dead letters"
                f" [{n.dead_letter_subscription}]({q.subscription_link(n)})",
            ),
        )
        y += HEADER_HEIGHT
        charts = pipeline_charts(row)
        widths = chart_widths(len(charts))
        tiles = tuple(
            Tile(sum(widths[:index]), y, width, CHART_HEIGHT, chart)
            for index, (chart, width) in enumerate(zip(charts, widths, strict=True))
        )
        y += CHART_HEIGHT
        built.append(Row(n.pipeline, header, tiles))
    return Layout(f"cloudrun-tasks {stack}", tuple(built))
