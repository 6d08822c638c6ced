"""Server-rendered SVG charts: the line and scatter charts of logged chart values (`value_views`) and a
sweep's parallel coordinates (log axes for log-scaled parameters).

Markup only, so they render without JavaScript. Each point carries `data-x` / `data-y` and a
`<title>` tooltip, each line `data-series`, so the numbers are readable from the page itself. The
metric charts (dashboard, runs, sweeps) are uPlot charts instead: see `charts.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any, Optional, Sequence

from tracehouse.collector.ui import charts

PALETTE = charts.PALETTE  # 20 distinct colours
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 640, 220, 56, 12, 12, 28


@dataclass
class Series:
    """One line: a name and its (x, y) points, x ascending."""

    name: str
    points: list[tuple[float, float]]


def smooth(points: list[tuple[float, float]], weight: float) -> list[tuple[float, float]]:
    """W&B's exponential moving average (debiased), weight in [0, 1)."""
    if weight <= 0:
        return points
    out, last, scale = [], 0.0, 0.0
    for x, y in points:
        last = last * weight + (1 - weight) * y
        scale = scale * weight + (1 - weight)
        out.append((x, last / scale))
    return out


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) >= 1000 else f"{value:.4g}"


def _time(value: float, span: float) -> str:
    moment = datetime.fromtimestamp(value, timezone.utc)
    return moment.strftime("%H:%M:%S" if span < 600 else "%H:%M" if span < 2 * 86400 else "%m-%d %H:%M")


def line_chart(title: str, series: Sequence[Series], x_time: bool = False, y_label: str = "",
               chart_id: Optional[str] = None, points_only: bool = False) -> str:  # fmt: skip
    """An SVG line chart (a scatter plot with `points_only`); an empty one says so."""
    points = [p for s in series for p in s.points if math.isfinite(p[1])]
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    head = f'<figure class="chart"{ident} data-title="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
    if not points:
        return head + '<p class="empty">no data in this range</p></figure>'
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    if y_high == y_low:
        y_high = y_low + 1
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return _TOP + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    parts = [f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">']
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{_number(tick)}</text>'
        )
    for tick in _ticks(x_low, x_high):
        x = sx(tick)
        label = _time(tick, x_high - x_low) if x_time else _number(tick)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{_H - 8}" text-anchor="middle">{label}</text>')
    if y_label:
        parts.append(f'<text class="axis" x="4" y="{_TOP + 8}">{escape(y_label)}</text>')
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        visible = [(x, y) for x, y in line.points if math.isfinite(y)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in visible)
        line_markup = f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
        polyline = "" if points_only else line_markup
        parts.append(f'<g class="series" data-series="{escape(line.name)}">{polyline}')
        for x, y in visible:
            shown = _time(x, 0) if x_time else _number(x)
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.2" fill="{colour}" data-x="{x:g}" '
                f'data-y="{y:g}"><title>{escape(line.name)} @ {shown}: {_number(y)}</title></circle>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{escape(s.name)}</li>'
        for i, s in enumerate(series)
    )
    return head + "".join(parts) + f'<ul class="legend">{legend}</ul></figure>'


def parallel_coordinates(title: str, axes: list[str], rows: list[dict[str, Any]], metric: str, goal: str,
                         log_axes: Sequence[str] = ()) -> str:  # fmt: skip
    """One vertical axis per parameter plus the metric; one line per trial, coloured by its metric. A
    parameter in `log_axes` (a log-scaled sweep distribution) whose values are all positive gets a log axis."""
    head = f'<figure class="chart" id="parallel" data-title="{escape(title)}"><figcaption>{escape(title)}</figcaption>'
    usable = [r for r in rows if r.get(metric) is not None]
    if not usable or not axes:
        return head + '<p class="empty">no finished trial with the metric yet</p></figure>'
    names = [*axes, metric]
    width, height, top, bottom = max(320, 140 * len(names)), 240, 16, 28
    step = (width - 80) / max(1, len(names) - 1)
    scales: list[tuple[str, float, float, list[str]]] = []
    for name in names:
        values = [r.get(name) for r in usable]
        numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) == len(values) and name in log_axes and min(numbers) > 0:
            low, high = math.log10(min(numbers)), math.log10(max(numbers))
            scales.append(("log", low, high if high > low else low + 1, []))
        elif len(numbers) == len(values):
            low, high = min(numbers), max(numbers)
            scales.append(("num", low, high if high > low else low + 1, []))
        else:
            cats = sorted({repr(v) for v in values})
            scales.append(("cat", 0.0, float(max(1, len(cats) - 1)), cats))

    def y_at(fraction: float) -> float:
        return top + (height - top - bottom) * (1 - fraction)

    def position(index: int, value: Any) -> float:
        kind, low, high, cats = scales[index]
        if kind == "cat":
            return y_at(cats.index(repr(value)) / (high - low))
        return y_at(((math.log10(float(value)) if kind == "log" else float(value)) - low) / (high - low))

    metric_values = [float(r[metric]) for r in usable]
    m_low, m_high = min(metric_values), max(metric_values)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    for index, name in enumerate(names):
        x = 40 + index * step
        kind, low, high, cats = scales[index]
        shown = f"{name} (log)" if kind == "log" else name
        parts.append(
            f'<line class="axisline" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}"/>'
            f'<text class="axis" x="{x:.1f}" y="{height - 8}" text-anchor="middle" data-axis="{escape(name)}" '
            f'data-scale="{"log" if kind == "log" else "linear"}">{escape(shown)}</text>'
        )
        ends = (10**low, 10**high) if kind == "log" else (low, high)
        labels = [(c, y_at(i / (high - low))) for i, c in enumerate(cats)] if kind == "cat" else [
            (_number(ends[0]), y_at(0.0)), (_number(ends[1]), y_at(1.0))]  # fmt: skip
        if kind == "log":  # the decades between the ends
            decades = [d for d in range(math.ceil(low), math.floor(high) + 1) if low < d < high]
            labels += [(_number(10.0**d), y_at((d - low) / (high - low))) for d in decades]
        for text, y in labels:
            parts.append(f'<text class="tick" x="{x + 4:.1f}" y="{y + 3:.1f}">{escape(str(text))}</text>')
    for row in usable:
        value = float(row[metric])
        good = (value - m_low) / (m_high - m_low) if m_high > m_low else 1.0
        good = good if goal == "maximize" else 1 - good
        colour = f"hsl({int(good * 120)}, 70%, 45%)"
        path = " ".join(f"{40 + i * step:.1f},{position(i, row.get(n)):.1f}" for i, n in enumerate(names))
        parts.append(
            f'<polyline class="trial" data-run="{escape(str(row.get("run_id", "")))}" data-metric="{value:g}" '
            f'fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"><title>'
            f"{escape(str(row.get('run_id', '')))}: {escape(metric)} = {_number(value)}</title></polyline>"
        )
    return head + "".join(parts) + "</svg></figure>"
