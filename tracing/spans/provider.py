"""tracehouse and the app's OpenTelemetry TracerProvider: joined, whichever is set first.

- The app set its SDK provider first: tracehouse adds its processor to it and takes its resource.
- Nobody had: tracehouse installs `JoinableTracerProvider`, so other instrumentations' spans are
  recorded too. When the app sets its own provider later, OpenTelemetry would refuse it (a global
  provider is set once) and the app would silently lose its own export; instead tracehouse's provider
  gives way: the app's becomes the global one, the tracers handed out before start their spans on it,
  and tracehouse's processors are added to it. A provider tracehouse cannot join (not the SDK's) gets
  one warning naming the fix.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

if TYPE_CHECKING:
    from opentelemetry.util.types import Attributes

logger = logging.getLogger("tracehouse")

LATE_PROVIDER_FIX = (
    "set your TracerProvider before tracehouse's first span or th.configure(), or add your span processors "
    "to the one in place: trace.get_tracer_provider().add_span_processor(...)"
)


class JoinableTracerProvider(TracerProvider):
    """tracehouse's global provider: an SDK provider of its own until the app sets one, then a proxy to that."""

    def __init__(self, resource: Any) -> None:
        super().__init__(resource=resource)
        self._lock_join = threading.Lock()
        self.app_provider: Optional[TracerProvider] = None
        self._processors: list[SpanProcessor] = []  # what was added to this provider, moved on join

    @property
    def resource(self) -> Any:
        app = self.app_provider
        return app.resource if app is not None else self._resource

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: Optional[str] = None,
        schema_url: Optional[str] = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _JoinableTracer(self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes))

    def real_tracer(self, key: tuple[Any, ...]) -> trace.Tracer:
        """The tracer spans start on now: this provider's own, or the app's once joined."""
        app = self.app_provider
        if app is not None:
            return app.get_tracer(*key)
        return super().get_tracer(*key)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        with self._lock_join:
            app = self.app_provider
            if app is None:
                self._processors.append(span_processor)
                super().add_span_processor(span_processor)
                return
        app.add_span_processor(span_processor)

    def join(self, app: TracerProvider, keep: Callable[[SpanProcessor], bool]) -> None:
        """Become a proxy to `app`: processors added here that `keep` accepts are added to it."""
        with self._lock_join:
            self.app_provider = app
            moved, self._processors = self._processors, []
        for processor in moved:
            if keep(processor):
                app.add_span_processor(processor)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flushed = super().force_flush(timeout_millis)
        app = self.app_provider
        return (app.force_flush(timeout_millis) if app is not None else True) and flushed

    # shutdown() is this provider's own: the app's provider is the app's to shut down (its exit hook does)


class _JoinableTracer(trace.Tracer):
    """A tracer of `JoinableTracerProvider`: each span starts on whichever provider is in force."""

    def __init__(self, provider: JoinableTracerProvider, key: tuple[Any, ...]) -> None:
        self._provider = provider
        self._key = key
        self._cached: tuple[Any, trace.Tracer] = (None, provider.real_tracer(key))

    def _tracer(self) -> trace.Tracer:
        app = self._provider.app_provider
        owner, tracer = self._cached
        if owner is not app:
            tracer = self._provider.real_tracer(self._key)
            self._cached = (app, tracer)
        return tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


OnLateProvider = Callable[[JoinableTracerProvider, Any], bool]


def watch_late_providers(on_late: OnLateProvider) -> bool:
    """Route `trace.set_tracer_provider` through `on_late` while tracehouse's provider is the global one.

    `on_late(ours, theirs)` returns True when it took the provider (then OpenTelemetry is not asked, so
    it does not refuse it). False when the API has no hook point (then a late provider cannot be joined).
    """
    import opentelemetry.trace as api

    original = getattr(api, "_set_tracer_provider", None)
    if original is None:
        return False
    if getattr(original, "__tracehouse__", False):
        return True

    def _set_tracer_provider(tracer_provider: Any, log: bool) -> None:
        current = getattr(api, "_TRACER_PROVIDER", None)
        if (
            isinstance(current, JoinableTracerProvider)
            and current.app_provider is None
            and tracer_provider is not current
            and on_late(current, tracer_provider)
        ):
            return
        original(tracer_provider, log)

    _set_tracer_provider.__tracehouse__ = True  # type: ignore[attr-defined]
    api._set_tracer_provider = _set_tracer_provider
    return True


def make_global(provider: Any) -> None:
    """Put `provider` in the global slot OpenTelemetry already filled with tracehouse's (the join)."""
    import opentelemetry.trace as api

    api._TRACER_PROVIDER = provider
