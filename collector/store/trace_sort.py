"""How trace lists sort and filter on errors: one whitelist for the REST API (`/api/v1/traces`), the
trace list page and its JSON twin, so the same `sort`, `order` and `error` give the same answers.

A trace sorts by its start, duration, tokens or cost, then by trace id (so equal keys have a fixed
order and keyset cursors never skip or repeat a trace). Unknown tokens or cost sort as -1: below every
known value (first ascending, last descending).
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
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def check_sort(sort: Any, order: Any) -> tuple[str, bool]:
    """(sort key name, descending) from `sort` (start, duration, tokens, cost; default start) and
    `order` (desc, asc; default desc); ConfigError naming a bad one."""
    sort = sort if sort not in (None, "") else "start"
    order = order if order not in (None, "") else "desc"
    if sort not in SORT_KEYS:
        raise ConfigError("sort", f"expected one of {', '.join(SORT_KEYS)}, got {sort!r}")
    if order not in ORDERS:
        raise ConfigError("order", f"expected desc or asc, got {order!r}")
    return str(sort), order == "desc"


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
    return f"{SORT_KEYS[sort].column} {direction}, trace_id {direction}"


__all__ = ["ORDERS", "SORT_KEYS", "SortKey", "check_sort", "error_flag", "order_by", "status_for", "usage_sum"]
