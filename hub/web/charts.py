"""Horizontal bar charts drawn on the server as SVG, readable without colour and with a screen reader.

Every bar carries its label and its number as text, and the chart has a <title> and <desc>;
pages still put a data table beside it, for those who prefer one.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

LABEL_WIDTH = 220
BAR_WIDTH = 360
VALUE_WIDTH = 120
ROW_HEIGHT = 32
BAR_HEIGHT = 20


def bar_chart(bars: Sequence[tuple[str, int]], *, title: str, description: str, chart_id: str) -> Markup:
    """An SVG with one labelled bar per (label, value), scaled to the largest value, percentages beside it."""
    total = sum(value for _, value in bars)
    largest = max((value for _, value in bars), default=0)
    height = ROW_HEIGHT * max(len(bars), 1) + 8
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for row, (label, value) in enumerate(bars):
        top = 4 + row * ROW_HEIGHT
        middle = top + BAR_HEIGHT / 2 + 5
        length = round(BAR_WIDTH * value / largest) if largest else 0
        share = f"{round(100 * value / total)} %" if total else "0 %"
        parts += [
            f'<text x="{LABEL_WIDTH - 8}" y="{middle}" text-anchor="end">{escape(_clip(label))}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{top}" width="{max(length, 1)}" height="{BAR_HEIGHT}" fill="#0b4f8a"/>',
            f'<text x="{LABEL_WIDTH + max(length, 1) + 6}" y="{middle}">{value} ({share})</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every piece of text above is escaped)


def _clip(label: str, limit: int = 28) -> str:
    """Long answers are shortened in the chart; the table beside it has them in full."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
