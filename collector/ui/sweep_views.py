"""What the sweep pages add to a sweep's status: run names, log-scaled parameters, parameter importance.

- Names: each trial's run name (its id when the run has none).
- Log axes: a parameter whose distribution is log-scaled (log_uniform, log_uniform_values,
  q_log_uniform, inv_log_uniform, log_normal, ... : `LOG_DISTRIBUTIONS`) is drawn on a log axis, and
  its correlations use log10 of its values.
- Importance, per parameter (a categorical one as one 0/1 column per value, "opt=adam", as W&B
  does): `correlation`, Pearson's r of the parameter with the metric; `importance`, the absolute
  Spearman rank correlation, scaled so the parameters' importances sum to 1. W&B fits a random
  forest for its importance; this is a rank statistic instead: deterministic, and fair to
  monotonic but non-linear effects. Trials without the metric are left out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Sequence

from tracehouse._errors import ConfigError
from tracehouse.collector.sweeps.config import parse_config
from tracehouse.collector.ui import charts

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

LOG_DISTRIBUTIONS = frozenset({"log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values",
                               "inv_log_uniform", "inv_log_uniform_values", "log_normal", "q_log_normal"})  # fmt: skip
IMPORTANCE_METHOD = (
    "importance: |Spearman rank correlation| with the metric, scaled to sum to 1 (not W&B's random forest); "
    "correlation: Pearson's r (of log10 of the value for log-scaled parameters)"
)
_NAMES = ("SELECT run_id, argMax(name, version) FROM runs WHERE project = {p:String} "
          "AND has({ids:Array(String)}, run_id) GROUP BY run_id")  # fmt: skip


def log_params(config: Any) -> list[str]:
    """The parameters whose sweep distribution is log-scaled."""
    try:
        parsed = parse_config(config)
    except ConfigError:
        return []
    return sorted(p.name for p in parsed.params if p.distribution in LOG_DISTRIBUTIONS)


def run_names(store: Store, project: str, run_ids: list[str]) -> dict[str, str]:
    """Each run's name, its id when it has none."""
    _, rows = store.query_rows(_NAMES, {"p": project, "ids": run_ids}) if run_ids else ([], [])
    named = {str(r): str(n) for r, n in rows if n}
    return {run_id: named.get(run_id, run_id) for run_id in run_ids}


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Pearson's r; None with fewer than two points or a constant side."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation (Pearson's r of the average ranks)."""
    return pearson(_ranks(xs), _ranks(ys))


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def features(trials: list[dict[str, Any]], names: list[str], logged: list[str]) -> list[tuple[str, list[float]]]:
    """Per parameter, its column over the trials: numbers (log10 for a log-scaled one), or one 0/1
    column per value of a categorical one."""
    out: list[tuple[str, list[float]]] = []
    for name in names:
        values = [t["params"].get(name) for t in trials]
        numbers = [_number(v) for v in values]
        if all(n is not None for n in numbers):
            column = [n for n in numbers if n is not None]
            if name in logged and all(n > 0 for n in column):
                column = [math.log10(n) for n in column]
            out.append((name, column))
            continue
        for category in sorted({repr(v) for v in values}):
            shown = next(v for v in values if repr(v) == category)
            out.append((f"{name}={shown}", [1.0 if repr(v) == category else 0.0 for v in values]))
    return out


def importance(trials: list[dict[str, Any]], names: list[str], logged: list[str]) -> list[dict[str, Any]]:
    """Per parameter column: correlation and importance with the metric (see the module docstring),
    most important first."""
    scored = [t for t in trials if _number(t.get("metric")) is not None]
    metric = [float(t["metric"]) for t in scored]
    rows: list[dict[str, Any]] = []
    for label, column in features(scored, names, logged):
        rank = spearman(column, metric)
        rows.append({"param": label, "correlation": pearson(column, metric), "spearman": rank,
                     "importance": abs(rank or 0.0)})  # fmt: skip
    total = sum(r["importance"] for r in rows)
    for row in rows:
        row["importance"] = row["importance"] / total if total else 0.0
    return sorted(rows, key=lambda r: (-r["importance"], r["param"]))


def extras(store: Store, project: str, status: dict[str, Any]) -> dict[str, Any]:
    """Names for the trials, the log-scaled parameters and the importance table."""
    names = run_names(store, project, [t["run_id"] for t in status["trials"]])
    trials = [{**t, "name": names.get(t["run_id"], t["run_id"])} for t in status["trials"]]
    logged = log_params(status.get("config") or {})
    best = status.get("best")
    return {"trials": trials, "log_params": logged, "importance_method": IMPORTANCE_METHOD,
            "importance": importance(trials, status["param_names"], logged),
            "best": {**best, "name": names.get(best["run_id"], best["run_id"])} if best else None}  # fmt: skip


def sweep_charts(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The metric by trial, and the metric against each numeric parameter (log x where log-scaled)."""
    metric = status.get("metric") or "metric"
    scored = [t for t in status["trials"] if _number(t.get("metric")) is not None]
    line = [charts.series_entry(metric, [float(t["metric"]) for t in scored], 0)]
    trial = {"trial": [t["trial"] for t in scored]}
    by_trial = charts.spec("metric-by-trial", f"{metric} by trial", trial, {"trial": {"label": "trial"}}, line,
                           span_gaps=True)  # fmt: skip
    out = [by_trial]
    for name in status["param_names"]:
        values = [_number(t["params"].get(name)) for t in scored]
        if not scored or any(v is None for v in values):
            continue
        axis = {"label": name, "log": name in status.get("log_params", []) and all(v and v > 0 for v in values)}
        out.append(charts.spec(f"param-{name}", f"{metric} against {name}", {name: values}, {name: axis},
                               line, points_only=True))  # fmt: skip
    return out


__all__ = ["IMPORTANCE_METHOD", "LOG_DISTRIBUTIONS", "extras", "importance", "log_params", "pearson", "run_names",
           "spearman", "sweep_charts"]  # fmt: skip
