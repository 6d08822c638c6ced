"""The span record: what a finished span becomes before it is spooled.

A record is a plain tuple built on the hot path (cheap to make) and turned into a JSON-able dict on
the background thread. The dict is OpenTelemetry-shaped (ids, times, attributes, events, resource),
so the store maps every span, ours or any OTel SDK's, through one function.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
_STATUS_NAMES = ("unset", "ok", "error")


class Link(NamedTuple):
    """A span link: the linked span's context and the link's attributes."""

    trace_id: int
    span_id: int
    trace_state: str
    attributes: dict[str, Any]


class SpanRecord(NamedTuple):
    """A finished span, as handed from the tracer to the exporter."""

    project: str
    name: str
    trace_id: int
    span_id: int
    parent_span_id: int  # 0 for a root span
    start_ns: int
    end_ns: int
    status: int
    status_message: str
    attributes: dict[str, Any]
    events: Optional[list[tuple[str, int, dict[str, Any]]]]
    span_kind: str  # OpenTelemetry SpanKind name: INTERNAL, CLIENT, SERVER, PRODUCER, CONSUMER
    scope: str
    resource: dict[str, Any]
    scope_version: str = ""
    trace_state: str = ""  # W3C `tracestate` header text
    links: Optional[list[Link]] = None


def record_to_dict(record: SpanRecord) -> dict[str, Any]:
    """The spool (and OTLP-like) form of a span record; scope version, trace state and links only when set."""
    out = {
        "type": "span",
        "project": record.project,
        "name": record.name,
        "trace_id": format(record.trace_id, "032x"),
        "span_id": format(record.span_id, "016x"),
        "parent_span_id": format(record.parent_span_id, "016x") if record.parent_span_id else "",
        "start_ns": record.start_ns,
        "end_ns": record.end_ns,
        "status": _STATUS_NAMES[record.status],
        "status_message": record.status_message,
        "attributes": record.attributes,
        "events": [{"name": n, "time_ns": t, "attributes": a} for n, t, a in record.events] if record.events else [],
        "span_kind": record.span_kind,
        "scope": record.scope,
        "resource": record.resource,
    }
    if record.scope_version:
        out["scope_version"] = record.scope_version
    if record.trace_state:
        out["trace_state"] = record.trace_state
    if record.links:
        out["links"] = [
            {"trace_id": format(t, "032x"), "span_id": format(s, "016x"), "trace_state": state, "attributes": a}
            for t, s, state, a in record.links
        ]
    return out
