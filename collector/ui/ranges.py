"""The pages' range picker and their empty states.

The picker keeps its state in the query string: `range` (a preset, any duration, or `custom`), or
`start` / `end` shown in two datetime inputs (UTC). An empty window says what to do: when the project
has spans outside it, the time of the last one and links to windows holding it ("Nothing in the last
1h. Last data at 2026-12-01 14:03 UTC: show 24h / show 7d"); when it has none at all, how to send some.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Optional
from urllib.parse import urlencode

from tracehouse.collector.store.queries import check_project
from tracehouse.collector.ui import queries as uq

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

PRESETS = ("15m", "1h", "24h", "7d")
_WINDOW_KEYS = ("range", "since", "start", "end", "before")


def _minute(value: datetime) -> str:
    """A time as a datetime-local input takes it (UTC; seconds only when there are some)."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S" if value.second or value.microsecond else "%Y-%m-%dT%H:%M")


def picker(window: uq.TimeRange) -> dict[str, Any]:
    """The range picker's state: the option chosen, the options, and the two inputs (custom only)."""
    custom = window.label == "custom"
    options = [*PRESETS, *([] if custom or window.label in PRESETS else [window.label]), "custom"]
    return {"range": window.label, "options": options, "start": _minute(window.start) if custom else "",
            "end": _minute(window.end) if custom else "", "seconds": custom and (window.start.second or
            window.end.second) != 0}  # fmt: skip


def describe(window: uq.TimeRange) -> str:
    """The window in words: "the last 1h", or "2026-12-01 14:00 to 15:00 UTC"."""
    if window.label != "custom":
        return f"the last {window.label}"
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    tail = end.strftime("%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M} to {tail} UTC"


_LAST_SPAN = "SELECT count() AS n, max(start_time) AS last FROM spans WHERE project = {p:String}"


def empty_state(store: Store, project: str, window: uq.TimeRange, shown: int) -> Optional[dict[str, Any]]:
    """None when the window shows something; else what to say: `older` (the last span's time and windows
    that hold it, as query parameters) or `none` (the project has no spans at all)."""
    if shown:
        return None
    _, rows = store.query_rows(_LAST_SPAN, {"p": check_project(project)})
    count, last = rows[0] if rows else (0, None)
    if not count or last is None:
        return {"kind": "none", "window": describe(window), "last_at": None, "suggestions": []}
    last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
    return {"kind": "older", "window": describe(window), "last_at": last.isoformat(),
            "last_at_text": f"{last:%Y-%m-%d %H:%M} UTC", "suggestions": suggestions(window, last)}  # fmt: skip


def suggestions(window: uq.TimeRange, last: datetime, now: Optional[datetime] = None) -> list[dict[str, Any]]:
    """Up to two windows holding `last`: presets back from now wider than the window shown, else the
    hour and the day up to it."""
    now = now or datetime.now(timezone.utc)
    shown = window.end - window.start
    found = [{"label": f"show {p}", "params": {"range": p}} for p in PRESETS
             if uq.RANGES[p] > shown and now - uq.RANGES[p] <= last <= now]  # fmt: skip
    if found:
        return found[:2]
    after = (last + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return [
        {"label": f"show the {name} up to it", "params": {"range": "custom", "start": _minute(after - span),
                                                         "end": _minute(after)}}
        for name, span in (("hour", timedelta(hours=1)), ("day", timedelta(days=1)))
    ]  # fmt: skip


def with_links(empty: Optional[dict[str, Any]], path: str, params: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The empty state with each suggestion's URL: this page, its other parameters kept, the window changed."""
    if empty is None:
        return None
    kept = [(k, v) for k, v in params.items() if k not in _WINDOW_KEYS]
    links = [{"label": s["label"], "url": f"{path}?{urlencode([*kept, *s['params'].items()])}"}
             for s in empty["suggestions"]]  # fmt: skip
    return {**empty, "links": links}


__all__ = ["describe", "empty_state", "picker", "suggestions", "with_links"]
