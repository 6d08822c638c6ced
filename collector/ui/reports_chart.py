"""A report's run-metric chart: one metric of chosen runs (or the runs a filter keeps) overlaid, as a uPlot
chart (`charts.py`), against step, relative time or wall time.

Bounded at any scale: at most MAX_RUNS runs (the newest a filter keeps), and a run that logged more
than MAX_POINTS points of the metric is drawn from the means of equal step buckets (W&B samples too).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.ui import charts, runs_table
from tracehouse.collector.ui.dashboard_charts import utc_label
from tracehouse.collector.ui.reports_blocks import MAX_RUNS
from tracehouse.collector.ui.run_charts import X_AXES

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

MAX_POINTS = 1000  # per run
_STATS = (
    "SELECT count(), min(step), max(step) FROM metrics WHERE project = {p:String} AND run_id IN {ids:Array(String)} "
    "AND key = {k:String}"
)
_POINTS = (
    "SELECT run_id, min(step) AS s, avg(value), toUnixTimestamp64Milli(min(timestamp)) / 1000 FROM metrics FINAL "
    "WHERE project = {p:String} AND run_id IN {ids:Array(String)} AND key = {k:String} AND isFinite(value) "
    "GROUP BY run_id, intDiv(step, {w:UInt64}) ORDER BY run_id, s"
)
_KEYS = (
    "SELECT DISTINCT key FROM metrics WHERE project = {p:String} AND run_id IN {ids:Array(String)} ORDER BY key "
    "LIMIT 40"
)


def chart_runs(store: Store, project: str, settings: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """(the runs drawn as (id, name), the chosen ids not found): the chosen ones, else the newest the filter
    keeps (no filter: the project's newest runs)."""
    if settings["runs"]:
        _, rows = store.query_rows(
            "SELECT run_id, name FROM runs FINAL WHERE project = {p:String} AND run_id IN {ids:Array(String)}",
            {"p": project, "ids": settings["runs"]},
        )
        names = {str(r[0]): str(r[1]) for r in rows}
        found = [(i, names[i]) for i in settings["runs"] if i in names]
        return found, [i for i in settings["runs"] if i not in names]
    sql, params = runs_table.source(store, project, settings["filter"])
    _, rows = store.query_rows(f"SELECT run_id, name FROM ({sql}) ORDER BY created_at DESC LIMIT {MAX_RUNS:d}", params)
    return [(str(r[0]), str(r[1])) for r in rows], []


def _points(store: Store, project: str, ids: list[str], key: str) -> dict[str, list[tuple[float, float, float]]]:
    """Per run: (step, value, epoch seconds), step ascending, at most about MAX_POINTS each."""
    params = {"p": project, "ids": ids, "k": key}
    _, ((count, low, high),) = store.query_rows(_STATS, params)
    width = 1
    if count > MAX_POINTS * len(ids):
        width = max(1, math.ceil((int(high) - int(low) + 1) / MAX_POINTS))
    _, rows = store.query_rows(_POINTS, {**params, "w": width})
    found: dict[str, list[tuple[float, float, float]]] = {}
    for run_id, step, value, seconds in rows:
        found.setdefault(str(run_id), []).append((float(step), float(value), float(seconds)))
    return found


def _x(points: list[tuple[float, float, float]], axis: str) -> list[float]:
    if axis == "step":
        return [p[0] for p in points]
    if axis == "time":
        return [p[2] for p in points]
    first = min(p[2] for p in points)
    return [round(p[2] - first, 6) for p in points]


def run_chart(store: Store, project: str, settings: dict[str, Any], chart_id: str) -> tuple[str, Optional[str]]:
    """(the chart's markup, a note on runs not found or None); ConfigError / NotFoundError for the panel."""
    runs, missing = chart_runs(store, project, settings)
    key, axis = settings["metric"], settings["x"]
    if not runs:
        what = f"no run {', '.join(missing)}" if missing else "no runs match this panel's filter"
        raise NotFoundError(f"{what} in project {project!r}")
    ids = [run_id for run_id, _ in runs]
    if not key:
        raise ConfigError("metric", f"choose a metric; these runs logged {_keys(store, project, ids)}")
    points = _points(store, project, ids, key)
    if not points:
        raise NotFoundError(f"none of these runs logged {key!r}; they logged {_keys(store, project, ids)}")
    xs_of = {run_id: _x(p, axis) for run_id, p in points.items()}
    xs = sorted({x for values in xs_of.values() for x in values})
    where = {x: i for i, x in enumerate(xs)}
    series = []
    for index, (run_id, name) in enumerate(runs):
        values: list[Optional[float]] = [None] * len(xs)
        for x, point in zip(xs_of.get(run_id, []), points.get(run_id, []), strict=True):
            values[where[x]] = charts.finite(point[1])
        label = f"{name} ({run_id})" if name and name != run_id else run_id
        series.append(charts.series_entry(label, values, index))
    title = settings["title"] or key
    spec = charts.spec(chart_id, title, {axis: xs}, {axis: dict(X_AXES[axis])}, series, span_gaps=True)
    markup = charts.figure(spec, utc_label if axis == "time" else None)
    note = f"not found: {', '.join(missing)}" if missing else None
    return markup, note


def _keys(store: Store, project: str, ids: list[str]) -> str:
    _, rows = store.query_rows(_KEYS, {"p": project, "ids": ids})
    return ", ".join(str(r[0]) for r in rows) if rows else "no metrics"


__all__ = ["MAX_POINTS", "chart_runs", "run_chart"]
