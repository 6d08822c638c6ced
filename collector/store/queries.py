"""The questions every reader asks, as SQL over one Store: recent traces, one trace, latency.

The SDK (`th.traces`, ...), the CLI and the collector's REST API all call these, so the same
arguments give the same answers and the same errors. Every value is a bound parameter; the only
identifiers written into SQL come from fixed whitelists.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional, Union

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store.trace_logs import with_logs
from tracehouse.collector.store.usage import COUNTED, counted_sum
from tracehouse.collector.store.windows import TIME_MAX as TIME_MAX  # re-exported: the readers' names
from tracehouse.collector.store.windows import TIME_MIN as TIME_MIN
from tracehouse.collector.store.windows import UNSET as UNSET
from tracehouse.collector.store.windows import Instant as Instant
from tracehouse.collector.store.windows import Since as Since
from tracehouse.collector.store.windows import Unset as Unset
from tracehouse.collector.store.windows import Window as Window
from tracehouse.collector.store.windows import check_time as check_time
from tracehouse.collector.store.windows import resolve as resolve
from tracehouse.collector.store.windows import since_start as since_start
from tracehouse.collector.store.windows import sql_window as sql_window

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.store.store import Store

TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_TRACES = 10_000


def check_project(project: Any) -> str:
    """A project name, or ConfigError."""
    if not isinstance(project, str) or not project or len(project) > 256:
        raise ConfigError("project", f"expected a project name, got {project!r}")
    return project


_PROJECT_TABLES = ("spans", "runs", "artifacts", "sweeps", "scores", "datasets", "reports")


def known_projects(store: Store) -> list[str]:
    """Every project the store holds something of, by name."""
    union = " UNION DISTINCT ".join(f"SELECT DISTINCT project FROM {t}" for t in _PROJECT_TABLES)
    _, rows = store.query_rows(f"SELECT project FROM ({union}) ORDER BY project")
    return [str(r[0]) for r in rows]


def ensure_project(store: Store, project: str) -> None:
    """NotFoundError naming `project` (and the ones there are) unless the store holds something of it.

    Called when an answer came back empty, so a known project with nothing in the window stays an
    empty answer while a misspelt one says so."""
    union = " UNION ALL ".join(f"(SELECT 1 FROM {t} WHERE project = {{p:String}} LIMIT 1)" for t in _PROJECT_TABLES)
    _, rows = store.query_rows(f"SELECT count() FROM ({union})", {"p": project})
    if rows and rows[0][0]:
        return
    known = known_projects(store)
    listed = f"the projects are {', '.join(known[:20])}" if known else "the store holds no projects yet"
    raise NotFoundError(f"no project {project!r} in the store; {listed}")


_TRACES_SQL = """
SELECT trace_id, first_start AS start_time, root_name, duration_ms, spans, status, total_tokens, cost_usd,
       input_preview, output_preview
FROM (
    SELECT
        trace_id,
        min(start_time) AS first_start,
        argMin(name, (parent_span_id != '', start_time)) AS root_name,
        (max(toUnixTimestamp64Nano(end_time)) - min(toUnixTimestamp64Nano(start_time))) / 1e6 AS duration_ms,
        count() AS spans,
        if(countIf(status = 'error') > 0, 'error', 'ok') AS status,
        -- NULL when no span of the trace reported tokens; each call once (collector/store/usage.py)
        sumOrNullIf(total_tokens, {counted}) AS total_tokens,
        sumOrNullIf(cost_usd, {counted}) AS cost_usd,
        argMin(input_preview, (parent_span_id != '', start_time)) AS input_preview,
        argMin(output_preview, (parent_span_id != '', start_time)) AS output_preview
    FROM spans
    WHERE project = {project:String} AND {window} {filters}
    GROUP BY trace_id
)
{having}
ORDER BY {order}
LIMIT {limit:UInt32}
"""


def check_traces_args(limit: Any, status: Any) -> None:
    """ConfigError for a limit that is not a positive integer or a status other than ok / error."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TRACES:
        raise ConfigError("limit", f"expected an integer from 1 to {MAX_TRACES:,}, got {limit!r}")
    if status not in (None, "ok", "error"):
        raise ConfigError("status", f"expected 'ok' or 'error', got {status!r}")


def traces(
    store: Store,
    project: str,
    limit: int = 20,
    since: Union[Since, Unset] = UNSET,
    name: Optional[str] = None,
    status: Optional[str] = None,
    sort: str = "start",
    order: str = "desc",
    error: Union[bool, str, None] = None,
    start: Optional[Instant] = None,
    end: Optional[Instant] = None,
) -> pd.DataFrame:
    """Recent traces, newest first (or by `sort`: start, duration, tokens, cost, score:<name>; `order`):
    root name, duration, span count, status, tokens, cost, previews. `error` True keeps only traces
    with an error span, False only those without (see store/trace_sort.py).

    The window: `since` (default the last 24h) or `start` / `end` (ISO 8601 or epoch milliseconds)."""
    from tracehouse.collector.store import trace_sort

    check_traces_args(limit, status)
    sort, desc = trace_sort.check_sort(sort, order)
    status = trace_sort.status_for(status, trace_sort.error_flag(error))
    if name is not None and not isinstance(name, str):
        raise ConfigError("name", f"expected a span name, got {name!r}")
    window, bounds = sql_window(resolve(since, start, end, default_since="24h"))
    params: dict[str, Any] = {"project": check_project(project), "limit": limit, **bounds}
    params.update(trace_sort.sort_parameters(sort))
    filters = ""
    if name is not None:
        filters += (
            " AND trace_id IN (SELECT trace_id FROM spans WHERE project = {project:String}"
            f" AND {window} AND name = {{name:String}})"
        )
        params["name"] = name
    having = ""
    if status is not None:
        having = "WHERE status = {status:String}"
        params["status"] = status
    sql = _TRACES_SQL.replace("{window}", window).replace("{filters}", filters).replace("{having}", having)
    sql = sql.replace("{counted}", COUNTED).replace("{order}", trace_sort.order_by(sort, desc))
    sql = trace_sort.with_sort(sort, sql)
    frame = store.query_df(sql, params)
    if frame.empty:
        ensure_project(store, project)
    return frame


SPAN_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ms", "status",
    "status_message", "input", "input_size", "output", "output_size", "context", "model", "provider",
    "input_tokens", "output_tokens", "total_tokens", "cost_usd", "time_to_first_token_ms", "attributes",
    "event_names", "run_id", "service_name", "trace_state",
)  # fmt: skip
_LINK_COLUMNS = ("link_trace_ids", "link_span_ids", "link_trace_states", "link_attributes")
_SPAN_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def _with_links(span: dict[str, Any]) -> dict[str, Any]:
    """The span's links (parallel arrays in the store) as a list of {trace_id, span_id, trace_state,
    attributes, linkable}; `linkable` when the ids are well-formed (only those become page links)."""
    trace_ids, span_ids, states, attributes = (span.pop(column) for column in _LINK_COLUMNS)
    span["links"] = [
        {"trace_id": t, "span_id": s, "trace_state": state, "attributes": dict(attrs),
         "linkable": bool(TRACE_ID_RE.match(t)) and (not s or bool(_SPAN_ID_RE.match(s)))}
        for t, s, state, attrs in zip(trace_ids, span_ids, states, attributes, strict=False)
    ]  # fmt: skip
    return span


def trace_tree(store: Store, project: str, trace_id: str) -> dict[str, Any]:
    """The spans of one trace as a nested dict: each span's fields plus `children`, in start order.

    A trace whose root span is missing (still running, or from another service) has a synthetic
    root named "(trace)" holding the spans whose parent is not in the store.
    """
    if not isinstance(trace_id, str) or not TRACE_ID_RE.match(trace_id):
        raise ConfigError("trace_id", f"expected 32 lowercase hex digits, got {trace_id!r}")
    params = {"project": check_project(project), "trace_id": trace_id}
    _, bounds = store.query_rows(
        "SELECT toUnixTimestamp64Nano(min(start_time)), toUnixTimestamp64Nano(max(end_time)), count() "
        "FROM trace_times WHERE project = {project:String} AND trace_id = {trace_id:String}",
        params,
    )
    if not bounds or not bounds[0][2]:
        raise NotFoundError(f"no trace {trace_id} in project {project!r}")
    columns, rows = store.query_rows(  # bounds in nanoseconds: Python datetimes would round them to µs
        f"SELECT {', '.join(SPAN_FIELDS + _LINK_COLUMNS)} FROM spans "
        "WHERE project = {project:String} AND trace_id = {trace_id:String} "
        "AND start_time BETWEEN fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
        "AND fromUnixTimestamp64Nano({hi:Int64}, 'UTC') "
        "ORDER BY start_time",
        {**params, "lo": bounds[0][0], "hi": bounds[0][1]},
    )
    spans = [_with_links(dict(zip(columns, row, strict=True))) for row in rows]
    return build_tree(with_logs(store, params["project"], trace_id, bounds[0][0], bounds[0][1], spans))


def build_tree(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Nest span dicts (with span_id / parent_span_id) by parent; return the root."""
    by_id = {s["span_id"]: {**s, "children": []} for s in spans}
    roots: list[dict[str, Any]] = []
    for node in by_id.values():
        parent = by_id.get(node["parent_span_id"])
        (parent["children"] if parent is not None else roots).append(node)
    if len(roots) == 1:
        root: dict[str, Any] = roots[0]
        return root
    return {"name": "(trace)", "span_id": "", "children": roots}


LATENCY_GROUPS = {"name": "name", "model": "model", "kind": "kind", "service": "service_name"}


def latency(
    store: Store,
    project: str,
    by: str = "name",
    since: Union[Since, Unset] = UNSET,
    start: Optional[Instant] = None,
    end: Optional[Instant] = None,
) -> pd.DataFrame:
    """Per group: count, p50/p95/p99 latency (ms), error rate, tokens and cost, slowest p95 first.

    The window: `since` (default the last hour) or `start` / `end` (ISO 8601 or epoch milliseconds)."""
    if by not in LATENCY_GROUPS:
        raise ConfigError("by", f"expected one of {', '.join(LATENCY_GROUPS)}, got {by!r}")
    column = LATENCY_GROUPS[by]
    window, bounds = sql_window(resolve(since, start, end, default_since="1h"))
    sql = f"""
        SELECT
            {column} AS {by},
            count() AS count,
            round(quantiles(0.5, 0.95, 0.99)(duration_ms)[1], 3) AS p50_ms,
            round(quantiles(0.5, 0.95, 0.99)(duration_ms)[2], 3) AS p95_ms,
            round(quantiles(0.5, 0.95, 0.99)(duration_ms)[3], 3) AS p99_ms,
            round(countIf(status = 'error') / count(), 4) AS error_rate,
            -- NULL (unknown), not 0, when no span reported them; each call once (collector/store/usage.py)
            {counted_sum("input_tokens")} AS input_tokens,
            {counted_sum("output_tokens")} AS output_tokens,
            {counted_sum("cost_usd")} AS cost_usd
        FROM spans
        WHERE project = {{project:String}} AND {window}
            {f"AND model != '' AND {COUNTED}" if by == "model" else ""}
        GROUP BY {column}
        ORDER BY p95_ms DESC
    """
    frame = store.query_df(sql, {"project": check_project(project), **bounds})
    if frame.empty:
        ensure_project(store, project)
    return frame
