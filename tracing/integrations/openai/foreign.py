"""Other OpenTelemetry instrumentations of the `openai` client, so a call is traced once, not twice.

OpenTelemetry's openai-v2 (`opentelemetry-instrumentation-openai-v2`) marks itself on its instrumentor
(`OpenAIInstrumentor().is_instrumented_by_opentelemetry`, a singleton) and wraps the resource methods
with wrapt (`Completions.create` becomes a `FunctionWrapper` whose wrapper lives in its package).
OpenLLMetry's `opentelemetry-instrumentation-openai` wraps the same way. Either one found when
`instrument_openai()` runs: tracehouse does not wrap (their spans reach the store already). One that
wraps after tracehouse: its span is current when tracehouse's wrapper runs, and tracehouse defers to it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional

from opentelemetry import trace

from tracehouse.spans.span import TraceSpan

logger = logging.getLogger("tracehouse")

_WRAPPER_PACKAGES = ("opentelemetry.instrumentation.openai",)  # openai_v2 and OpenLLMetry's openai
_INSTRUMENTORS = (
    ("opentelemetry.instrumentation.openai_v2", "openai-v2 (opentelemetry-instrumentation-openai-v2)"),
    ("opentelemetry.instrumentation.openai", "OpenLLMetry (opentelemetry-instrumentation-openai)"),
)
_deferred_warned = False


def instrumented_by() -> Optional[str]:
    """The name of another instrumentation that already traces the openai client, else None."""
    for module_name, name in _INSTRUMENTORS:
        module = sys.modules.get(module_name)  # never imported here: only one the app loaded can be active
        instance = getattr(getattr(module, "OpenAIInstrumentor", None), "_instance", None)
        if instance is not None and getattr(instance, "is_instrumented_by_opentelemetry", False):
            return name
    try:
        from openai.resources.chat.completions import Completions
    except ImportError:
        return None
    wrapper = getattr(vars(Completions).get("create"), "_self_wrapper", None)  # a wrapt FunctionWrapper's
    package = str(getattr(wrapper, "__module__", "") or "")
    if package.startswith(_WRAPPER_PACKAGES):
        return package
    return None


def warn_not_instrumenting(name: str) -> None:
    """The one warning of an `instrument_openai()` that leaves the client to another instrumentation."""
    logger.warning(
        "tracehouse: the openai client is already traced by %s, whose spans tracehouse records; "
        "th.instrument_openai() does nothing, so each call gives one chat span, not two. To use tracehouse's "
        "instead, undo the other first (OpenAIInstrumentor().uninstrument()), then call th.instrument_openai().",
        name,
    )


def current_foreign_call() -> Optional[Any]:
    """The current span when it is another instrumentation's span of this same model call, else None."""
    span = trace.get_current_span()
    if type(span) is TraceSpan or not span.is_recording():
        return None
    attributes = getattr(span, "attributes", None)
    if getattr(span, "kind", None) is trace.SpanKind.CLIENT and attributes and "gen_ai.operation.name" in attributes:
        return span
    return None


def warn_deferring(span: Any) -> None:
    """Said once per process: another instrumentation wrapped the client after tracehouse did."""
    global _deferred_warned
    if _deferred_warned:
        return
    _deferred_warned = True
    scope = getattr(getattr(span, "instrumentation_scope", None), "name", "another instrumentation")
    logger.warning(
        "tracehouse: an openai call is already traced by %s (instrumented after th.instrument_openai()); "
        "tracehouse records that span and adds none of its own. Call th.uninstrument_openai() to silence "
        "this, or instrument only one of them.",
        scope,
    )
