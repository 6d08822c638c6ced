"""Spans: a lean OpenTelemetry span for tracehouse's own instrumentation, and the helpers on it.

`TraceSpan` implements the OpenTelemetry API `Span`, lives in the OpenTelemetry context and is the
parent of any OTel span started inside it. It skips the SDK's per-span machinery (locks, attribute
validation, processor fan-out) and hands a plain record to the exporter when it ends.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState

from tracehouse import _semconv as sc
from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse._json import to_json_bytes
from tracehouse.collector.store.pricing import cost_usd as _cost_usd
from tracehouse.exporters._records import Link
from tracehouse.spans.serialize import capture

if TYPE_CHECKING:
    from tracehouse.spans.config import Settings
    from tracehouse.spans.runtime import Runtime

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_time_ns = time.time_ns


def capture_with(settings: Settings, value: Any) -> tuple[str, int]:
    """Capture a payload under the settings' size limit, content switch and redact hook."""
    return capture(value, settings.max_payload_bytes, settings.capture_content, settings.redact)


def redacted(settings: Settings, text: str) -> str:
    """Error text goes through the user's `redact` hook too (messages often quote the input)."""
    if settings.redact is None:
        return text
    try:
        return str(settings.redact(text))
    except Exception:
        return "<redaction failed; text dropped>"


def exception_attributes(runtime: Runtime, exception: BaseException, escaped: bool) -> dict[str, Any]:
    """The OpenTelemetry `exception` event attributes, redacted."""
    settings = runtime.settings
    stacktrace = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    return {
        "exception.type": type(exception).__qualname__,
        "exception.message": redacted(settings, _safe_str(exception)),
        "exception.stacktrace": redacted(settings, stacktrace),
        "exception.escaped": escaped,
    }


class SpanHelpers:
    """The tracehouse methods every span handle offers, written on top of `set_attribute`."""

    _runtime: Runtime

    def set_attribute(self, key: str, value: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes; values that are not str/bool/int/float are stored as JSON."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def _set_payload(self, key: str, size_key: str, value: Any) -> None:
        text, size = capture_with(self._runtime.settings, value)
        self.set_attribute(key, text)
        self.set_attribute(size_key, size)

    def set_input(self, value: Any) -> None:
        """Record the input of this step (a prompt, arguments, messages)."""
        try:
            self._set_payload(sc.INPUT_VALUE, sc.INPUT_SIZE, value)
        except Exception:
            log_internal_error("set_input")

    def set_output(self, value: Any) -> None:
        """Record the output of this step (a response, a return value)."""
        try:
            self._set_payload(sc.OUTPUT_VALUE, sc.OUTPUT_SIZE, value)
        except Exception:
            log_internal_error("set_output")

    def set_context(self, documents: Sequence[Any]) -> None:
        """Record retrieved documents: strings, or dicts with text/id/score/metadata."""
        try:
            docs = [_normalise_document(d) for d in documents]
            self._set_payload(sc.RETRIEVAL_DOCUMENTS, sc.CONTEXT_SIZE, docs)
        except Exception:
            log_internal_error("set_context")

    def set_usage(
        self,
        model: Optional[str] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        provider: Optional[str] = None,
        cost_usd: Optional[float] = None,
    ) -> None:
        """Record the model, token counts and cost (computed from the price table unless given)."""
        for option, count in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                raise ConfigError(option, f"expected a non-negative integer, got {count!r}")
        if cost_usd is not None and (
            isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)) or cost_usd < 0
        ):
            raise ConfigError("cost_usd", f"expected a non-negative number, got {cost_usd!r}")
        try:
            if model:
                self.set_attribute(sc.REQUEST_MODEL, str(model))
            if provider:
                self.set_attribute(sc.PROVIDER, str(provider))
            if input_tokens is not None:
                self.set_attribute(sc.INPUT_TOKENS, input_tokens)
            if output_tokens is not None:
                self.set_attribute(sc.OUTPUT_TOKENS, output_tokens)
            if cost_usd is None and model:
                cost_usd = _cost_usd(str(model), input_tokens, output_tokens)
            if cost_usd is not None:
                self.set_attribute(sc.COST_USD, float(cost_usd))
        except Exception:
            log_internal_error("set_usage")


def _normalise_document(doc: Any) -> Any:
    """A document as a dict with `text` (and id/score/metadata when it has them); never raises."""
    try:
        return _document_dict(doc)
    except Exception:
        return {"text": f"<unprintable {type(doc).__qualname__}>"}


def _document_dict(doc: Any) -> Any:
    if isinstance(doc, str):
        return {"text": doc}
    if isinstance(doc, Mapping):
        return dict(doc)
    page_content = getattr(doc, "page_content", None)  # LangChain Document and look-alikes
    if isinstance(page_content, str):
        out: dict[str, Any] = {"text": page_content}
        if getattr(doc, "id", None):
            out["id"] = doc.id
        if getattr(doc, "metadata", None):
            out["metadata"] = doc.metadata
        return out
    return {"text": str(doc)}


def attribute_value(value: Any) -> Any:
    """An OpenTelemetry-legal attribute value: primitives and lists of them as-is, the rest as JSON."""
    if isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)  # OTel attributes are int64
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
        return list(value)
    return to_json_bytes(value).decode("utf-8")


def unwind_ended(current: Any) -> Any:
    """The current span, after taking out spans that ended but stayed current (see `restore_context`).

    LangChain ends async runs from a copy of the run's context, where the span cannot be detached;
    the next span started in the original context does it here.
    """
    while type(current) is TraceSpan and current.end_ns and current.restore_context is not None:
        if not current.restore_context():
            break
        current = trace.get_current_span()
    return current


class TraceSpan(SpanHelpers, trace.Span):
    """A recording span created by `@trace` or `span()`."""

    def __init__(self, runtime: Runtime, name: str, kind: str, attributes: dict[str, Any]) -> None:
        self._runtime = runtime
        self.project = runtime.settings.project  # fixed at start: a re-configure does not move it
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.events: Optional[list[tuple[str, int, dict[str, Any]]]] = None
        self.links: Optional[list[Link]] = None
        self.trace_state: Optional[TraceState] = None  # the parent's (W3C tracestate travels down a trace)
        self.status = 0
        self.status_message = ""
        self.end_ns = 0
        self._context: Optional[SpanContext] = None
        # Set by integrations that make a span current from a callback (LangChain): takes the span out
        # of the current context once it has ended; True when it did.
        self.restore_context: Optional[Callable[[], bool]] = None
        self.trace_id: int
        self.span_id: int
        self.parent_span_id: int
        parent = trace.get_current_span()
        if type(parent) is TraceSpan and parent.end_ns and parent.restore_context is not None:
            parent = unwind_ended(parent)
        if type(parent) is TraceSpan:
            self.trace_id = parent.trace_id
            self.parent_span_id = parent.span_id
            self.trace_state = parent.trace_state
        else:
            parent_context = parent.get_span_context()
            if parent_context.is_valid:
                self.trace_id = parent_context.trace_id
                self.parent_span_id = parent_context.span_id
                self.trace_state = parent_context.trace_state or None
            else:
                self.trace_id = runtime.new_trace_id()
                self.parent_span_id = 0
        self.span_id = runtime.new_span_id()
        self.start_ns = _time_ns()

    # --- OpenTelemetry API -------------------------------------------------------------------
    def get_span_context(self) -> SpanContext:
        if self._context is None:
            self._context = SpanContext(
                self.trace_id, self.span_id, is_remote=False, trace_flags=_SAMPLED, trace_state=self.trace_state
            )
        return self._context

    # A span is written once, when it ends: changes after that are ignored (as in the OTel SDK).
    def set_attribute(self, key: str, value: Any) -> None:
        if not self.end_ns:
            self.attributes[key] = attribute_value(value)

    def add_event(self, name: str, attributes: Any = None, timestamp: Optional[int] = None) -> None:
        if self.end_ns:
            return
        if self.events is None:
            self.events = []
        attrs = {k: attribute_value(v) for k, v in (attributes or {}).items()}
        self.events.append((name, timestamp or _time_ns(), attrs))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        if self.end_ns or context is None or not context.is_valid:
            return
        if self.links is None:
            self.links = []
        state = context.trace_state.to_header() if context.trace_state else ""
        attrs = {k: attribute_value(v) for k, v in (attributes or {}).items()}
        self.links.append(Link(context.trace_id, context.span_id, state, attrs))

    def update_name(self, name: str) -> None:
        if not self.end_ns:
            self.name = name

    def is_recording(self) -> bool:
        return self.end_ns == 0

    def set_status(self, status: Any, description: Optional[str] = None) -> None:
        if self.end_ns:
            return
        if isinstance(status, Status):
            code, description = status.status_code, status.description or description
        else:
            code = status
        if code is StatusCode.ERROR:
            self.status = 2
            self.status_message = description or ""
        elif code is StatusCode.OK:
            self.status = 1
            self.status_message = ""

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: Optional[int] = None, escaped: bool = False
    ) -> None:
        attrs = exception_attributes(self._runtime, exception, escaped)
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: Optional[int] = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_time or _time_ns()
        self._runtime.on_end(self)

    # --- tracehouse ----------------------------------------------------------------------------
    def fail(self, exception: BaseException) -> None:
        """Mark the span as failed by `exception` (status error plus an exception event)."""
        self.record_exception(exception, escaped=True)
        self.status = 2
        message = f"{type(exception).__qualname__}: {_safe_str(exception)}"
        self.status_message = redacted(self._runtime.settings, message)[:4096]

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 hex digits, as stored in the `spans` table."""
        return format(self.trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 hex digits, as stored in the `spans` table."""
        return format(self.span_id, "016x")

    def __enter__(self) -> TraceSpan:
        return self

    def __repr__(self) -> str:
        return f"TraceSpan(name={self.name!r}, kind={self.kind!r}, span_id={self.span_id_hex})"


def _safe_str(exception: BaseException) -> str:
    try:
        return str(exception)
    except Exception:
        return f"<unprintable {type(exception).__qualname__}>"
