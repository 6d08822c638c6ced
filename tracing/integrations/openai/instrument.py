"""`th.instrument_openai()`: every call of the `openai` client (v1 and later) becomes a span.

Chat completions (and `parse`), the Responses API (and `parse`), legacy completions and embeddings,
sync and async, streamed or not, through `with_raw_response` too, on clients made before or after
instrumenting: the methods are wrapped on the resource classes, so every client instance sees them.
`uninstrument_openai()` (or the returned handle's `uninstrument()`) puts back exactly what was
there. Recording never changes what the caller sees: its own errors are logged, the call's result or
exception reaches the caller unchanged.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from tracehouse import _semconv as sc
from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse.integrations.openai import foreign
from tracehouse.integrations.openai import record as rec
from tracehouse.spans.decorator import _MISSING, _start_span
from tracehouse.spans.runtime import runtime
from tracehouse.spans.span import TraceSpan

# (module, class, method, operation, span kind)
_TARGETS = (
    ("openai.resources.chat.completions", "Completions", "create", "chat", "chat"),
    ("openai.resources.chat.completions", "Completions", "parse", "chat", "chat"),
    ("openai.resources.chat.completions", "AsyncCompletions", "create", "chat", "chat"),
    ("openai.resources.chat.completions", "AsyncCompletions", "parse", "chat", "chat"),
    ("openai.resources.responses", "Responses", "create", "responses", "chat"),
    ("openai.resources.responses", "Responses", "parse", "responses", "chat"),
    ("openai.resources.responses", "AsyncResponses", "create", "responses", "chat"),
    ("openai.resources.responses", "AsyncResponses", "parse", "responses", "chat"),
    ("openai.resources.completions", "Completions", "create", "text_completion", "llm"),
    ("openai.resources.completions", "AsyncCompletions", "create", "text_completion", "llm"),
    ("openai.resources.embeddings", "Embeddings", "create", "embeddings", "embedding"),
    ("openai.resources.embeddings", "AsyncEmbeddings", "create", "embeddings", "embedding"),
)
_SPAN_OPERATION = {"responses": "chat"}
# span names follow gen_ai.operation.name


@dataclass
class OpenAIInstrumentation:
    """What `instrument_openai()` did; `uninstrument()` undoes exactly that."""

    stream_usage: bool = True
    # (class, name, original, own attr, our wrapper)
    patched: list[tuple[type, str, Any, bool, Any]] = field(default_factory=list)

    def uninstrument(self) -> None:
        """Put back the original methods (idempotent)."""
        with _lock:
            for owner, name, original, own, wrapper in reversed(self.patched):
                if vars(owner).get(name) is not wrapper:
                    continue  # another instrumentation wrapped ours since: left in place, ours now calls through
                if own:
                    setattr(owner, name, original)
                else:
                    delattr(owner, name)
            self.patched.clear()
            global _active
            if _active is self:
                _active = None

    @property
    def active(self) -> bool:
        """True while the wrappers are in place."""
        return bool(self.patched)


_lock = threading.Lock()
_active: Optional[OpenAIInstrumentation] = None


def instrument_openai(stream_usage: bool = True) -> OpenAIInstrumentation:
    """Trace every OpenAI client call. Calling it again returns the same handle (nothing is wrapped twice).

    When OpenTelemetry's openai-v2 instrumentation (or OpenLLMetry's) already traces the client, this
    wraps nothing and warns once: their spans reach tracehouse, and a call must not give two chat spans.

    `stream_usage` (default True): for a streamed chat or text completion whose caller did not set
    `stream_options`, ask for `{"include_usage": True}` so the span gets token counts and cost; the
    extra usage chunk this adds is not shown to the caller. Set it False for servers that refuse
    `stream_options`; such streams then record no usage unless the caller asks for it.
    """
    global _active
    if not isinstance(stream_usage, bool):
        raise ConfigError("stream_usage", f"expected True or False, got {stream_usage!r}")
    import importlib

    for package in ("openai", "wrapt"):  # wrapt: streams stay `openai.Stream` to isinstance (its ObjectProxy)
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise ConfigError(
                package, f"the {package} package is not installed: pip install 'tracehouse[openai]'"
            ) from error
    with _lock:
        if _active is not None:
            _active.stream_usage = stream_usage
            return _active
        handle = OpenAIInstrumentation(stream_usage=stream_usage)
        other = foreign.instrumented_by()
        if other is not None:
            foreign.warn_not_instrumenting(other)
            return handle  # not active: nothing wrapped, nothing to undo
        for module_name, class_name, method, operation, kind in _TARGETS:
            owner = _resolve(module_name, class_name)
            original = getattr(owner, method, None) if owner is not None else None
            if owner is None or original is None:
                continue  # an older client without this API
            wrapper = _wrap(original, operation, kind, handle, is_async=class_name.startswith("Async"))
            handle.patched.append((owner, method, original, method in vars(owner), wrapper))
            setattr(owner, method, wrapper)
        _active = handle
        return handle


def uninstrument_openai() -> None:
    """Undo `instrument_openai()` (nothing happens when it is not instrumented)."""
    handle = _active
    if handle is not None:
        handle.uninstrument()


def _resolve(module_name: str, class_name: str) -> Optional[type]:
    import importlib

    try:
        return getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        return None


def _wrap(
    original: Callable[..., Any], operation: str, kind: str, handle: OpenAIInstrumentation, is_async: bool
) -> Any:
    # The client's async methods are plain functions returning coroutines (its decorators hide
    # `async def`), so the resource class says which they are.
    if is_async:

        @functools.wraps(original)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _Call.start(operation, kind, kwargs, handle)
            if call is None:
                return await original(self, *args, **kwargs)
            token = otel_context.attach(otel_trace.set_span_in_context(call.span))
            try:
                result = await original(self, *args, **call.kwargs)
            except BaseException as error:
                call.failed(error)
                raise
            finally:
                otel_context.detach(token)
            return call.returned(result, is_async=True)

        async_wrapper.__tracehouse_original__ = original  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _Call.start(operation, kind, kwargs, handle)
        if call is None:
            return original(self, *args, **kwargs)
        token = otel_context.attach(otel_trace.set_span_in_context(call.span))
        try:
            result = original(self, *args, **call.kwargs)
        except BaseException as error:
            call.failed(error)
            raise
        finally:
            otel_context.detach(token)
        return call.returned(result, is_async=False)

    wrapper.__tracehouse_original__ = original  # type: ignore[attr-defined]
    return wrapper


@dataclass
class _Call:
    """One instrumented call: its span, and the arguments actually sent."""

    span: TraceSpan
    operation: str
    kwargs: dict[str, Any]
    stream: bool
    hide_usage: bool

    @classmethod
    def start(cls, operation: str, kind: str, kwargs: dict[str, Any], handle: OpenAIInstrumentation) -> Optional[_Call]:
        if runtime.disabled or not handle.patched:
            return None
        try:
            other = foreign.current_foreign_call()
            if other is not None:  # wrapped again by another instrumentation after us: its span is this call's
                foreign.warn_deferring(other)
                return None
            model = kwargs.get("model")
            name = f"{_SPAN_OPERATION.get(operation, operation)} {model}" if isinstance(model, str) else operation
            parent = otel_trace.get_current_span()
            span = _start_span(name, kind, {}, _MISSING)
            if span is None:
                return None
            if isinstance(parent, TraceSpan) and sc.LANGCHAIN_RUN_ID in parent.attributes:
                parent.attributes[sc.USAGE_IN_CHILD] = True  # the LangChain model span leaves tokens to this one
            stream = kwargs.get("stream") is True
            sent, hide_usage = kwargs, False
            if (stream and handle.stream_usage and operation in ("chat", "text_completion")
                    and not rec._given(kwargs.get("stream_options")) and not _raw(kwargs)):  # fmt: skip
                sent, hide_usage = {**kwargs, "stream_options": {"include_usage": True}}, True
            call = cls(span, operation, sent, stream, hide_usage)
            rec.record_request(span, operation, kwargs)
            return call
        except Exception:
            log_internal_error("openai call start")
            return None

    def failed(self, error: BaseException) -> None:
        try:
            rec.record_error(self.span, error)
        except Exception:
            log_internal_error("openai call error")
        self.span.end()

    def returned(self, result: Any, is_async: bool) -> Any:
        try:
            if self.stream and _is_stream(result):
                from tracehouse.integrations.openai.stream import AsyncStreamProxy, StreamProxy, accumulator

                acc = accumulator(self.span, self.operation, self.hide_usage)
                return AsyncStreamProxy(result, acc) if is_async else StreamProxy(result, acc)
            parsed = _parsed(result)
            if parsed is not None:
                rec.record_response(self.span, self.operation, parsed)
        except Exception:
            log_internal_error("openai call result")
        self.span.end()
        return result


def _raw(kwargs: dict[str, Any]) -> bool:
    """A `with_raw_response` / `with_streaming_response` call: its body is the caller's to read, so it is
    sent unchanged (no usage chunk asked for that only tracehouse's stream proxy would hide)."""
    headers = kwargs.get("extra_headers")
    return isinstance(headers, dict) and any(str(k).lower() == "x-stainless-raw-response" for k in headers)


def _is_stream(result: Any) -> bool:
    from openai import AsyncStream, Stream

    return isinstance(result, (Stream, AsyncStream))


def _parsed(result: Any) -> Any:
    """The response object of a call: itself, or parsed from `with_raw_response`'s wrapper."""
    try:
        from openai._legacy_response import LegacyAPIResponse
    except ImportError:  # pragma: no cover - every supported client has it
        LegacyAPIResponse = ()  # type: ignore[assignment,misc]
    if isinstance(result, LegacyAPIResponse):
        if getattr(result, "_stream", False):
            return None  # a raw stream is the caller's to read; the span records the request only
        return result.parse()  # parse() keeps its result: the caller's own parse() gets the same object
    if hasattr(result, "http_response") and hasattr(result, "iter_bytes"):
        return None  # with_streaming_response: the body is the caller's to read
    return result
