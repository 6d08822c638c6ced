"""`th.score(...)`: feedback on live traces, in the same `scores` table as evaluations."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.spans.runtime import runtime

_TRACE = re.compile(r"^[0-9a-f]{32}$")
_SPAN = re.compile(r"^[0-9a-f]{16}$")


def score(target: Any, name: str, value: Any, comment: Optional[str] = None, project: Optional[str] = None) -> None:
    """Score a trace (its 32-hex id), a span (its 16-hex id, or the span object itself), e.g. a
    user's thumbs up: `th.score(trace_id, "helpful", True, comment="fixed my issue")`.

    `value` is a number, a bool (stored as 1 / 0) or a label (text); the row lands in `scores`
    with source "feedback"."""
    from tracehouse.spans.config import _parse_project

    trace_id, span_id = "", ""
    if isinstance(target, str) and _TRACE.match(target):
        trace_id, kind = target, "trace"
    elif isinstance(target, str) and _SPAN.match(target):
        span_id, kind = target, "span"
    elif hasattr(target, "trace_id_hex") and hasattr(target, "span_id_hex"):
        trace_id, span_id, kind = target.trace_id_hex, target.span_id_hex, "span"
    else:
        raise ConfigError("target", f"expected a trace id (32 hex), a span id (16 hex) or a span, got {target!r}")
    if not isinstance(name, str) or not name:
        raise ConfigError("name", f"expected a score name, got {name!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError("value", f"expected a finite number, a bool or a label, got {value!r}")
    if not isinstance(value, (int, float, str)):
        raise ConfigError("value", f"expected a number, a bool or a label, got {type(value).__name__}")
    if comment is not None and not isinstance(comment, str):
        raise ConfigError("comment", f"expected text, got {comment!r}")
    if runtime.settings.disabled:  # tracing is a no-op: so is feedback on it
        return
    runtime.sink().submit({
        "type": "score", "project": runtime.settings.project if project is None else _parse_project("project", project),
        "target_type": kind, "trace_id": trace_id, "span_id": span_id, "name": name,
        "value": float(value) if isinstance(value, bool) else value, "comment": comment or "", "source": "feedback",
        "time_ns": time.time_ns(),
    })  # fmt: skip
