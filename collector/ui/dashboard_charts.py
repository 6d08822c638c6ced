"""The dashboard's charts: x from the page's window start to its end, one point per time bucket.

Empty buckets are None (drawn as gaps, never bridged). Charts broken down by a group show the
`TOP_GROUPS` busiest groups and one "other" line for the rest, whose p95 is computed over the
rest's calls (not averaged from the groups' p95s). The window and bucket width come from the
page's data (`start`, `end`, `series.bucket_seconds`), however the page chose them.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse.collector.store.queries import LATENCY_GROUPS, check_project
from tracehouse.collector.ui import charts

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

TOP_GROUPS = 10
REST = "other"  # the line of every group but the busiest
_WINDOW = ("project = {p:String} AND start_time >= {start:DateTime64(9, 'UTC')} "
           "AND start_time < {end:DateTime64(9, 'UTC')}")  # fmt: skip
_GROUPED = (
    "SELECT t, in_top, g, count(), quantile(0.95)(duration_ms), sum(ifNull(total_tokens, 0)), "
    "sum(ifNull(cost_usd, 0)) FROM (SELECT "
    "toUnixTimestamp(toStartOfInterval(start_time, toIntervalSecond({b:UInt32}))) AS t, "
    "{column} IN (SELECT {column} FROM spans WHERE {window} GROUP BY {column} ORDER BY count() DESC, {column} "
    "LIMIT {n:UInt32}) AS in_top, if(in_top, {column}, '') AS g, duration_ms, total_tokens, cost_usd FROM spans "
    "WHERE {window}) GROUP BY t, in_top, g ORDER BY t, g"
)


def epoch(text: str) -> float:
    """An ISO time (UTC when naive) as epoch seconds."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def utc_label(seconds: Any) -> str:
    """Epoch seconds as the table shows them (UTC)."""
    return datetime.fromtimestamp(float(seconds), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def buckets(start: float, end: float, width: int) -> list[int]:
    """Every bucket start (epoch seconds, a multiple of `width`) that overlaps [start, end)."""
    first = int(start // width * width)
    return list(range(first, math.ceil(end), width)) or [first]


def grouped(store: Store, project: str, start: float, end: float, width: int, by: str) -> list[tuple[Any, ...]]:
    """(bucket, in top, group, calls, p95 ms, tokens, cost) for the busiest groups and the rest."""
    column = LATENCY_GROUPS[by]  # a fixed column expression, never user text
    sql = _GROUPED.replace("{window}", _WINDOW).replace("{column}", column)
    bounds = {"p": check_project(project), "start": datetime.fromtimestamp(start, timezone.utc),
              "end": datetime.fromtimestamp(end, timezone.utc), "b": width, "n": TOP_GROUPS}  # fmt: skip
    return list(store.query_rows(sql, bounds)[1])


def dashboard_charts(store: Store, project: str, page: dict[str, Any]) -> list[dict[str, Any]]:
    """The six dashboard charts' specs from the page's data (and one grouped query)."""
    start, end, width = epoch(page["start"]), epoch(page["end"]), int(page["series"]["bucket_seconds"])
    grid = buckets(start, end, width)
    where = {t: i for i, t in enumerate(grid)}
    every = {int(p["t"]): p for p in page["all"]["points"]}

    def overall(value: Callable[[dict[str, Any]], Optional[float]]) -> list[Optional[float]]:
        return [value(every[t]) if t in every else None for t in grid]

    by_group: dict[str, dict[str, list[Optional[float]]]] = {}
    order: dict[str, int] = {}
    by = page["by"]
    for t, in_top, group, count, p95, tokens, cost in grouped(store, project, start, end, width, by):
        if int(t) not in where:
            continue
        name = (str(group) or "—") if in_top else REST
        if in_top and name == REST:
            name = f'"{REST}"'  # a group named so, not to be taken for the rest
        lines = by_group.setdefault(name, {f: [None] * len(grid) for f in ("count", "p95_ms", "tokens", "cost_usd")})
        order[name] = order.get(name, 0) + int(count)
        for field, value in (("count", count), ("p95_ms", p95), ("tokens", tokens), ("cost_usd", cost)):
            lines[field][where[int(t)]] = charts.finite(value)
    names = sorted(order, key=lambda n: (n == REST, -order[n], n))  # busiest first, the rest last

    def chart(ident: str, title: str, lines: list[dict[str, Any]], y_label: str = "") -> dict[str, Any]:
        return charts.spec(ident, title, {"time": grid}, {"time": {"label": "time (UTC)", "time": True}}, lines,
                           window=[start, end], y_label=y_label)  # fmt: skip

    def per_group(field: str) -> list[dict[str, Any]]:
        return [charts.series_entry(n, by_group[n][field], i, rest=n == REST) for i, n in enumerate(names)]

    def quantile(name: str) -> Callable[[dict[str, Any]], Optional[float]]:
        return lambda point: charts.finite(point[f"{name}_ms"])

    latency = [charts.series_entry(q, overall(quantile(q)), i) for i, q in enumerate(("p50", "p95", "p99"))]
    errors = overall(lambda p: p["errors"] / p["count"] if p["count"] else None)
    return [
        chart("latency", "Latency (ms)", latency, "ms"),
        chart("p95-by-group", f"p95 by {by} (ms)", per_group("p95_ms"), "ms"),
        chart("calls-chart", "Calls", per_group("count")),
        chart("error-rate-chart", "Error rate", [charts.series_entry("error rate", errors, 1)]),
        chart("tokens-chart", "Tokens", per_group("tokens")),
        chart("cost-chart", "Cost (USD)", per_group("cost_usd"), "USD"),
    ]


def dashboard_figures(store: Store, project: str, page: dict[str, Any]) -> list[str]:
    """The dashboard charts as page markup."""
    return [charts.figure(c, utc_label) for c in dashboard_charts(store, project, page)]


__all__ = ["TOP_GROUPS", "buckets", "dashboard_charts", "dashboard_figures", "epoch"]
