"""Accessible inline SVG charts, drawn by hand so the catalog page needs no script, font or stylesheet.

Each chart is a ``<figure>``: an ``<svg role="img">`` with ``<title>`` and ``<desc>``, axis labels, and the same
numbers as a ``<table>`` for screen readers and for copying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Geometry in SVG user units; the SVG scales to the page width through its viewBox.
WIDTH = 720
BAR_HEIGHT = 18
BAR_GAP = 6
LABEL_WIDTH = 230
MARGIN = 40
COLUMN_CHART_HEIGHT = 260
BAR_COLOUR = "#1f5f8b"
AXIS_COLOUR = "#333"
TICKS = 4


@dataclass(frozen=True, slots=True)
class Series:
    """What one chart shows.

    Attributes:
        chart_id: id of the figure (also the anchor the page links to).
        title: the chart's title.
        description: one sentence saying what it shows, for screen readers.
        category_label: what the categories are (axis label and table header).
        value_label: what the values are (axis label and table header).
        labels: category names, in display order.
        values: one value per label.
        fmt: formats a value for labels and the table.
        note: shown under the chart, e.g. when only part of the data is drawn.
        listed: how many of the first values the data table lists (None: all of them).
    """

    chart_id: str
    title: str
    description: str
    category_label: str
    value_label: str
    labels: Sequence[str]
    values: Sequence[float]
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}"
    note: str = ""
    listed: int | None = None


def _ticks(maximum: float, whole: bool) -> list[float]:
    """Round tick values from 0 past ``maximum``: steps of 1, 2 or 5 times a power of ten, at least 1 when the
    values are ``whole`` numbers (counts), so tick labels never repeat after rounding."""
    if maximum <= 0:
        return [float(i) for i in range(TICKS + 1)]
    raw = maximum / TICKS
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0) if whole else step
    count = math.ceil(maximum / step - 1e-9)
    return [round(step * i, 12) for i in range(count + 1)]


def _table(series: Series) -> str:
    rows = "".join(f"<tr><th scope=\"row\">{escape(label)}</th><td>{escape(series.fmt(value))}</td></tr>"
                   for label, value in zip(series.labels[:series.listed], series.values[:series.listed]))
    return (f"<details><summary>{escape(series.title)}: data table</summary>"
            f"<table><caption>{escape(series.title)}</caption><thead><tr><th scope=\"col\">"
            f"{escape(series.category_label)}</th><th scope=\"col\">{escape(series.value_label)}</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>")


def _svg_open(series: Series, height: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" aria-labelledby="{series.chart_id}-title {series.chart_id}-desc" '
            f'font-family="sans-serif" font-size="12">'
            f'<title id="{series.chart_id}-title">{escape(series.title)}</title>'
            f'<desc id="{series.chart_id}-desc">{escape(series.description)}</desc>')


def _figure(series: Series, svg: str) -> str:
    note = f"<p class=\"note\">{escape(series.note)}</p>" if series.note else ""
    empty = "" if series.labels else "<p class=\"note\">No data in this release.</p>"
    return (f'<figure id="{series.chart_id}"><figcaption><h3>{escape(series.title)}</h3></figcaption>'
            f"{svg}{note}{empty}{_table(series)}</figure>")


def bar_chart(series: Series, max_bars: int = 40) -> str:
    """A horizontal bar chart (categories down the left, values along the bottom)."""
    labels, values = list(series.labels[:max_bars]), list(series.values[:max_bars])
    plot_left, plot_width = LABEL_WIDTH, WIDTH - LABEL_WIDTH - MARGIN
    height = MARGIN * 2 + max(len(labels), 1) * (BAR_HEIGHT + BAR_GAP)
    top = max(values, default=0.0)
    ticks = _ticks(top, all(float(v).is_integer() for v in series.values))
    scale = plot_width / (ticks[-1] or 1.0)
    parts = [_svg_open(series, height)]
    bottom = height - MARGIN
    for tick in ticks:
        x = plot_left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{MARGIN - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{escape(series.fmt(tick))}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        y = MARGIN + i * (BAR_HEIGHT + BAR_GAP)
        width = max(value * scale, 0.0)
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{plot_left - 6}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{plot_left}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{BAR_COLOUR}">'
            f"<title>{escape(label)}: {escape(series.fmt(value))}</title></rect>"
            f'<text x="{plot_left + width + 4:.1f}" y="{y + BAR_HEIGHT - 5}">{escape(series.fmt(value))}</text>')
    parts.append(
        f'<line x1="{plot_left}" y1="{MARGIN - 6}" x2="{plot_left}" y2="{bottom}" stroke="{AXIS_COLOUR}"/>'
        f'<line x1="{plot_left}" y1="{bottom}" x2="{plot_left + plot_width}" y2="{bottom}" stroke="{AXIS_COLOUR}"/>'
        f'<text class="axis-label" x="{plot_left + plot_width / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(series.value_label)}</text>"
        f'<text class="axis-label" x="12" y="{MARGIN - 14}">{escape(series.category_label)}</text></svg>')
    return _figure(series, "".join(parts))


def column_chart(series: Series) -> str:
    """A vertical column chart for a sequence in time (buckets along the bottom, values up the side)."""
    height = COLUMN_CHART_HEIGHT
    plot_left, plot_right = MARGIN + 30, WIDTH - MARGIN
    plot_top, plot_bottom = MARGIN, height - MARGIN - 10
    n = max(len(series.values), 1)
    step = (plot_right - plot_left) / n
    top = max(series.values, default=0.0)
    ticks = _ticks(top, all(float(v).is_integer() for v in series.values))
    scale = (plot_bottom - plot_top) / (ticks[-1] or 1.0)
    parts = [_svg_open(series, height)]
    for tick in ticks:
        y = plot_bottom - tick * scale
        parts.append(f'<line x1="{plot_left}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(series.fmt(tick))}</text>')
    # Label at most ~12 buckets so the text does not overlap.
    every = max(1, n // 12)
    for i, (label, value) in enumerate(zip(series.labels, series.values)):
        x = plot_left + i * step
        h = max(value * scale, 0.0)
        parts.append(f'<rect x="{x + step * 0.1:.1f}" y="{plot_bottom - h:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{h:.1f}" fill="{BAR_COLOUR}"><title>{escape(label)}: '
                     f"{escape(series.fmt(value))}</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{plot_bottom + 14}" text-anchor="middle">'
                         f"{escape(label[-5:] if len(label) > 10 else label)}</text>")
    parts.append(
        f'<line x1="{plot_left}" y1="{plot_top}" x2="{plot_left}" y2="{plot_bottom}" stroke="{AXIS_COLOUR}"/>'
        f'<line x1="{plot_left}" y1="{plot_bottom}" x2="{plot_right}" y2="{plot_bottom}" stroke="{AXIS_COLOUR}"/>'
        f'<text class="axis-label" x="{(plot_left + plot_right) / 2:.1f}" y="{plot_bottom + 34}" text-anchor="middle">'
        f"{escape(series.category_label)}</text>"
        f'<text class="axis-label" transform="rotate(-90)" x="{-(plot_top + plot_bottom) / 2:.1f}" y="14" '
        f'text-anchor="middle">{escape(series.value_label)}</text></svg>')
    return _figure(series, "".join(parts))
