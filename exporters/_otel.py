"""A SpanProcessor that sends spans from any OpenTelemetry instrumentation into the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from tracehouse._internal_errors import log_internal_error
from tracehouse.exporters._records import STATUS_ERROR, STATUS_OK, STATUS_UNSET, Link, SpanRecord

if TYPE_CHECKING:
    from tracehouse.spans.runtime import Runtime

_STATUS = {StatusCode.UNSET: STATUS_UNSET, StatusCode.OK: STATUS_OK, StatusCode.ERROR: STATUS_ERROR}


def readable_to_record(span: ReadableSpan, project: str) -> Optional[SpanRecord]:
    """Convert an SDK span to a tracehouse record (None for a span without a context)."""
    context = span.context
    if context is None:
        return None
    parent = span.parent
    events = [(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events] or None
    resource: dict[str, Any] = dict(span.resource.attributes) if span.resource is not None else {}
    scope = span.instrumentation_scope
    links = [
        Link(link.context.trace_id, link.context.span_id, _trace_state(link.context), dict(link.attributes or {}))
        for link in span.links or ()
        if link.context is not None
    ]
    return SpanRecord(
        project=str(resource.get("tracehouse.project") or project),
        name=span.name,
        trace_id=context.trace_id,
        span_id=context.span_id,
        parent_span_id=parent.span_id if parent is not None else 0,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        status=_STATUS.get(span.status.status_code, STATUS_UNSET),
        status_message=span.status.description or "",
        attributes=dict(span.attributes or {}),
        events=events,
        span_kind=span.kind.name,
        scope=scope.name if scope is not None else "",
        resource=resource,
        scope_version=(scope.version or "") if scope is not None else "",
        trace_state=_trace_state(context),
        links=links or None,
    )


def _trace_state(context: Any) -> str:
    """A span context's W3C `tracestate` as header text ("" when it has none)."""
    state = context.trace_state
    return state.to_header() if state else ""


class StoreSpanProcessor(SpanProcessor):
    """Hands every ended SDK span (other than tracehouse's own) to the tracehouse exporter."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def on_end(self, span: ReadableSpan) -> None:
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == "tracehouse":
                return  # our own spans reach the exporter directly
            record = readable_to_record(span, self._runtime.settings.project)
            if record is not None and not self._runtime.disabled:
                self._runtime.submit(record)
                out = self._runtime.otlp_out
                if out is not None:  # what reaches the store reaches the other OTLP backend too
                    out.on_end(span)
        except Exception:
            log_internal_error("span processor")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._runtime.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._runtime.flush()
