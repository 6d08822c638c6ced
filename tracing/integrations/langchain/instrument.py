"""`th.instrument_langchain()`: every LangChain run (chain, runnable, model, retriever, tool, agent) is a span.

Registered through langchain-core's configure hook, so every callback manager LangChain builds
gets tracehouse's handler next to the callbacks the user passes; nothing is monkey-patched. Runs
nest as LangChain nests them (by `parent_run_id`), and a top-level run nests under whatever span
is current (an `@trace` function). While a run is open its span is the current one in the run's
context, so code it calls (a traced function, the OpenAI client) nests under it.

When the OpenAI client is instrumented too, its span is the child of the LangChain model span and
carries the tokens and cost; the LangChain span then leaves them out, so sums do not count a call
twice. Runs LangChain never closes are ended by `th.flush()` once their parent run has ended, and
all of them at exit.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.spans.runtime import runtime


@dataclass
class LangChainInstrumentation:
    """What `instrument_langchain()` did; `uninstrument()` undoes it."""

    handler: Any
    hook: tuple[Any, ...]

    @property
    def active(self) -> bool:
        """True while LangChain runs are traced."""
        return bool(self.handler.enabled)

    def uninstrument(self) -> None:
        """Stop tracing LangChain runs (idempotent); open runs are ended."""
        global _active
        with _lock:
            from langchain_core.tracers import context as lc_context

            hooks = lc_context._configure_hooks
            if self.hook in hooks:
                hooks.remove(self.hook)
            self.handler.enabled = False
            self.handler.end_orphans(final=True)
            if self.handler.end_orphans in runtime.flush_hooks:
                runtime.flush_hooks.remove(self.handler.end_orphans)
            if _active is self:
                _active = None


_lock = threading.Lock()
_active: Optional[LangChainInstrumentation] = None


def instrument_langchain(orphan_after: float = 600.0) -> LangChainInstrumentation:
    """Trace every LangChain run in this process. Calling it again returns the same handle.

    A run LangChain never closes (a callback of the user's that raised before tracehouse's ran,
    say) is ended by `th.flush()` once its parent run has ended, or, for a top-level run, once it
    has been open for `orphan_after` seconds; every open run is ended at exit. Such spans carry
    `tracehouse.orphaned`.
    """
    global _active
    try:
        from langchain_core.tracers.context import register_configure_hook
    except ImportError as error:
        raise ConfigError(
            "langchain", "langchain-core is not installed: pip install 'tracehouse[langchain]'"
        ) from error
    with _lock:
        if _active is not None:
            _active.handler.orphan_after = orphan_after
            return _active
        from tracehouse.integrations.langchain.handler import TracehouseCallbackHandler

        handler = TracehouseCallbackHandler(orphan_after)
        variable: ContextVar[Any] = ContextVar("tracehouse_langchain_handler", default=handler)
        register_configure_hook(variable, True)
        from langchain_core.tracers import context as lc_context

        runtime.flush_hooks.append(handler.end_orphans)
        _active = LangChainInstrumentation(handler, lc_context._configure_hooks[-1])
        return _active


def uninstrument_langchain() -> None:
    """Undo `instrument_langchain()` (nothing happens when it is not instrumented)."""
    handle = _active
    if handle is not None:
        handle.uninstrument()
