"""How trace lists sort and filter on errors: one whitelist for the REST API (`/api/v1/traces`), the
trace list page and its JSON twin, so the same `sort`, `order` and `error` give the same answers.

A trace sorts by its start, duration, tokens or cost, or by a feedback score (`score:<name>`: the
mean of that score's numeric values on the trace and on its spans), then by trace id (so equal keys
have a fixed order and keyset cursors never skip or repeat a trace). Unknown tokens or cost sort as
-1, an unscored trace as -1e308: below every known value (first ascending, last descending).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.store.usage import counted_sum


def usage_sum(column: str) -> str:
    """A trace's (or any group's) sum of a usage column (tokens, cost): NULL when no span reported it.

    Every per-trace token and cost sum of the trace pages is this expression, so how usage is counted
    (a call reported by nested instrumentations counted once: collector/store/usage.py) is decided
    here alone. Needs the query parameter {project:String}."""
    return counted_sum(column)


@dataclass(frozen=True)
class SortKey:
    """A sort key as an aggregate over a trace's spans, as a column of a trace row, and its SQL type."""

    aggregate: str
    column: str
    sql_type: str


SORT_KEYS: dict[str, SortKey] = {
    "start": SortKey("toUnixTimestamp64Nano(min(start_time))", "toUnixTimestamp64Nano(start_time)", "Int64"),
    "duration": SortKey(
        "(max(toUnixTimestamp64Nano(end_time)) - min(toUnixTimestamp64Nano(start_time))) / 1e6",
        "duration_ms",
        "Float64",
    ),
    "tokens": SortKey(
        f"toInt64(ifNull({usage_sum('total_tokens')}, -1))", "toInt64(ifNull(total_tokens, -1))", "Int64"
    ),
    "cost": SortKey(f"toFloat64(ifNull({usage_sum('cost_usd')}, -1))", "toFloat64(ifNull(cost_usd, -1))", "Float64"),
}
ORDERS = ("desc", "asc")
SCORE_PREFIX = "score:"
NO_SCORE = -1e308  # a trace without the score: below every real one
# transform() looks constant arrays up through a hash table (a Map would be searched linearly per trace)
_SCORE_KEY = f"transform(trace_id, trace_scores.1, trace_scores.2, toFloat64({NO_SCORE!r}))"
# Each scored trace's mean of the score, as (trace ids, means) the sort key looks up: scores on a trace carry its id,
# scores on a span (th.score(span_id, ...)) only the span's, so those find their trace through `spans`.
SCORES_WITH = """WITH (
    SELECT (groupArray(tid), groupArray(mean)) FROM (
        SELECT if(s.trace_id != '', s.trace_id, sp.trace_id) AS tid, avg(s.value) AS mean
        FROM (SELECT trace_id, span_id, value FROM scores FINAL WHERE project = {project:String}
              AND name = {score_name:String} AND isFinite(value) AND string_value = '') AS s
        LEFT JOIN (SELECT span_id, any(trace_id) AS trace_id FROM spans WHERE project = {project:String}
                   AND span_id IN (SELECT span_id FROM scores WHERE project = {project:String}
                                   AND name = {score_name:String} AND trace_id = '' AND span_id != '')
                   GROUP BY span_id) AS sp ON s.span_id = sp.span_id
        GROUP BY tid HAVING tid != ''
    )
) AS trace_scores
"""
_MAX_SCORE_NAME = 200
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def check_sort(sort: Any, order: Any) -> tuple[str, bool]:
    """(sort key name, descending) from `sort` (start, duration, tokens, cost, score:<name>; default
    start) and `order` (desc, asc; default desc); ConfigError naming a bad one."""
    sort = sort if sort not in (None, "") else "start"
    order = order if order not in (None, "") else "desc"
    if not isinstance(sort, str) or (sort not in SORT_KEYS and score_name(sort) is None):
        raise ConfigError("sort", f"expected one of {', '.join(SORT_KEYS)} or score:<score name>, got {sort!r}")
    if order not in ORDERS:
        raise ConfigError("order", f"expected desc or asc, got {order!r}")
    return str(sort), order == "desc"


def score_name(sort: str) -> Optional[str]:
    """The score name of a `score:<name>` sort (None for any other sort, or a name empty or too long)."""
    if not sort.startswith(SCORE_PREFIX):
        return None
    name = sort[len(SCORE_PREFIX) :]
    return name if 0 < len(name) <= _MAX_SCORE_NAME and name.isprintable() else None


def sort_key(sort: str) -> SortKey:
    """The SortKey of a checked sort name; a score sort needs `SCORES_WITH` and {score_name:String}."""
    if score_name(sort) is not None:
        return SortKey(_SCORE_KEY, _SCORE_KEY, "Float64")
    return SORT_KEYS[sort]


def sort_parameters(sort: str) -> dict[str, Any]:
    """The query parameters a sort needs ({score_name:String} for a score sort)."""
    name = score_name(sort)
    return {} if name is None else {"score_name": name}


def with_sort(sort: str, sql: str) -> str:
    """`sql` with what its sort key reads defined first (the trace scores map of a score sort)."""
    return SCORES_WITH + sql if score_name(sort) is not None else sql


def error_flag(value: Any) -> Optional[bool]:
    """`error`: True (only traces with an error span), False (only traces without), None (all)."""
    if value is None or value == "" or isinstance(value, bool):
        return value if isinstance(value, bool) else None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError("error", f"expected 1 (only traces with an error) or 0 (only traces without), got {value!r}")


def status_for(status: Optional[str], error: Optional[bool]) -> Optional[str]:
    """The trace status a list keeps: `status` and `error` together, ConfigError when they disagree."""
    wanted = None if error is None else ("error" if error else "ok")
    if status is not None and wanted is not None and status != wanted:
        raise ConfigError("error", f"error={int(bool(error))} keeps {wanted} traces, but status asks for {status!r}")
    return status if status is not None else wanted


def order_by(sort: str, desc: bool) -> str:
    """ORDER BY over trace rows (columns start_time, duration_ms, total_tokens, cost_usd, trace_id)."""
    direction = "DESC" if desc else "ASC"
    return f"{sort_key(sort).column} {direction}, trace_id {direction}"


__all__ = [
    "ORDERS", "SORT_KEYS", "SortKey", "check_sort", "error_flag", "order_by", "score_name", "sort_key",
    "sort_parameters", "status_for", "usage_sum", "with_sort",
]  # fmt: skip
