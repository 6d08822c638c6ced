"""Streams of an instrumented OpenAI call: the user iterates them as always, the span is written at the end.

The proxies are wrapt ObjectProxies, so the caller still holds an `openai.Stream` / `openai.AsyncStream`
to `isinstance` and every attribute of it (`response`, ...) is there.

The proxy hands every chunk on unchanged (except the usage chunk tracehouse asked for itself), adds
each delta to its choice (text, and tool calls by index), notes the time to the first token, and
ends the span exactly once: when the stream is exhausted, fails, is closed, leaves its `with`
block, or is garbage-collected after the caller stopped reading it.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import wrapt

from tracehouse import _semconv as sc
from tracehouse._internal_errors import log_internal_error
from tracehouse.integrations.openai import record as rec
from tracehouse.spans.span import TraceSpan


class _Accumulator:
    """What the chunks of a stream add up to."""

    def __init__(self, span: TraceSpan, operation: str, hide_usage: bool) -> None:
        self.span = span
        self.operation = operation
        self.hide_usage = hide_usage  # tracehouse added stream_options.include_usage: the user did not ask
        self.started_ns = span.start_ns
        self.first_token_ns = 0
        self.texts: dict[int, list[str]] = {}
        self.tools: dict[int, dict[int, dict[str, Any]]] = {}
        self.finish: dict[int, Any] = {}
        self.usage: Any = None
        self.completed: Any = None  # the Responses API's final response
        self.response_text: list[str] = []
        self.ended = False

    def add(self, chunk: Any) -> bool:
        """Take in one chunk; True when the user must not see it (the usage chunk they did not ask for)."""
        if self.operation == "responses":
            self._add_event(chunk)
            return False
        if rec.RESPONSE_ID not in self.span.attributes:  # every chunk repeats the id and model
            rec._identity(self.span, chunk)
        choices = getattr(chunk, "choices", None) or []
        for choice in choices:
            index = getattr(choice, "index", 0) or 0
            delta = getattr(choice, "delta", None)
            text = getattr(delta, "content", None) if delta is not None else getattr(choice, "text", None)
            if text:
                self._first_token()
                self.texts.setdefault(index, []).append(text)
            for call in (getattr(delta, "tool_calls", None) or []) if delta is not None else []:
                self._first_token()
                slot = self.tools.setdefault(index, {}).setdefault(getattr(call, "index", 0) or 0, {})
                function = getattr(call, "function", None)
                if getattr(call, "id", None):
                    slot["id"] = call.id
                if function is not None and getattr(function, "name", None):
                    slot["name"] = function.name
                if function is not None and getattr(function, "arguments", None):
                    slot["arguments"] = slot.get("arguments", "") + function.arguments
            if getattr(choice, "finish_reason", None):
                self.finish[index] = choice.finish_reason
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
            return self.hide_usage and not choices
        return False

    def take(self, chunk: Any) -> bool:
        """`add`, never raising into the caller's iteration (a recording bug shows the chunk)."""
        try:
            return self.add(chunk)
        except Exception:
            log_internal_error("openai stream chunk")
            return False

    def _add_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self._first_token()
            self.response_text.append(getattr(event, "delta", "") or "")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.completed = getattr(event, "response", None)

    def _first_token(self) -> None:
        if not self.first_token_ns:
            self.first_token_ns = time.time_ns()

    def finish_span(self, error: Optional[BaseException], how: str) -> None:
        """Write what the stream held and end the span; only the first call does anything."""
        if self.ended:
            return
        self.ended = True
        span = self.span
        try:
            if self.first_token_ns:
                span.attributes[sc.TTFT_MS] = (self.first_token_ns - self.started_ns) / 1e6
            if how != "exhausted":
                span.attributes["tracehouse.stream.end"] = how
            if self.operation == "responses":
                self._write_responses()
            else:
                self._write_choices()
            if error is not None:
                rec.record_error(span, error)
        except Exception:
            log_internal_error("openai stream")
        finally:
            span.end()

    def _write_choices(self) -> None:
        indexes = sorted(set(self.texts) | set(self.tools) | set(self.finish))
        messages = []
        for i in indexes:
            calls = [
                {"id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("arguments", "")}}
                for _, c in sorted(self.tools.get(i, {}).items())
            ]
            messages.append(rec.choice_message("".join(self.texts.get(i, [])) or None, calls, self.finish.get(i)))
        rec.record_output(self.span, messages, rec.output_text(messages))
        rec.record_chat_usage(self.span, self.usage)

    def _write_responses(self) -> None:
        if self.completed is not None:
            rec.record_responses_response(self.span, self.completed)
        else:
            text = "".join(self.response_text)
            rec.record_output(self.span, [{"role": "assistant", "parts": rec._parts(text)}], text)


class StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Wraps `openai.Stream` as wrapt's ObjectProxy: `isinstance(x, openai.Stream)` holds, every attribute
    (`response`, ...) is the stream's; iteration records, and the span ends exactly once."""

    def __init__(self, stream: Any, accumulator: _Accumulator) -> None:
        super().__init__(stream)
        self._self_acc = accumulator

    def __del__(self) -> None:
        _abandoned(self._self_acc)

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = next(self.__wrapped__)
            except StopIteration:
                self._self_acc.finish_span(None, "exhausted")
                raise
            except BaseException as error:
                self._self_acc.finish_span(error, "error")
                raise
            if not self._self_acc.take(chunk):
                return chunk

    def close(self) -> None:
        """Close the underlying stream (its HTTP response) and end the span."""
        try:
            self.__wrapped__.close()
        finally:
            self._self_acc.finish_span(None, "closed")

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """Wraps `openai.AsyncStream` the same way (`isinstance(x, openai.AsyncStream)` holds)."""

    def __init__(self, stream: Any, accumulator: _Accumulator) -> None:
        super().__init__(stream)
        self._self_acc = accumulator

    def __del__(self) -> None:
        _abandoned(self._self_acc)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_acc.finish_span(None, "exhausted")
                raise
            except BaseException as error:
                self._self_acc.finish_span(error, "error")
                raise
            if not self._self_acc.take(chunk):
                return chunk

    async def close(self) -> None:
        """Close the underlying stream and end the span."""
        try:
            await self.__wrapped__.close()
        finally:
            self._self_acc.finish_span(None, "closed")

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


def _abandoned(accumulator: _Accumulator) -> None:
    """A proxy collected before its stream ended: the caller stopped reading, the span ends now."""
    try:
        accumulator.finish_span(None, "abandoned")
    except Exception:  # interpreter shutdown: nothing left to write to
        pass


def accumulator(span: TraceSpan, operation: str, hide_usage: bool) -> _Accumulator:
    """A fresh accumulator for one stream."""
    return _Accumulator(span, operation, hide_usage)
