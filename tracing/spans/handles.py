"""Span handles with the same methods as TraceSpan: over another OTel span, or doing nothing.

`th.current_span()` and `th.span()` return one of these when the current span is not a tracehouse
span, so user code written against a TraceSpan never fails on a missing method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, Status, StatusCode

from tracehouse.spans.span import SpanHelpers, _safe_str, attribute_value, exception_attributes, redacted

if TYPE_CHECKING:
    from tracehouse.spans.runtime import Runtime


class ForeignSpan(SpanHelpers):
    """tracehouse's span methods over any other OpenTelemetry span (e.g. one an instrumentation started)."""

    def __init__(self, runtime: Runtime, span: trace.Span) -> None:
        self._runtime = runtime
        self.otel_span = span

    def set_attribute(self, key: str, value: Any) -> None:
        self.otel_span.set_attribute(key, attribute_value(value))

    def add_event(self, name: str, attributes: Any = None, timestamp: Optional[int] = None) -> None:
        """Add a timestamped event."""
        self.otel_span.add_event(name, {k: attribute_value(v) for k, v in (attributes or {}).items()}, timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        """Link another span."""
        self.otel_span.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        """Rename the span."""
        self.otel_span.update_name(name)

    def set_status(self, status: Any, description: Optional[str] = None) -> None:
        """Set the OpenTelemetry status."""
        self.otel_span.set_status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: Optional[int] = None, escaped: bool = False
    ) -> None:
        """Add an `exception` event."""
        attrs = exception_attributes(self._runtime, exception, escaped)
        attrs.update(attributes or {})
        self.otel_span.add_event("exception", attrs, timestamp)

    def fail(self, exception: BaseException) -> None:
        """Mark the span as failed by `exception` (status error plus an exception event)."""
        self.record_exception(exception, escaped=True)
        message = redacted(self._runtime.settings, f"{type(exception).__qualname__}: {_safe_str(exception)}")
        self.otel_span.set_status(Status(StatusCode.ERROR, message[:4096]))

    def end(self, end_time: Optional[int] = None) -> None:
        """End the span."""
        self.otel_span.end(end_time)

    def is_recording(self) -> bool:
        """Whether the underlying span still records."""
        return self.otel_span.is_recording()

    def get_span_context(self) -> SpanContext:
        """The OpenTelemetry span context."""
        return self.otel_span.get_span_context()

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 hex digits."""
        return format(self.get_span_context().trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 hex digits."""
        return format(self.get_span_context().span_id, "016x")


class NoopSpan(SpanHelpers):
    """Returned when tracing is disabled or no span is current: every method does nothing."""

    trace_id_hex = ""
    span_id_hex = ""

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def _set_payload(self, key: str, size_key: str, value: Any) -> None:
        return None

    def add_event(self, name: str, attributes: Any = None, timestamp: Optional[int] = None) -> None:
        """Does nothing."""

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        """Does nothing."""

    def update_name(self, name: str) -> None:
        """Does nothing."""

    def set_status(self, status: Any, description: Optional[str] = None) -> None:
        """Does nothing."""

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: Optional[int] = None, escaped: bool = False
    ) -> None:
        """Does nothing."""

    def fail(self, exception: BaseException) -> None:
        """Does nothing."""

    def end(self, end_time: Optional[int] = None) -> None:
        """Does nothing."""

    def is_recording(self) -> bool:
        """Always False."""
        return False

    def get_span_context(self) -> SpanContext:
        """The invalid span context."""
        return INVALID_SPAN_CONTEXT

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None


NOOP_SPAN = NoopSpan()
