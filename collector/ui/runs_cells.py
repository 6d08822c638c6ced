"""How the runs table and the compare page write a value: numbers to four significant digits with
thousands separators, times in UTC, durations as 1h 02m, tags joined, logged objects by what they are.
The text is plain (the templates escape it; the live-refresh script sets it as text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from tracehouse import _numbers
from tracehouse.collector.ui.render import logged_summary

LABELS = {"created_at": "created", "updated_at": "updated", "run_id": "id", "job_type": "job type",
          "sweep_id": "sweep"}  # fmt: skip


def parse_json(text: Any, default: Any) -> Any:
    """JSON text as a value (`default` for empty or malformed text)."""
    if not isinstance(text, (str, bytes)) or not text:
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return default


def json_dict(text: Any) -> dict[str, Any]:
    """A config or summary column as a dict (anything else, or malformed text, as an empty one)."""
    value = parse_json(text, {})
    return value if isinstance(value, dict) else {}


def label(column: str) -> str:
    """A column's heading."""
    return LABELS.get(column, column)


def duration(seconds: Any) -> str:
    """Seconds as people read a run's length: 4.2s, 3m 05s, 2h 03m, 3d 04h."""
    if _numbers.is_unknown(seconds):
        return ""
    total = max(0.0, float(seconds))
    if total < 10:
        return f"{total:.1f}s"
    whole = int(total)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def value_text(value: Any) -> str:
    """Any logged value as text: numbers formatted, strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return _numbers.significant(value)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict) and "_type" in value:
        return str(logged_summary(value))
    return orjson.dumps(value, default=str).decode()


def cell(column: str, value: Any) -> str:
    """The text of one cell of `column`."""
    if column == "duration":
        return duration(value)
    if column == "tags" and isinstance(value, (list, tuple)):
        return ", ".join(str(t) for t in value)
    return value_text(value)


def is_number(value: Any) -> bool:
    """Whether a cell holds a number (right-aligned)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["cell", "duration", "is_number", "json_dict", "label", "parse_json", "value_text"]
