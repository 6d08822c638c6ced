"""The LangChain callback handler behind `th.instrument_langchain()` (imports langchain-core: load
it only when instrumenting). Runs become spans nested as LangChain nests them; while a run is open
its span is the current one in the run's context; nothing here raises into LangChain."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from tracehouse import _semconv as sc
from tracehouse._internal_errors import log_internal_error
from tracehouse.integrations.langchain import record as lcr
from tracehouse.spans.decorator import _MISSING, _start_span
from tracehouse.spans.runtime import runtime
from tracehouse.spans.span import TraceSpan, unwind_ended


@dataclass
class _Run:
    span: TraceSpan
    token: Any  # None when the run's span was not made the current one
    parent: Optional[UUID]
    started: float  # time.monotonic()
    outer: Any  # the OpenTelemetry context the span was started in (its parent's)


def _detach_quietly(token: Any) -> bool:
    """Restore the context as it was before the run's span was attached; False for a token of
    another context (an async run ends in a copy of its context: see TraceSpan.restore_context)."""
    try:
        otel_context._RUNTIME_CONTEXT.detach(token)  # not otel_context.detach: it logs the expected miss
        return True
    except Exception:
        return False


class TracehouseCallbackHandler(BaseCallbackHandler):  # type: ignore[misc]
    """Turns LangChain callbacks into tracehouse spans; never raises into LangChain."""

    run_inline = True  # called in the run's own context, so its span can be the current one
    raise_error = False

    def __init__(self, orphan_after: float) -> None:
        super().__init__()
        self.enabled = True
        self.orphan_after = orphan_after
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()

    # --- bookkeeping ----------------------------------------------------------------------
    def _start(
        self, run_id: UUID, parent_run_id: Optional[UUID], name: str, kind: str, attributes: dict[str, Any]
    ) -> Optional[TraceSpan]:
        if not self.enabled or runtime.disabled:
            return None
        current = unwind_ended(otel_trace.get_current_span())
        in_a_run = isinstance(current, TraceSpan) and sc.LANGCHAIN_RUN_ID in current.attributes
        with self._lock:
            parent = self._runs.get(parent_run_id) if parent_run_id else None
            sibling = None
            if parent is None and in_a_run:
                sibling = self._runs.get(UUID(str(current.attributes[sc.LANGCHAIN_RUN_ID])))
        # Under its parent run's span; a top-level run started while another run's span is current
        # (batch) under that run's own parent; otherwise under the caller's current span.
        outer = (
            otel_trace.set_span_in_context(parent.span) if parent is not None
            else sibling.outer if sibling is not None else otel_context.get_current()
        )  # fmt: skip
        scope = otel_context.attach(outer)
        try:
            span = _start_span(name, kind, {sc.LANGCHAIN_RUN_ID: str(run_id), **attributes}, _MISSING)
        finally:
            otel_context.detach(scope)
        if span is None:
            return None
        # The span becomes the current one only when the run nests where the context is: under
        # its parent's span, or (a top-level run) under the caller's own code. Runs that start
        # interleaved (batch, streamed steps) get their parent from LangChain's ids alone, so the
        # context never holds a span whose run has ended.
        nests = current is parent.span if parent is not None else not in_a_run
        token = None
        if nests:
            token = otel_context.attach(otel_trace.set_span_in_context(span))
            span.restore_context = functools.partial(_detach_quietly, token)
        with self._lock:
            self._runs[run_id] = _Run(span, token, parent_run_id, time.monotonic(), outer)
        return span

    def _span(self, run_id: UUID) -> Optional[TraceSpan]:
        with self._lock:
            run = self._runs.get(run_id)
        return run.span if run else None

    def _end(self, run_id: UUID, error: Optional[BaseException] = None) -> Optional[TraceSpan]:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return None
        if run.token is not None:
            self._restore_context(run)
        if error is not None:
            run.span.fail(error)
        run.span.end()
        return run.span

    def _restore_context(self, run: _Run) -> None:
        """Detach the run's span if it is current here, with the spans of runs that ended while
        it was on top of them; otherwise the next span started in that context does it."""
        if otel_trace.get_current_span() is run.span and _detach_quietly(run.token):
            unwind_ended(otel_trace.get_current_span())

    def end_orphans(self, final: bool) -> None:
        """End runs LangChain left open: those whose parent run has ended, top-level ones open
        for over `orphan_after` seconds, and all of them when `final` (at exit)."""
        with self._lock:
            open_runs = dict(self._runs)
        now = time.monotonic()
        for run_id, run in open_runs.items():
            parent_gone = run.parent is not None and run.parent not in open_runs
            orphaned = parent_gone or (run.parent is None and now - run.started > self.orphan_after)
            if final or orphaned:
                run.span.attributes["tracehouse.orphaned"] = True
                self._end(run_id)

    def _safely(self, where: str, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except Exception:
            log_internal_error(f"langchain {where}")

    # --- chains, runnables, parsers, agents -------------------------------------------------
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, tags: Any = None, metadata: Any = None,
                       **kwargs: Any) -> None:  # fmt: skip
        def start() -> None:
            name = lcr.run_name(serialized, kwargs)
            span = self._start(run_id, parent_run_id, name, lcr.chain_kind(name, serialized, tags), {})
            if span is not None:
                span.set_input(inputs)

        self._safely("chain start", start)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            span = self._span(run_id)
            if span is not None:
                span.set_output(outputs)
            self._end(run_id)

        self._safely("chain end", end)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("chain error", self._end, run_id, error)

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("agent action", lcr.agent_event, self._span(run_id), "agent_action", action)

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("agent finish", lcr.agent_event, self._span(run_id), "agent_finish", finish)

    # --- models -----------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, tags: Any = None, metadata: Any = None,
                            **kwargs: Any) -> None:  # fmt: skip
        self._safely("chat model start", self._model_start, "chat", serialized, messages, run_id,
                     parent_run_id, metadata, kwargs)  # fmt: skip

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, tags: Any = None, metadata: Any = None,
                     **kwargs: Any) -> None:  # fmt: skip
        self._safely("llm start", self._model_start, "llm", serialized, prompts, run_id, parent_run_id,
                     metadata, kwargs)  # fmt: skip

    def _model_start(self, kind: str, serialized: Any, payload: Any, run_id: UUID,
                     parent_run_id: Optional[UUID], metadata: Any, kwargs: dict[str, Any]) -> None:  # fmt: skip
        model = lcr.model_name(serialized, metadata, kwargs)
        name = f"{kind} {model}" if model else lcr.run_name(serialized, kwargs)
        span = self._start(run_id, parent_run_id, name, kind, {})
        if span is not None:
            lcr.record_model_request(span, kind, model, payload, metadata, kwargs)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._span(run_id)
        if span is not None and sc.TTFT_MS not in span.attributes:
            self._safely("llm token", lcr.first_token, span)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            span = self._span(run_id)
            if span is not None:
                lcr.record_model_response(span, response, usage=not span.attributes.get(sc.USAGE_IN_CHILD))
            self._end(run_id)

        self._safely("llm end", end)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("llm error", self._end, run_id, error)

    # --- retrievers and tools ---------------------------------------------------------------
    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:  # fmt: skip
        def start() -> None:
            span = self._start(run_id, parent_run_id, lcr.run_name(serialized, kwargs), "retriever", {})
            if span is not None:
                span.set_input(query)

        self._safely("retriever start", start)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            span = self._span(run_id)
            if span is not None:
                lcr.record_documents(span, documents)
            self._end(run_id)

        self._safely("retriever end", end)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("retriever error", self._end, run_id, error)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, inputs: Any = None, **kwargs: Any) -> None:  # fmt: skip
        def start() -> None:
            span = self._start(run_id, parent_run_id, lcr.run_name(serialized, kwargs), "tool", {})
            if span is not None:
                span.set_input(inputs if inputs is not None else input_str)

        self._safely("tool start", start)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        def end() -> None:
            span = self._span(run_id)
            if span is not None:
                span.set_output(lcr.plain_output(output))
            self._end(run_id)

        self._safely("tool end", end)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._safely("tool error", self._end, run_id, error)


__all__ = ["TracehouseCallbackHandler"]
