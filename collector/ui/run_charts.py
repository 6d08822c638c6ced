"""A run's metric charts (and the compare page's overlaid ones) for charts.js, with a chosen x axis.

Each metric can be drawn against `step`, `time` (wall clock, UTC), `relative` (seconds since the
run's first logged point) or the step metric its `define_metric` declared (stored in `run_values`
as `_define_metric/<name or glob>`): with `step_sync` (W&B's default) a step that did not log the
step metric takes its last value before, else that step has no x. Every x column travels in the
chart's spec, so the page switches axes without a reload; `?x=` picks the first one drawn (none:
each chart its own step metric, else step). Metrics declared `hidden` get no chart (W&B hides them).
Smoothing is W&B's debiased EMA over steps; the raw line stays, faint.
"""

from __future__ import annotations

import bisect
import fnmatch
from typing import TYPE_CHECKING, Any, Mapping, Optional

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.ui import charts
from tracehouse.collector.ui.params import number
from tracehouse.collector.ui.svg import smooth

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

X_AXES: dict[str, dict[str, Any]] = {"step": {"label": "step"}, "time": {"label": "wall time (UTC)", "time": True},
                                     "relative": {"label": "relative time (s)"}}  # fmt: skip
_DEFINITIONS = (
    "SELECT key, argMax(value, step) FROM run_values FINAL WHERE project = {p:String} AND run_id = {r:String} "
    "AND startsWith(key, '_define_metric/') GROUP BY key"
)
Points = list[list[float]]  # [step, value, epoch seconds], step ascending


def definitions(store: Store, project: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's define_metric rules by metric name or glob."""
    _, rows = store.query_rows(_DEFINITIONS, {"p": project, "r": run_id})
    rules = {}
    for key, text in rows:
        try:
            rule = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rule, dict):
            rules[str(key).removeprefix("_define_metric/")] = rule
    return rules


def rule_for(key: str, rules: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The rule for `key`: its own, else the first glob that matches it (W&B: "val/*"), else none."""
    if key in rules:
        return rules[key]
    return next((rule for name, rule in sorted(rules.items()) if "*" in name and fnmatch.fnmatchcase(key, name)), {})


def step_metrics(metrics: Mapping[str, Points], rules: Mapping[str, dict[str, Any]]) -> list[str]:
    """The step metrics the run's charts can use (declared by a rule and logged)."""
    used = {str(rule_for(k, rules).get("step_metric") or "") for k in metrics}
    return sorted(m for m in used if m and m in metrics)


def chart_args(params: Any, choices: list[str]) -> tuple[Optional[str], float]:
    """The asked-for x axis (None: each chart its own) and smoothing weight; ConfigError naming a bad one."""
    x = params.get("x") or None
    if x is not None and x not in choices:
        raise ConfigError("x", f"expected one of {', '.join(choices)} (the run's step metrics included), got {x!r}")
    weight = number(params, "smooth") or 0.0
    if not 0 <= weight < 1:
        raise ConfigError("smooth", f"expected a smoothing weight from 0 to 0.99, got {weight}")
    return x, weight


def _synced(points: Points, steps_of: Points, sync: bool) -> list[Optional[float]]:
    """The step metric's value at each point's step (its last value before with `sync`)."""
    steps = [p[0] for p in steps_of]
    out: list[Optional[float]] = []
    for step, _, _ in points:
        at = bisect.bisect_right(steps, step) - 1
        out.append(steps_of[at][1] if at >= 0 and (sync or steps[at] == step) else None)
    return out


def run_charts(metrics: Mapping[str, Points], rules: Mapping[str, dict[str, Any]], x: Optional[str],
               weight: float) -> list[dict[str, Any]]:  # fmt: skip
    """One chart spec per metric the run logged (hidden ones left out)."""
    start = min((p[2] for points in metrics.values() for p in points), default=0.0)
    specs = []
    for key, points in sorted(metrics.items()):
        rule = rule_for(key, rules)
        if rule.get("hidden"):
            continue
        points = sorted(points, key=lambda p: p[0])
        xs: dict[str, list[Any]] = {"step": [p[0] for p in points], "time": [p[2] for p in points],
                                    "relative": [round(p[2] - start, 6) for p in points]}  # fmt: skip
        axes = {name: dict(axis) for name, axis in X_AXES.items()}
        own = rule.get("step_metric")
        if own and own in metrics and own != key:
            sync = rule.get("step_sync", True) is not False
            xs[own] = _synced(points, sorted(metrics[own], key=lambda p: p[0]), sync)
            axes[own] = {"label": str(own)}
        raw = [charts.finite(p[1]) for p in points]
        series = [charts.series_entry(key, [y for _, y in smooth([(p[0], p[1]) for p in points], weight)], 0)]
        if weight > 0:
            series.append(charts.series_entry(f"{key} (raw)", raw, 0, faint=True))
        chosen = x if x in xs else own if own in xs else "step"
        spec = charts.spec(f"metric-{key}", key, xs, axes, series, span_gaps=True)
        specs.append({**spec, "x": chosen})
    return specs


COMPARE_AXES = ("step", "time", "relative")


def _aligned(runs: list[dict[str, Any]], key: str, axis: str, starts: list[float]) -> tuple[list[Any], list[Any]]:
    """(the union of every run's x on `axis`, each run's values aligned with it: None where it has none)."""

    def x_of(point: list[float], index: int) -> Any:
        if axis == "step":
            return int(point[0])
        return point[2] if axis == "time" else round(point[2] - starts[index], 6)

    xs = sorted({x_of(p, i) for i, r in enumerate(runs) for p in r["metrics"].get(key, [])})
    where = {x: i for i, x in enumerate(xs)}
    per_run = []
    for index, run in enumerate(runs):
        values: list[Optional[float]] = [None] * len(xs)
        for p in run["metrics"].get(key, []):
            values[where[x_of(p, index)]] = charts.finite(p[1])
        per_run.append(values)
    return xs, per_run


def compare_charts(runs: list[dict[str, Any]], keys: list[str], x: Optional[str] = None) -> list[dict[str, Any]]:
    """Per metric, one line per run, against step, wall time or time since each run's first point (`x`
    drawn first; the page switches between them): each axis has its own union of the runs' x values,
    so `xs` differ in length and every series carries its values per axis (`by_x`)."""
    starts = [min((p[2] for points in r["metrics"].values() for p in points), default=0.0) for r in runs]
    specs = []
    for key in keys:
        aligned = {axis: _aligned(runs, key, axis, starts) for axis in COMPARE_AXES}
        series = []
        for index, run in enumerate(runs):
            label = f"{run['name']} ({run['run_id']})" if run.get("name") else str(run["run_id"])
            entry = charts.series_entry(label, aligned["step"][1][index], index)
            entry["by_x"] = {axis: aligned[axis][1][index] for axis in COMPARE_AXES}
            series.append(entry)
        xs = {axis: aligned[axis][0] for axis in COMPARE_AXES}
        spec = charts.spec(f"metric-{key}", key, xs, {axis: dict(X_AXES[axis]) for axis in COMPARE_AXES}, series,
                           span_gaps=True)  # fmt: skip
        specs.append({**spec, "x": x or "step"})
    return specs


def figures(specs: list[dict[str, Any]]) -> list[str]:
    """Chart specs as page markup."""
    return [charts.figure(spec) for spec in specs]


__all__ = ["COMPARE_AXES", "X_AXES", "chart_args", "compare_charts", "definitions", "figures", "rule_for", "run_charts",
           "step_metrics"]  # fmt: skip
