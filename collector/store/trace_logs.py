"""A trace's OTLP logs, read beside its spans: GenAI events folded into their spans' input and
output (`collector/otlp/genai_events.py`), every other log listed on its span (`span["logs"]`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracehouse.collector.otlp.genai_events import fold, is_genai_event

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

MAX_LOGS = 2000  # per trace
_SLACK_NS = 3600 * 10**9  # logs stamped up to an hour around the trace's spans
_SQL = (
    "SELECT SpanId, Timestamp, EventName, SeverityText, SeverityNumber, Body, LogAttributes FROM otel_logs "
    "WHERE project = {project:String} AND TraceId = {trace_id:String} "
    "AND Timestamp BETWEEN fromUnixTimestamp64Nano({lo:Int64}, 'UTC') AND fromUnixTimestamp64Nano({hi:Int64}, 'UTC') "
    f"ORDER BY Timestamp LIMIT {MAX_LOGS}"
)


def with_logs(store: Store, project: str, trace_id: str, lo_ns: int, hi_ns: int,
              spans: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """`spans` (dicts of one trace) with their logs: `logs` on each span, GenAI content folded in."""
    columns, rows = store.query_rows(
        _SQL, {"project": project, "trace_id": trace_id, "lo": lo_ns - _SLACK_NS, "hi": hi_ns + _SLACK_NS}
    )
    by_span: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        log = dict(zip(columns, row, strict=True))
        by_span.setdefault(log["SpanId"], []).append(log)
    for span in spans:
        found = by_span.get(span["span_id"], [])
        events = [log for log in found if is_genai_event(log["EventName"])]
        span["logs"] = [_shown(log) for log in found if not is_genai_event(log["EventName"])]
        if not events:
            continue
        folded_input, folded_output = fold(events)
        if folded_input is not None and not span.get("input"):
            span["input"], span["input_size"] = folded_input, len(folded_input)
        if folded_output is not None and not span.get("output"):
            span["output"], span["output_size"] = folded_output, len(folded_output)
    return spans


def _shown(log: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": log["Timestamp"], "event_name": log["EventName"], "severity": log["SeverityText"],
        "severity_number": log["SeverityNumber"], "body": log["Body"], "attributes": log["LogAttributes"],
    }  # fmt: skip


__all__ = ["MAX_LOGS", "with_logs"]
