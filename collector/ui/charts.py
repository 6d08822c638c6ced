"""Interactive charts: the data a page hands to `static/charts.js` (uPlot), and a table of the same values.

A chart is a `<figure class="chart uplot-chart">` holding its spec as JSON in a
`<script type="application/json">` block (never executed, so the pages' CSP needs no inline
script; `<`, `>` and `&` are escaped so no value can close the block) and a `<details>` table of
the values, which is the chart for a browser without JavaScript. The spec:

- `xs`: one or more x columns by name (`time`, `step`, ...), all aligned with each series' values
  (or, where the columns differ in length, with the series' `by_x[name]`);
  `x`: the one drawn first; `x_axes`: per x column its label and whether it is time or log-scaled;
- `window`: [start, end] in epoch seconds, the x range a time chart spans whatever the data;
- `series`: name, colour (`PALETTE`, no colour repeats within a chart before the 20th), values
  (None where a bucket is empty: a gap, not bridged unless `span_gaps`);
- `log`: draw the y axis log-scaled first (`log_default`: when max/min > 1000); `log_ok`: the data
  has positive values, so the page offers the toggle.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Optional, Sequence

import orjson

# 20 distinct colours (Sasha Trubetskoy's list, the pale ones last); "other" is a grey not among them.
PALETTE = ("#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#808000", "#469990",
           "#9a6324", "#000075", "#800000", "#bfef45", "#b8860b", "#ffe119", "#dcbeff", "#fabed4", "#aaffc3",
           "#ffd8b1", "#000000")  # fmt: skip
OTHER_COLOUR = "#6b7280"
LOG_SPREAD = 1000.0  # y axes start log-scaled when the largest positive value is this many times the smallest
TABLE_ROWS = 500


def colour(index: int) -> str:
    """The `index`-th series' colour."""
    return PALETTE[index % len(PALETTE)]


def finite(value: Any) -> Optional[float]:
    """A finite number as float, None for anything else (a gap)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def log_default(series: Sequence[dict[str, Any]]) -> tuple[bool, bool]:
    """(draw log-scaled first, offer the log toggle): the spread of the positive values."""
    positive = [v for s in series for v in s["values"] if v is not None and v > 0]
    if not positive:
        return False, False
    return max(positive) / min(positive) > LOG_SPREAD, True


def spec(chart_id: str, title: str, xs: dict[str, list[Any]], x_axes: dict[str, dict[str, Any]],
         series: list[dict[str, Any]], **options: Any) -> dict[str, Any]:  # fmt: skip
    """A chart's spec (see the module docstring); `options`: window, span_gaps, points_only, y_label, log."""
    wanted = options.pop("log", None)
    log, log_ok = log_default(series)
    if wanted is not None:
        log = bool(wanted) and log_ok
    return {"id": chart_id, "title": title, "x": next(iter(xs)), "xs": xs, "x_axes": x_axes, "series": series,
            "window": None, "span_gaps": False, "points_only": False, "y_label": "", "log": log, "log_ok": log_ok,
            **options}  # fmt: skip


def series_entry(name: str, values: list[Optional[float]], index: int, faint: bool = False,
                 rest: bool = False) -> dict[str, Any]:  # fmt: skip
    """One line of a chart: its name, colour (grey for the `rest` of the groups) and values."""
    return {"name": name, "color": OTHER_COLOUR if rest else colour(index), "values": values, "faint": faint}


def json_script(value: Any) -> str:
    """`value` as JSON safe inside a `<script type="application/json">` block."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure(chart: dict[str, Any], x_format: Any = None) -> str:
    """The chart's markup: the spec for charts.js and its values as a table (the no-script view)."""
    ident, title = escape(chart["id"]), escape(chart["title"])
    head = f'<figure class="chart uplot-chart" id="{ident}" data-title="{title}"><figcaption>{title}</figcaption>'
    if not any(v is not None for s in chart["series"] for v in s["values"]):
        return head + '<p class="empty">no data in this range</p></figure>'
    return (f'{head}<div class="plot" aria-label="{title}"></div>'
            f'<script type="application/json" class="chart-spec">{json_script(chart)}</script>'
            f"{_table(chart, x_format)}</figure>")  # fmt: skip


def _cell(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.6g}"


def _table(chart: dict[str, Any], x_format: Any) -> str:
    x_key = chart["x"]
    xs = chart["xs"][x_key]
    shown = x_format or (lambda v: "" if v is None else f"{v:g}")
    rows = [i for i in range(len(xs)) if any(s["values"][i] is not None for s in chart["series"])]
    head = "".join(f"<th>{escape(s['name'])}</th>" for s in chart["series"])
    body = "".join(
        f"<tr><td>{escape(shown(xs[i]))}</td>"
        + "".join(f'<td class="num">{_cell(s["values"][i])}</td>' for s in chart["series"])
        + "</tr>"
        for i in rows[:TABLE_ROWS]
    )
    more = f'<p class="muted">{len(rows) - TABLE_ROWS} more rows not shown</p>' if len(rows) > TABLE_ROWS else ""
    label = escape(str(chart["x_axes"][x_key].get("label", x_key)))
    return (f'<details class="chart-values"><summary>values</summary><table><tr><th>{label}</th>{head}</tr>'
            f"{body}</table>{more}</details>")  # fmt: skip


__all__ = ["OTHER_COLOUR", "PALETTE", "colour", "figure", "finite", "json_script", "log_default", "series_entry",
           "spec"]  # fmt: skip
