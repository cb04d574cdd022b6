"""Charts drawn on the server as SVG: bars for categories, columns or lines per day.

Every chart carries a <title> and <desc>, writes its values as text next to the marks and tells
series apart by pattern and marker shape as well as colour, so nothing is said by colour alone.
Styling comes from classes (see reports.css): the pages' CSP allows no inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from itertools import count
from typing import Literal

from markupsafe import Markup, escape

_ids = count(1)
# Series 1..4: the CSS gives each a colour, and the pattern/marker below keeps them apart without it.
_PATTERNS = ("solid", "hatch", "dots", "cross")
_MARKERS = ("circle", "square", "triangle", "diamond")


def _number(value: float) -> str:
    """German-style number for labels: whole numbers plain, others with one decimal and a comma."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    return f"{value:.1f}".replace(".", ",")


def count_with_share(total: float) -> Callable[[float], str]:
    """A value formatter for answers and the like: '2 (67 %)', the share of `total`."""

    def shown(value: float) -> str:
        share = round(100 * value / total) if total else 0
        return f"{_number(value)} ({share} %)"

    return shown


def _nice_step(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _open(width: int, height: int, title: str, description: str) -> tuple[str, list[str]]:
    chart_id = f"chart-{next(_ids)}"
    head = [
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    return chart_id, head


def _defs(chart_id: str) -> str:
    return (
        "<defs>"
        f'<pattern id="{chart_id}-hatch" patternUnits="userSpaceOnUse" width="6" height="6">'
        '<rect class="pattern-bg" width="6" height="6"/><path class="pattern-ink" d="M0,6 L6,0"/></pattern>'
        f'<pattern id="{chart_id}-dots" patternUnits="userSpaceOnUse" width="6" height="6">'
        '<rect class="pattern-bg" width="6" height="6"/><circle class="pattern-dot" cx="3" cy="3" r="1.4"/></pattern>'
        f'<pattern id="{chart_id}-cross" patternUnits="userSpaceOnUse" width="6" height="6">'
        '<rect class="pattern-bg" width="6" height="6"/><path class="pattern-ink" d="M0,0 L6,6 M6,0 L0,6"/></pattern>'
        "</defs>"
    )


def _fill(chart_id: str, index: int) -> str:
    pattern = _PATTERNS[index % len(_PATTERNS)]
    return "" if pattern == "solid" else f' fill="url(#{chart_id}-{pattern})"'


def bar_chart(
    *,
    title: str,
    description: str,
    bars: Sequence[tuple[str, float | None]],
    format_value: Callable[[float], str] = _number,
    width: int = 640,
) -> Markup:
    """Horizontal bars, one per category, each with its label on the left and its value at its end.

    A value of None (no data for that category) draws no bar and says "–".
    """
    label_width, value_width, row, gap = 200, 110, 26, 8
    height = max(1, len(bars)) * (row + gap) + gap
    _chart_id, parts = _open(width, height, title, description)
    largest = max((value or 0 for _label, value in bars), default=0)
    scale = (width - label_width - value_width) / (largest or 1)
    for index, (label, value) in enumerate(bars):
        y = gap + index * (row + gap)
        length = max((value or 0) * scale, 1 if value else 0)
        shown = "–" if value is None else format_value(value)
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {escape(shown)}</title>'
            f'<text class="label" x="{label_width - 8}" y="{y + row / 2}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(label)}</text>'
            f'<rect class="series-1" x="{label_width}" y="{y}" width="{length:.1f}" height="{row}"/>'
            f'<text class="value" x="{label_width + length + 6:.1f}" y="{y + row / 2}" '
            f'dominant-baseline="middle">{escape(shown)}</text></g>'
        )
    if not bars:
        parts.append(f'<text class="label" x="{width / 2}" y="{height / 2}" text-anchor="middle">–</text>')
    parts.append("</svg>")
    # Every text from outside went through escape() above.
    return Markup("".join(parts))  # noqa: S704


def daily_chart(
    *,
    title: str,
    description: str,
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[float]]],
    style: Literal["columns", "line"] = "columns",
    day_label: Callable[[date], str] = lambda day: day.strftime("%d.%m."),
    width: int = 760,
    height: int = 300,
) -> Markup:
    """Values per day for one or more series, as grouped columns or as lines with markers.

    The y axis has labelled ticks, the x axis a date label every few days, and the legend names
    each series next to its pattern or marker; every mark's <title> states day, series and value.
    """
    left, right, top, bottom, legend = 56, 12, 12, 40, 26
    plot_w, plot_h = width - left - right, height - top - bottom - legend
    chart_id, parts = _open(width, height, title, description)
    parts.append(_defs(chart_id))
    # Four or fewer round steps, so the axis reads 0, 2, 4, 6 rather than 0, 1,5, 3, 4,5.
    highest = max((value for _name, values in series for value in values), default=0)
    step = _nice_step(highest / 4)
    largest = step * max(1, math.ceil(highest / step))
    y_of = lambda value: top + plot_h - value / largest * plot_h  # noqa: E731
    for tick in range(round(largest / step) + 1):
        value = tick * step
        y = y_of(value)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle">'
            f"{_number(value)}</text>"
        )
    slot = plot_w / max(1, len(days))
    every = max(1, math.ceil(len(days) / 10))
    for index, day in enumerate(days):
        if index % every == 0:
            x = left + slot * (index + 0.5)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{escape(day_label(day))}</text>"
            )
    for number, (name, values) in enumerate(series):
        css = f"series-{number % 4 + 1}"
        if style == "columns":
            column = slot * 0.8 / max(1, len(series))
            for index, value in enumerate(values):
                x = left + slot * index + slot * 0.1 + column * number
                parts.append(
                    f'<rect class="{css}"{_fill(chart_id, number)} x="{x:.1f}" y="{y_of(value):.1f}" '
                    f'width="{max(column - 1, 1):.1f}" height="{top + plot_h - y_of(value):.1f}">'
                    f"<title>{escape(day_label(days[index]))} {escape(name)}: {_number(value)}</title></rect>"
                )
        else:
            points = [(left + slot * (index + 0.5), y_of(value)) for index, value in enumerate(values)]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline class="line {css} dash-{number % 4 + 1}" points="{path}"/>')
            for index, (x, y) in enumerate(points):
                label = f"{escape(day_label(days[index]))} {escape(name)}: {_number(values[index])}"
                parts.append(_marker(number, x, y, css, label))
    legend_y = height - legend / 2
    x = left
    for number, (name, _values) in enumerate(series):
        css = f"series-{number % 4 + 1}"
        if style == "columns":
            swatch = f'x="{x}" y="{legend_y - 6}" width="12" height="12"'
            parts.append(f'<rect class="{css}"{_fill(chart_id, number)} {swatch}/>')
        else:
            parts.append(_marker(number, x + 6, legend_y, css, None))
        parts.append(
            f'<text class="legend" x="{x + 18}" y="{legend_y}" dominant-baseline="middle">{escape(name)}</text>'
        )
        x += 30 + 8 * len(name)
    parts.append("</svg>")
    # Every text from outside went through escape() above.
    return Markup("".join(parts))  # noqa: S704


def _marker(number: int, x: float, y: float, css: str, label: str | None) -> str:
    shape = _MARKERS[number % len(_MARKERS)]
    tip = f"<title>{label}</title>" if label else ""
    if shape == "circle":
        return f'<circle class="marker {css}" cx="{x:.1f}" cy="{y:.1f}" r="4">{tip}</circle>'
    if shape == "square":
        return f'<rect class="marker {css}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{tip}</rect>'
    if shape == "triangle":
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
    else:
        points = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
    return f'<polygon class="marker {css}" points="{points}">{tip}</polygon>'
