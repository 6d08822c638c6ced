"""More server-rendered charts for logged values: horizontal bars, histograms, a confusion-matrix heatmap.

Same rules as `svg.py`: markup only, every label escaped, each bar carrying `data-label` /
`data-value` and a `<title>` tooltip.
"""

from __future__ import annotations

import math
from html import escape
from typing import Optional, Sequence

from tracehouse.collector.ui.svg import PALETTE, _number

_MAX_BARS = 60


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], chart_id: Optional[str] = None,
              groups: Optional[Sequence[str]] = None) -> str:  # fmt: skip
    """Horizontal bars, one per (label, value), in the order given (at most 60, the rest counted)."""
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    head = f'<figure class="chart"{ident} data-title="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
    pairs = enumerate(zip(labels, values, strict=False))
    shown = [(str(name), float(v), str(groups[i]) if groups else "") for i, (name, v) in pairs
             if isinstance(v, (int, float)) and math.isfinite(float(v))][:_MAX_BARS]  # fmt: skip
    if not shown:
        return head + '<p class="empty">no numbers to draw</p></figure>'
    colours = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(g for _, _, g in shown))}
    high = max(abs(v) for _, v, _ in shown) or 1.0
    row, left, width = 18, 160, 640
    height = row * len(shown) + 8
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for index, (label, value, group) in enumerate(shown):
        y = 4 + index * row
        length = abs(value) / high * (width - left - 70)
        name = f"{label} ({group})" if group else label
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(name[:28])}</text>'
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" '
            f'fill="{colours[group]}" data-label="{escape(label)}" data-value="{value:g}">'
            f"<title>{escape(name)}: {_number(value)}</title></rect>"
            f'<text class="tick" x="{left + length + 4:.1f}" y="{y + 12}">{_number(value)}</text>'
        )
    parts.append("</svg>")
    more = len([v for v in values if isinstance(v, (int, float))]) - len(shown)
    note = f'<p class="muted">{more} more not drawn</p>' if more > 0 else ""
    return head + "".join(parts) + note + "</figure>"


def histogram_chart(title: str, bins: Sequence[float], counts: Sequence[float], chart_id: Optional[str] = None) -> str:
    """Vertical bars: `counts[i]` over the range `bins[i]`..`bins[i + 1]`."""
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    head = f'<figure class="chart"{ident} data-title="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
    if not counts or len(bins) != len(counts) + 1:
        return head + '<p class="empty">no histogram</p></figure>'
    width, height, left, bottom = 640, 180, 40, 24
    top_count = max(counts) or 1.0
    bar_w = (width - left - 8) / len(counts)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for index, count in enumerate(counts):
        h = count / top_count * (height - bottom - 8)
        x = left + index * bar_w
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}" data-value="{count:g}"><title>{_number(bins[index])} to '
            f"{_number(bins[index + 1])}: {_number(count)}</title></rect>"
        )
    parts.append(f'<text class="tick" x="{left}" y="{height - 8}">{_number(bins[0])}</text>'
                 f'<text class="tick" x="{width - 8}" y="{height - 8}" text-anchor="end">{_number(bins[-1])}</text>'
                 f'<text class="tick" x="4" y="14">{_number(top_count)}</text></svg>')  # fmt: skip
    return head + "".join(parts) + "</figure>"


def heatmap_table(title: str, rows: Sequence[str], columns: Sequence[str], cells: dict[tuple[str, str], float],
                  chart_id: Optional[str] = None) -> str:  # fmt: skip
    """A confusion matrix: actual classes down, predicted across, each cell shaded by its count."""
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    head = f'<figure class="chart"{ident} data-title="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
    high = max(cells.values(), default=0.0) or 1.0
    out = ['<table class="heatmap"><tr><th>actual \\ predicted</th>']
    out += [f"<th>{escape(c)}</th>" for c in columns] + ["</tr>"]
    for actual in rows:
        out.append(f"<tr><th>{escape(actual)}</th>")
        for predicted in columns:
            value = cells.get((actual, predicted), 0.0)
            shade = int(235 - 150 * value / high)
            where = f'data-actual="{escape(actual)}" data-predicted="{escape(predicted)}"'
            colour = f"rgb({shade},{shade + 10},255)"
            out.append(f'<td class="num" style="background:{colour}" {where}>{_number(value)}</td>')
        out.append("</tr>")
    return head + "".join(out) + "</table></figure>"


__all__ = ["bar_chart", "heatmap_table", "histogram_chart"]
