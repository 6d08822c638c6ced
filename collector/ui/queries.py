"""The queries behind the dashboards (and their JSON endpoints): time series, slowest calls, trace lists.

Every query filters by project and a time range first (the spans table is ordered by project and
hour), so pages stay fast on millions of spans. The trace list itself (sorted, paged both ways by a keyset
cursor, never by OFFSET) is ui/trace_list.py, over the filters defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.store.queries import LATENCY_GROUPS, check_project
from tracehouse.collector.store.usage import COUNTED, counted_sum
from tracehouse.collector.store.windows import UNSET, Window, parse_duration, parse_instant, resolve

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

RANGES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
_BUCKETS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 120
KINDS = ("llm", "chat", "embedding", "retriever", "reranker", "tool", "chain", "agent", "function")


@dataclass(frozen=True)
class TimeRange:
    """A window of time and the bucket width its charts use."""

    start: datetime
    end: datetime
    label: str

    @property
    def bucket_seconds(self) -> int:
        span = max(1.0, (self.end - self.start).total_seconds())
        return next((b for b in _BUCKETS if span / b <= MAX_BUCKETS), _BUCKETS[-1])

    def as_dict(self) -> dict[str, Any]:
        """The resolved window as a page's data holds it (ISO times, epoch ms, label, bucket width), so
        charts can span exactly the window chosen."""
        shown = Window(self.start, self.end).as_dict()
        return {k: shown[k] for k in ("start", "end", "start_ms", "end_ms")} | {
            "label": self.label, "bucket_seconds": self.bucket_seconds}  # fmt: skip


def _parse_time(option: str, value: str) -> datetime:
    return parse_instant(option, value)


def time_range(
    label: Optional[str], start: Optional[str] = None, end: Optional[str] = None, since: Optional[str] = None,
    default: str = "1h",
) -> TimeRange:  # fmt: skip
    """The window of a page: `range` (`15m`, `1h`, `24h`, `7d`, any duration such as `2h`, or
    `custom`) or its synonym `since`, back from now; or `start` (and `end`, default now) as ISO 8601
    times or epoch milliseconds. ConfigError naming the parameter for a bad or conflicting one."""
    now = datetime.now(timezone.utc)
    if label and since:
        raise ConfigError("since", f"give either range or since, not both (got range={label!r}, since={since!r})")
    if label and label != "custom" and label not in RANGES and parse_duration("range", label) is None:
        raise ConfigError("range", f"expected one of {', '.join(RANGES)}, custom or a duration such as 2h, "
                                   f"got {label!r}")  # fmt: skip
    if label and label != "custom" and (start or end):
        raise ConfigError("range", f"{label} is a range back from now; choose custom to use start and end "
                                   "(or clear them)")  # fmt: skip
    if label == "custom" and not start:
        raise ConfigError("start", "a custom range needs a start time")
    relative = since or (label if label != "custom" else None)
    window = resolve(relative if relative else UNSET, start, end, default_since=default, now=now)
    shown = "custom" if start else relative or default
    return TimeRange(window.start, window.end or now, shown)


def bounds(project: str, window: TimeRange) -> dict[str, Any]:
    """The parameters `WINDOW` binds: the checked project and the window's start and end."""
    return {"project": check_project(project), "start": window.start, "end": window.end}


# a page's window over `spans` (its parameters: `bounds`); the table is ordered by project and hour
WINDOW = "project = {project:String} AND start_time >= {start:DateTime64(9, 'UTC')} " \
    "AND start_time < {end:DateTime64(9, 'UTC')}"  # fmt: skip


def overview(store: Store, project: str, window: TimeRange) -> dict[str, Any]:
    """Totals over the window: calls, p50/p95/p99 (ms), error rate, tokens, cost."""
    _, rows = store.query_rows(
        "SELECT count() AS count, quantiles(0.5, 0.95, 0.99)(duration_ms) AS q, "
        f"countIf(status = 'error') AS errors, {counted_sum('total_tokens')} AS tokens, {counted_sum('cost_usd')} AS "
        f"cost FROM spans WHERE {WINDOW}",
        bounds(project, window),
    )
    count, quantiles, errors, tokens, cost = rows[0]
    q = [round(float(v), 3) for v in quantiles] if count else [0.0, 0.0, 0.0]
    return {"count": int(count), "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2],
            "error_rate": round(errors / count, 4) if count else 0.0, "tokens": _int_or_none(tokens),
            "cost_usd": _float_or_none(cost)}  # fmt: skip


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _calls_once(by: Optional[str]) -> str:
    """By model, a span with a model whose child reports the call's usage is not a call of its own."""
    return f" AND (model = '' OR {COUNTED})" if by == "model" else ""


def check_group(by: Any) -> str:
    if by not in LATENCY_GROUPS:
        raise ConfigError("by", f"expected one of {', '.join(LATENCY_GROUPS)}, got {by!r}")
    return str(by)


def series(store: Store, project: str, window: TimeRange, by: Optional[str]) -> dict[str, Any]:
    """Per time bucket and group (span name, model, kind or service; None: all calls as one group
    named "all"): calls, p50/p95/p99, errors, tokens, cost."""
    bucket = window.bucket_seconds
    column = LATENCY_GROUPS[check_group(by)] if by is not None else "'all'"
    _, rows = store.query_rows(
        f"SELECT toUnixTimestamp(toStartOfInterval(start_time, toIntervalSecond({bucket}))) AS t, {column} AS g, "
        "count(), quantiles(0.5, 0.95, 0.99)(duration_ms), countIf(status = 'error'), "
        f"sum(if({COUNTED}, ifNull(total_tokens, 0), 0)), sum(if({COUNTED}, ifNull(cost_usd, 0), 0)) "
        f"FROM spans WHERE {WINDOW}{_calls_once(by)} GROUP BY t, g ORDER BY t, g",
        bounds(project, window),
    )
    points = [
        {
            "t": int(t),
            "group": str(g),
            "count": int(n),
            "p50_ms": round(float(q[0]), 3),
            "p95_ms": round(float(q[1]), 3),
            "p99_ms": round(float(q[2]), 3),
            "errors": int(e),
            "tokens": int(tok),
            "cost_usd": round(float(c), 6),
        }
        for t, g, n, q, e, tok, c in rows
    ]
    return {"bucket_seconds": bucket, "by": by, "points": points}


def groups(store: Store, project: str, window: TimeRange, by: str) -> list[dict[str, Any]]:
    """Per group over the window: calls, p50/p95/p99, error rate, tokens, cost; slowest p95 first."""
    column = LATENCY_GROUPS[check_group(by)]
    _columns, rows = store.query_rows(
        f"SELECT {column} AS group, count() AS count, quantiles(0.5, 0.95, 0.99)(duration_ms) AS q, "
        f"countIf(status = 'error') / count() AS error_rate, {counted_sum('total_tokens')} AS tokens, "
        f"{counted_sum('cost_usd')} AS cost_usd FROM spans WHERE {WINDOW}{_calls_once(by)} "
        "GROUP BY group ORDER BY q[2] DESC "
        "LIMIT 50",
        bounds(project, window),
    )
    return [
        {
            "group": str(g),
            "count": int(n),
            "p50_ms": round(float(q[0]), 3),
            "p95_ms": round(float(q[1]), 3),
            "p99_ms": round(float(q[2]), 3),
            "error_rate": round(float(e), 4),
            "tokens": _int_or_none(t),
            "cost_usd": _float_or_none(c),
        }
        for g, n, q, e, t, c in rows
    ]


# The dashboard's totals, series and group table in one scan instead of four: GROUPING SETS give the per-bucket
# rows and the rows over the whole window, overall and per group, from one read (quantiles exact over each set's
# rows). `grouping(t, g)` says which set a row is of: 0 (t, g), 1 (t), 2 (g), 3 ().
_SETS = (
    "SELECT toUnixTimestamp(toStartOfInterval(start_time, toIntervalSecond({bucket:UInt32}))) AS t, {column} AS g, "
    "grouping(t, g), count(), quantiles(0.5, 0.95, 0.99)(duration_ms), countIf(status = 'error'), "
    f"sum(if({COUNTED}, ifNull(total_tokens, 0), 0)), sum(if({COUNTED}, ifNull(cost_usd, 0), 0)), "
    f"{counted_sum('total_tokens')}, {counted_sum('cost_usd')} "
    "FROM spans WHERE {window} GROUP BY GROUPING SETS ((t, g), (t), (g), ()) ORDER BY t, g"
)
_BY_GROUP, _OVERALL, _GROUP_TOTALS, _TOTALS = 0, 1, 2, 3


def _point(t: Any, g: Any, n: Any, q: Any, e: Any, tok: Any, c: Any) -> dict[str, Any]:
    return {"t": int(t), "group": str(g), "count": int(n), "p50_ms": round(float(q[0]), 3),
            "p95_ms": round(float(q[1]), 3), "p99_ms": round(float(q[2]), 3), "errors": int(e), "tokens": int(tok),
            "cost_usd": round(float(c), 6)}  # fmt: skip


def _summary(n: Any, q: Any, e: Any, tokens: Any, cost: Any) -> dict[str, Any]:
    quantiles = [round(float(v), 3) for v in q] if n else [0.0, 0.0, 0.0]
    return {"count": int(n), "p50_ms": quantiles[0], "p95_ms": quantiles[1], "p99_ms": quantiles[2],
            "error_rate": round(e / n, 4) if n else 0.0, "tokens": _int_or_none(tokens),
            "cost_usd": _float_or_none(cost)}  # fmt: skip


@dataclass
class DashboardSets:
    """What the dashboard shows of a window: `overview`, `series(None)`, `series(by)` and `groups(by)`."""

    overview: dict[str, Any]
    every: dict[str, Any]
    series: dict[str, Any]
    groups: list[dict[str, Any]]


def dashboard_sets(store: Store, project: str, window: TimeRange, by: str) -> DashboardSets:
    """The dashboard's totals, overall series, per-group series and group table from one scan."""
    column = LATENCY_GROUPS[check_group(by)]
    if by == "model":  # a span not counted as a call by model falls in a NULL group, dropped below
        column = f"if(model = '' OR {COUNTED}, {column}, NULL)"
    sql = _SETS.replace("{column}", column).replace("{window}", WINDOW)
    rows = store.query_rows(sql, {**bounds(project, window), "bucket": window.bucket_seconds})[1]
    totals = _summary(0, None, 0, None, None)
    every: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for t, g, which, n, q, e, tok, c, tokens, cost in rows:
        if which == _TOTALS:
            totals = _summary(n, q, e, tokens, cost)
        elif which == _OVERALL:
            every.append(_point(t, "all", n, q, e, tok, c))
        elif g is None:
            continue
        elif which == _BY_GROUP:
            points.append(_point(t, g, n, q, e, tok, c))
        else:
            table.append({"group": str(g), **_summary(n, q, e, tokens, cost)})
    table.sort(key=lambda row: -row["p95_ms"])
    for row in table:
        row["error_rate"] = round(row["error_rate"], 4)
    bucket = window.bucket_seconds
    return DashboardSets(totals, {"bucket_seconds": bucket, "by": None, "points": every},
                         {"bucket_seconds": bucket, "by": by, "points": points}, table[:50])  # fmt: skip


def slowest(store: Store, project: str, window: TimeRange, limit: int = 10) -> list[dict[str, Any]]:
    """The slowest calls in the window, with their trace ids."""
    columns, rows = store.query_rows(
        "SELECT trace_id, span_id, name, kind, model, duration_ms, status, start_time FROM spans "
        f"WHERE {WINDOW} ORDER BY duration_ms DESC LIMIT {{limit:UInt32}}",
        {**bounds(project, window), "limit": limit},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


@dataclass
class TraceFilters:
    """What the traces page filters on; all optional."""

    name: Optional[str] = None
    kind: Optional[str] = None
    model: Optional[str] = None
    status: Optional[str] = None
    min_ms: Optional[float] = None
    max_ms: Optional[float] = None
    text: Optional[str] = None
    run_id: Optional[str] = None

    def check(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError("kind", f"expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.status is not None and self.status not in ("ok", "error"):
            raise ConfigError("status", f"expected ok or error, got {self.status!r}")
        for option in ("min_ms", "max_ms"):
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ConfigError(option, f"expected a non-negative number of milliseconds, got {value!r}")
        if self.min_ms is not None and self.max_ms is not None and self.min_ms > self.max_ms:
            raise ConfigError("max_ms", f"the maximum ({self.max_ms}) is below the minimum ({self.min_ms})")
