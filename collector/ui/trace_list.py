"""The trace list: sorted by start, duration, tokens, cost or a score (either way), paged both ways by a keyset
cursor on (sort key, trace id), with totals over everything the filters keep.

A cursor is `<sort key>_<trace id>` of a row; `after` asks for the page that follows it in the
chosen order, `before` for the page that precedes it. Neither reads past rows with OFFSET, so a page
deep in a large window costs what the first one does, and a trace is never skipped or repeated
between pages (equal keys are ordered by trace id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.store import trace_sort as ts
from tracehouse.collector.store.queries import TRACE_ID_RE
from tracehouse.collector.store.trace_sort import SORT_KEYS, check_sort, error_flag, sort_key, status_for, usage_sum
from tracehouse.collector.ui import queries as uq

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

MAX_PAGE = 500
DURATION = SORT_KEYS["duration"].aggregate
_ROOT = "(parent_span_id != '', start_time)"  # the root span first, then the earliest
# the page query's aliases differ from the columns they aggregate (ClickHouse would resolve them inside)
_RENAMED = {"started": "start_time", "trace_status": "status", "trace_tokens": "total_tokens", "trace_cost": "cost_usd"}


@dataclass(frozen=True)
class ListOrder:
    """How the list is sorted and which page of it is asked for."""

    sort: str = "start"
    desc: bool = True
    after: Optional[str] = None  # a cursor: the page following it
    before: Optional[str] = None  # a cursor: the page preceding it
    limit: int = 50
    error: Optional[bool] = None  # only traces with an error (True), without (False), all (None)

    @property
    def order(self) -> str:
        return "desc" if self.desc else "asc"


def list_order(params: Any) -> ListOrder:
    """The list's sort, direction, cursor, page size and error filter from the query string."""
    sort, desc = check_sort(params.get("sort"), params.get("order"))
    after, before = params.get("after") or None, params.get("before") or None
    if after and before:
        raise ConfigError("before", "ask for the page after a cursor or the page before one, not both")
    raw = params.get("limit") or "50"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ConfigError("limit", f"expected a page size from 1 to {MAX_PAGE}, got {raw!r}")
    for option, cursor in (("after", after), ("before", before)):
        if cursor is not None:
            parse_cursor(option, cursor, sort)
    return ListOrder(sort, desc, after, before, int(raw), error_flag(params.get("error")))


def parse_cursor(option: str, cursor: str, sort: str) -> tuple[Any, str]:
    """(sort key value, trace id) of a cursor; ConfigError naming the option when it is not one."""
    value, _, trace_id = cursor.rpartition("_")
    try:
        key: Any = int(value) if sort_key(sort).sql_type == "Int64" else float(value)
    except ValueError:
        key = None
    in_range = key is not None and (-(2.0**63) <= key < 2.0**63 if isinstance(key, int) else math.isfinite(key))
    if not in_range or not TRACE_ID_RE.match(trace_id):
        raise ConfigError(option, f"expected a cursor from a {sort}-sorted page (<{sort}>_<trace id>), got {cursor!r}")
    return key, trace_id


def make_cursor(row: dict[str, Any], sort: str) -> str:
    """The cursor of a listed trace (the key as Python writes it: a float's repr reads back exactly)."""
    key = int(row["sort_key"]) if sort_key(sort).sql_type == "Int64" else float(row["sort_key"])
    return f"{key!r}_{row['trace_id']}"


# One pass over the window chooses the page and sums the totals: every kept trace's aggregates, the
# totals over all of them (window functions, before the cursor narrows the rows), then the page.
_CHOSEN_SQL = """
SELECT trace_id, sort_key, n_traces, n_spans, n_tokens, n_cost, n_failed, n_error_spans FROM (
    SELECT trace_id, sort_key, count() OVER () AS n_traces, sum(spans) OVER () AS n_spans,
           sum(tokens) OVER () AS n_tokens, sum(cost) OVER () AS n_cost, countIf(errors > 0) OVER () AS n_failed,
           sum(errors) OVER () AS n_error_spans
    FROM (
        SELECT trace_id, {key} AS sort_key, {duration} AS duration_ms, count() AS spans,
               countIf(status = 'error') AS errors, {tokens} AS tokens, {cost} AS cost
        FROM spans WHERE {window} {kept} GROUP BY trace_id
        HAVING 1 {having}
    )
)
WHERE 1 {cursor}
ORDER BY sort_key {direction}, trace_id {direction}
LIMIT {limit:UInt32}
"""

# The text columns (root name, previews) and span ids (for their scores) of the chosen traces alone.
_ROWS_SQL = """
SELECT trace_id, min(start_time) AS started, argMin(name, {root}) AS root_name, {duration} AS duration_ms,
       count() AS spans, countIf(status = 'error') AS error_spans, if(error_spans > 0, 'error', 'ok') AS trace_status,
       {tokens} AS trace_tokens, {cost} AS trace_cost,
       argMin(input_preview, {root}) AS input_preview, argMin(output_preview, {root}) AS output_preview,
       anyIf(session_id, session_id != '') AS session_id, anyIf(user_id, user_id != '') AS user_id,
       groupArray(span_id) AS span_ids
FROM spans
WHERE {window} AND trace_id IN {ids:Array(String)}
GROUP BY trace_id
"""

_TOTALS_SQL = """
SELECT count() AS n_traces, sum(spans) AS n_spans, sumOrNull(tokens) AS n_tokens, sumOrNull(cost) AS n_cost,
       countIf(errors > 0) AS n_failed, sum(errors) AS n_error_spans
FROM (
    SELECT trace_id, {duration} AS duration_ms, count() AS spans, countIf(status = 'error') AS errors,
           {tokens} AS tokens, {cost} AS cost
    FROM spans WHERE {window} {kept} GROUP BY trace_id
    HAVING 1 {having}
)
"""


def _conditions(filters: uq.TraceFilters, error: Optional[bool]) -> tuple[str, str, dict[str, Any]]:
    """(the span filter keeping traces, the HAVING on trace aggregates, their parameters)."""
    filters.check()
    params: dict[str, Any] = {}
    where = ""
    for option, clause in (("name", "name = {name:String}"), ("kind", "kind = {kind:String}"),
                           ("model", "model = {model:String}"), ("run_id", "run_id = {run_id:String}")):  # fmt: skip
        value = getattr(filters, option)
        if value:
            where += f" AND {clause}"
            params[option] = value
    if filters.text:
        where += " AND (positionCaseInsensitive(input, {text:String}) > 0 OR positionCaseInsensitive(output, " \
            "{text:String}) > 0)"  # fmt: skip
        params["text"] = filters.text
    kept = f"AND trace_id IN (SELECT DISTINCT trace_id FROM spans WHERE {uq.WINDOW}{where})" if where else ""
    having = ""
    status = status_for(filters.status, error)
    if status is not None:
        having += " AND errors > 0" if status == "error" else " AND errors = 0"
    if filters.min_ms is not None:
        having += " AND duration_ms >= {min_ms:Float64}"
        params["min_ms"] = float(filters.min_ms)
    if filters.max_ms is not None:
        having += " AND duration_ms <= {max_ms:Float64}"
        params["max_ms"] = float(filters.max_ms)
    return kept, having, params


def _sql(template: str, kept: str, having: str, **parts: str) -> str:
    sql = template.replace("{window}", uq.WINDOW).replace("{kept}", kept).replace("{having}", having)
    sql = sql.replace("{duration}", DURATION).replace("{root}", _ROOT)
    sql = sql.replace("{tokens}", usage_sum("total_tokens")).replace("{cost}", usage_sum("cost_usd"))
    for name, part in parts.items():
        sql = sql.replace("{" + name + "}", part)
    return sql


def trace_page(
    store: Store, project: str, window: uq.TimeRange, filters: uq.TraceFilters, order: ListOrder
) -> dict[str, Any]:
    """One page of traces in the chosen order, the cursors of the pages after (`next`) and before (`prev`)
    it (None at either end), and the totals of every trace the filters keep."""
    kept, having, params = _conditions(filters, order.error)
    params.update({**uq.bounds(project, window), **ts.sort_parameters(order.sort), "limit": order.limit + 1})
    key = sort_key(order.sort)
    backwards = order.before is not None
    cursor = ""
    if order.after or order.before:
        option, raw = ("before", order.before) if backwards else ("after", order.after)
        params["cursor_key"], params["cursor_id"] = parse_cursor(option, str(raw), order.sort)
        comparison = "<" if order.desc != backwards else ">"
        cursor = f" AND (sort_key, trace_id) {comparison} ({{cursor_key:{key.sql_type}}}, {{cursor_id:String}})"
    direction = "DESC" if order.desc != backwards else "ASC"
    sql = _sql(_CHOSEN_SQL, kept, having, key=key.aggregate, cursor=cursor, direction=direction)
    sql = ts.with_sort(order.sort, sql)
    columns, chosen = store.query_rows(sql, params)
    picked = [dict(zip(columns, row, strict=True)) for row in chosen]
    more = len(picked) > order.limit
    picked = picked[: order.limit]
    if backwards:
        picked.reverse()
    traces = _rows(store, project, window, picked)
    first, last = (make_cursor(traces[0], order.sort), make_cursor(traces[-1], order.sort)) if traces else (None, None)
    if backwards:
        following, preceding = last, (first if more else None)
    else:
        following, preceding = (last if more else None), (first if order.after else None)
    summed = _totals(picked[0]) if picked else totals(store, project, window, filters, order.error)
    return {"traces": traces, "next": following, "prev": preceding, "totals": summed}


def _rows(store: Store, project: str, window: uq.TimeRange, picked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed traces' columns, in the order chosen."""
    if not picked:
        return []
    sql = _sql(_ROWS_SQL, "", "")
    columns, rows = store.query_rows(sql, {**uq.bounds(project, window), "ids": [p["trace_id"] for p in picked]})
    names = [_RENAMED.get(c, c) for c in columns]
    by_id = {row[0]: dict(zip(names, row, strict=True)) for row in rows}
    return [{**by_id[p["trace_id"]], "sort_key": p["sort_key"]} for p in picked if p["trace_id"] in by_id]


def _totals(found: dict[str, Any]) -> dict[str, Any]:
    return {"traces": int(found["n_traces"]), "spans": int(found["n_spans"]), "errors": int(found["n_failed"]),
            "error_spans": int(found["n_error_spans"]),
            "tokens": None if found["n_tokens"] is None else int(found["n_tokens"]),
            "cost_usd": None if found["n_cost"] is None else float(found["n_cost"])}  # fmt: skip


def totals(store: Store, project: str, window: uq.TimeRange, filters: uq.TraceFilters,
           error: Optional[bool]) -> dict[str, Any]:  # fmt: skip
    """Over every trace the filters keep: how many, their spans, tokens, cost, and how many failed."""
    kept, having, params = _conditions(filters, error)
    columns, rows = store.query_rows(_sql(_TOTALS_SQL, kept, having), {**params, **uq.bounds(project, window)})
    return _totals(dict(zip(columns, rows[0], strict=True)))


__all__ = ["MAX_PAGE", "ListOrder", "list_order", "make_cursor", "parse_cursor", "totals", "trace_page"]
