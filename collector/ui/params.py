"""The pages' query-string parameters, read once for a page and its JSON twin (ConfigError naming a bad one)."""

from __future__ import annotations

from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.ui import queries as uq


def number(params: Any, name: str) -> Optional[float]:
    """A numeric parameter, None when absent."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None


def text(params: Any, name: str) -> Optional[str]:
    """A text parameter, None when absent or blank."""
    value = params.get(name)
    return value.strip() or None if isinstance(value, str) else None


def window(params: Any, default: str) -> uq.TimeRange:
    """A page's time window from `range` / `since` (back from now) or `start` / `end` (ISO 8601 or epoch
    ms); `default` when none is given. ConfigError naming a bad, inverted or conflicting parameter."""
    return uq.time_range(text(params, "range"), text(params, "start"), text(params, "end"), text(params, "since"),
                         default=default)  # fmt: skip


def dashboard_args(params: Any) -> tuple[uq.TimeRange, str]:
    """The dashboard's window and grouping."""
    return window(params, "1h"), params.get("by") or "name"


def trace_args(params: Any) -> tuple[uq.TimeRange, uq.TraceFilters, Optional[str]]:
    """The trace list's window, filters and keyset cursor."""
    filters = uq.TraceFilters(
        name=text(params, "name"), kind=text(params, "kind"), model=text(params, "model"),
        status=text(params, "status"), min_ms=number(params, "min_ms"), max_ms=number(params, "max_ms"),
        text=text(params, "text"), run_id=text(params, "run_id"),
    )  # fmt: skip
    return window(params, "24h"), filters, text(params, "before")
