"""`@trace`, `span()` and `current_span()`: the user-facing ways to make spans."""

from __future__ import annotations

import functools
import inspect
from contextvars import ContextVar
from typing import Any, AsyncGenerator, Callable, Generator, Mapping, Optional, TypeVar, overload

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from tracehouse import _semconv as sc
from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse._json import to_json_bytes
from tracehouse.spans.handles import NOOP_SPAN, ForeignSpan
from tracehouse.spans.runtime import runtime
from tracehouse.spans.span import TraceSpan, attribute_value, capture_with

F = TypeVar("F", bound=Callable[..., Any])
_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = otel_trace.set_span_in_context
_MISSING: Any = object()


def _check_kind(kind: str) -> str:
    if kind not in sc.SPAN_KINDS:
        raise ConfigError("kind", f"expected one of {', '.join(sc.SPAN_KINDS)}, got {kind!r}")
    return kind


def _static_attributes(attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping) or not all(isinstance(k, str) for k in attributes):
        raise ConfigError("attributes", "expected a mapping of string keys to values")
    return {k: attribute_value(v) for k, v in attributes.items()}


def _start_span(name: str, kind: str, static: dict[str, Any], payload: Any) -> Optional[TraceSpan]:
    """Create a span (child of the current one); `payload` is captured as its input unless _MISSING.

    None when tracing turns out to be disabled (settings are resolved on first use).
    """
    rt = runtime
    settings = rt.settings
    if rt.disabled:
        return None
    rt.ensure_provider()
    attributes: dict[str, Any] = {sc.KIND: kind, **static} if static else {sc.KIND: kind}
    if rt.active_run_id is not None:
        attributes[sc.RUN_ID] = rt.active_run_id
    if payload is not _MISSING:
        text, size = capture_with(settings, payload)
        attributes[sc.INPUT_VALUE] = text
        attributes[sc.INPUT_SIZE] = size
    return TraceSpan(rt, name, kind, attributes)


def _end_ok(span: TraceSpan, result: Any, capture_output: bool) -> None:
    try:
        if capture_output:
            text, size = capture_with(runtime.settings, result)
            span.attributes[sc.OUTPUT_VALUE] = text
            span.attributes[sc.OUTPUT_SIZE] = size
        span.end()
    except Exception:
        log_internal_error("span end")


def _end_error(span: TraceSpan, error: BaseException) -> None:
    try:
        span.fail(error)
        span.end()
    except Exception:
        log_internal_error("span end")


class _ArgumentBinder:
    """Maps call arguments to parameter names fast (no inspect.Signature.bind per call)."""

    __slots__ = ("names", "var_positional", "skip_first")

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = [p.name for p in params if p.kind in positional]
        self.skip_first = bool(names) and names[0] in ("self", "cls")
        self.names = tuple(names[1:] if self.skip_first else names)
        self.var_positional = next((p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), "args")

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.skip_first and args:
            args = args[1:]
        names = self.names
        bound = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            bound[self.var_positional] = args[len(names) :]
        if kwargs:
            bound.update(kwargs)
        return bound


@overload
def trace(func: F) -> F: ...
@overload
def trace(
    func: None = None,
    *,
    name: Optional[str] = None,
    kind: str = "function",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Optional[Mapping[str, Any]] = None,
) -> Callable[[F], F]: ...
def trace(
    func: Optional[Callable[..., Any]] = None,
    *,
    name: Optional[str] = None,
    kind: str = "function",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Optional[Mapping[str, Any]] = None,
) -> Any:
    """Trace every call of a function as a span.

    Works with and without parentheses on functions, coroutines, generators, async generators,
    methods, static and class methods. The bound arguments (without self/cls) are the span's input,
    the return value its output; an exception marks the span as failed and is re-raised unchanged.
    Generator spans cover the whole iteration and end on exhaustion, close or error.
    """
    _check_kind(kind)
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError("name", f"expected a non-empty string, got {name!r}")
    static = _static_attributes(attributes)

    def decorate(target: Any) -> Any:
        if isinstance(target, (classmethod, staticmethod)):
            return type(target)(decorate(target.__func__))
        if not callable(target):
            raise ConfigError("trace", f"can only decorate a callable, got {type(target).__name__}")
        qualname = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target))
        span_name = name or qualname.rsplit("<locals>.", 1)[-1]  # "Class.method", not "outer.<locals>.f"
        return _wrap(target, span_name, kind, capture_input, capture_output, static)

    return decorate if func is None else decorate(func)


def _wrap(
    func: Callable[..., Any], name: str, kind: str, capture_input: bool, capture_output: bool, static: dict[str, Any]
) -> Callable[..., Any]:
    binder = _ArgumentBinder(func)
    rt = runtime

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[TraceSpan]:
        try:
            return _start_span(name, kind, static, binder.bind(args, kwargs) if capture_input else _MISSING)
        except Exception:
            log_internal_error("span start")
            return None

    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator(func, start, capture_output)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator(func, start, capture_output)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if rt.disabled:
                return await func(*args, **kwargs)
            span = start(args, kwargs)
            if span is None:
                return await func(*args, **kwargs)
            token = _attach(_set_span_in_context(span))
            try:
                result = await func(*args, **kwargs)
            except BaseException as error:
                _detach(token)
                _end_error(span, error)
                raise
            _detach(token)
            _end_ok(span, result, capture_output)
            return result

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if rt.disabled:
            return func(*args, **kwargs)
        span = start(args, kwargs)
        if span is None:
            return func(*args, **kwargs)
        token = _attach(_set_span_in_context(span))
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            _detach(token)
            _end_error(span, error)
            raise
        _detach(token)
        _end_ok(span, result, capture_output)
        return result

    return wrapper


def _detach_optional(token: Optional[object]) -> None:
    if token is not None:
        _detach(token)  # type: ignore[arg-type]


class _YieldCollector:
    """What a generator yielded, kept as text up to the payload limit; holds no references to items."""

    __slots__ = ("parts", "all_text", "kept", "count", "limit")

    def __init__(self, capture_output: bool) -> None:
        self.parts: list[tuple[bool, str]] = []  # (is raw text, text or JSON)
        self.all_text = True
        self.kept = 0
        self.count = 0
        self.limit = runtime.settings.max_payload_bytes if capture_output else -1

    def add(self, item: Any) -> None:
        self.count += 1
        if self.kept > self.limit:
            return
        if isinstance(item, str):
            self.parts.append((True, item))
            self.kept += len(item)
        else:
            text = to_json_bytes(item).decode("utf-8")
            self.parts.append((False, text))
            self.kept += len(text)
            self.all_text = False

    def output(self) -> str:
        if self.all_text and self.parts:
            return "".join(text for _, text in self.parts)  # streamed text reads best joined
        items = (orjson.dumps(text).decode("utf-8") if raw else text for raw, text in self.parts)
        return "[" + ",".join(items) + "]"

    def finish(self, span: TraceSpan, capture_output: bool) -> None:
        span.attributes["tracehouse.yield_count"] = self.count
        _end_ok(span, self.output() if capture_output else None, capture_output)


def _wrap_generator(
    func: Callable[..., Generator[Any, Any, Any]], start: Callable[..., Optional[TraceSpan]], capture_output: bool
) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if runtime.disabled:
            return (yield from func(*args, **kwargs))
        span = start(args, kwargs)
        if span is None:
            return (yield from func(*args, **kwargs))
        ctx = _set_span_in_context(span)
        collected = _YieldCollector(capture_output)
        gen = func(*args, **kwargs)
        step: Callable[[], Any] = gen.__next__
        while True:  # `yield from` by hand, so the span is current only while the generator runs
            token = _attach(ctx)
            try:
                item = step()
            except StopIteration as stop:
                _detach(token)
                collected.finish(span, capture_output)
                return stop.value
            except BaseException as error:
                _detach(token)
                _end_error(span, error)
                raise
            _detach(token)
            collected.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                token = _attach(ctx)
                try:
                    gen.close()
                except BaseException as error:
                    _detach(token)
                    _end_error(span, error)
                    raise
                _detach(token)
                collected.finish(span, capture_output)
                raise
            except BaseException as thrown:
                step = functools.partial(gen.throw, thrown)
            else:
                step = functools.partial(gen.send, sent)

    return wrapper


def _wrap_async_generator(
    func: Callable[..., AsyncGenerator[Any, Any]], start: Callable[..., Optional[TraceSpan]], capture_output: bool
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        # No `yield from` for async generators: asend/athrow/aclose are forwarded by hand, with the
        # span attached only while the wrapped generator runs. Disabled tracing takes the same path.
        span = None if runtime.disabled else start(args, kwargs)
        ctx = _set_span_in_context(span) if span is not None else None
        collected = _YieldCollector(capture_output)
        gen = func(*args, **kwargs)
        step: Callable[[], Any] = gen.__anext__
        while True:
            token = _attach(ctx) if ctx is not None else None
            try:
                item = await step()
            except StopAsyncIteration:
                if span is not None:
                    _detach_optional(token)
                    collected.finish(span, capture_output)
                return
            except BaseException as error:
                if span is not None:
                    _detach_optional(token)
                    _end_error(span, error)
                raise
            if span is not None:
                _detach_optional(token)
                collected.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                token = _attach(ctx) if ctx is not None else None
                try:
                    await gen.aclose()
                except BaseException as error:
                    if span is not None:
                        _detach_optional(token)
                        _end_error(span, error)
                    raise
                if span is not None:
                    _detach_optional(token)
                    collected.finish(span, capture_output)
                raise
            except BaseException as thrown:
                step = functools.partial(gen.athrow, thrown)
            else:
                step = functools.partial(gen.asend, sent)

    return wrapper


# The spans opened by SpanScope entries in this context (per thread and per asyncio task), innermost last.
_open_scopes: ContextVar[tuple[tuple[Any, Any, Any], ...]] = ContextVar("tracehouse_open_scopes", default=())


class SpanScope:
    """What `span()` returns: a (sync or async) context manager yielding the span.

    Entering it again (nested, or from several tasks) opens a new span each time; each exit ends
    the span its own entry opened.
    """

    def __init__(self, name: str, kind: str, payload: Any, static: dict[str, Any]) -> None:
        self._args = (name, kind, static, payload)

    def __enter__(self) -> Any:
        span: Any = NOOP_SPAN
        token = None
        if not runtime.disabled:
            try:
                name, kind, static, payload = self._args
                started = _start_span(name, kind, static, payload)
                if started is not None:
                    span, token = started, _attach(_set_span_in_context(started))
            except Exception:
                log_internal_error("span start")
        _open_scopes.set((*_open_scopes.get(), (self, span, token)))
        return span

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        stack = _open_scopes.get()
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] is self), None)
        if index is None:
            return
        _, span, token = stack[index]
        _open_scopes.set(stack[:index] + stack[index + 1 :])
        if type(span) is not TraceSpan:
            return
        _detach(token)
        if exc is not None:
            _end_error(span, exc)
        else:
            span.end()

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str,
    *,
    kind: str = "function",
    input: Any = _MISSING,
    attributes: Optional[Mapping[str, Any]] = None,
) -> SpanScope:
    """Open a span around a block: `with th.span("retrieve", kind="retriever", input=q) as s:`."""
    if not isinstance(name, str) or not name:
        raise ConfigError("name", f"expected a non-empty string, got {name!r}")
    return SpanScope(name, _check_kind(kind), input, _static_attributes(attributes))


def current_span() -> Any:
    """The span of the current context: a tracehouse span, any recording OTel span, or a no-op span."""
    current = otel_trace.get_current_span()
    if type(current) is TraceSpan:
        return current
    if current.is_recording() and current.get_span_context().is_valid:
        return ForeignSpan(runtime, current)
    return NOOP_SPAN
