"""The process-wide state behind the module-level API: settings, the exporter, the OTel provider."""

from __future__ import annotations

import atexit
import logging
import os
import random
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry import trace

from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse._version import VERSION
from tracehouse.exporters._records import Link, SpanRecord
from tracehouse.spans.config import Settings, default_settings, resolve_settings
from tracehouse.spans.resource import resource_attributes, sdk_resource

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    from tracehouse.exporters._sender import SpoolShipper
    from tracehouse.exporters._sink import SpoolSink
    from tracehouse.spans.span import TraceSpan

logger = logging.getLogger("tracehouse")
SCOPE = "tracehouse"
# model calls leave the process: OpenTelemetry's GenAI conventions make them CLIENT spans
CLIENT_KINDS = frozenset({"llm", "chat", "embedding"})
Listener = Callable[[SpanRecord], None]


class Runtime:
    """Owns the settings, the spool sink, and the link to OpenTelemetry's TracerProvider."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._settings: Optional[Settings] = None
        self._sink: Optional[SpoolSink] = None
        self._offline_sink: Optional[SpoolSink] = None  # runs in mode="offline": kept until `tracehouse sync`
        self._shipper: Optional[SpoolShipper] = None
        self._provider_ready = False
        self.foreign_processor: Optional[SpanProcessor] = None  # the user's own processors, when joined
        self.otlp_out: Optional[SpanProcessor] = None  # another OTLP backend that gets every span too
        self._otlp_from_env = False
        self._own_provider = False  # tracehouse installed the global TracerProvider (no app provider yet)
        self.listeners: list[Listener] = []
        # called first by flush (False) and shutdown (True): integrations end what they hold open
        self.flush_hooks: list[Callable[[bool], None]] = []
        self.active_run_id: Optional[str] = None  # th.init's run: spans started meanwhile carry its id
        self.disabled = False
        self._resource: dict[str, Any] = {}
        self._sdk_resource: Any = None
        self._app_resource: Optional[dict[str, Any]] = None  # the resource of the app's provider, once joined
        self._rand = random.Random()
        self.config_error: Optional[ConfigError] = None  # a bad environment value, reported once
        self._finalizer_pid = 0  # the process a multiprocessing Finalize was registered in

    # --- settings --------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._apply_environment()
        assert self._settings is not None
        return self._settings

    def _apply_environment(self) -> None:
        """Settings for a process that never called configure(); a bad variable disables tracing, once."""
        try:
            self.apply(resolve_settings())
        except ConfigError as error:
            logger.error("tracehouse is disabled: %s (fix the variable, or call tracehouse.configure())", error)
            self.apply(default_settings(disabled=True), config_error=error)

    def apply(self, settings: Settings, config_error: Optional[ConfigError] = None) -> None:
        """Switch to new settings; spans already ended are flushed under the old ones first."""
        with self._lock:
            old_sink, self._sink = self._sink, None
            old_offline, self._offline_sink = self._offline_sink, None
            old_shipper, self._shipper = self._shipper, None
            old_out, self.otlp_out = self.otlp_out, None
            self._settings = settings
            self.config_error = config_error
            self.disabled = settings.disabled
            self._resource = resource_attributes(settings.service_name, self._app_resource)
            self._sdk_resource = None
        for old in (old_sink, old_offline):  # outside the lock: other threads go on tracing meanwhile
            if old is not None:
                old.shutdown(settings.flush_timeout)
        if old_shipper is not None:
            old_shipper.stop(settings.flush_timeout)
        _stop_processor(old_out, settings.flush_timeout)
        if self._provider_ready:
            self._start_otlp_out()

    # --- ids -------------------------------------------------------------------------------------
    def new_trace_id(self) -> int:
        return self._rand.getrandbits(128) or 1

    def new_span_id(self) -> int:
        return self._rand.getrandbits(64) or 1

    # --- export ----------------------------------------------------------------------------------
    def sink(self) -> SpoolSink:
        sink = self._sink
        if sink is None:
            with self._lock:
                if self._sink is None:
                    from tracehouse.exporters._sink import SpoolSink

                    self._sink = SpoolSink(
                        self.settings.spool_dir, on_written=self._spool_written,
                        max_spool_bytes=self.settings.max_spool_bytes,
                    )  # fmt: skip
                    if "multiprocessing" in sys.modules and self._finalizer_pid != os.getpid():
                        # its worker processes leave through os._exit, so atexit hooks never run there;
                        # a Finalize registered now (after multiprocessing's own reset) does. Not tied
                        # to an object: a collected old sink must not shut the current one down.
                        from multiprocessing import util

                        util.Finalize(None, self.shutdown, exitpriority=100)
                        self._finalizer_pid = os.getpid()
                    if self.settings.endpoint:
                        self._start_shipper(self.settings)
                sink = self._sink
        return sink

    def offline_sink(self) -> SpoolSink:
        """The spool of offline runs (`offline_spool_dir`): neither read nor shipped until `sync()`."""
        sink = self._offline_sink
        if sink is None:
            with self._lock:
                if self._offline_sink is None:
                    from tracehouse.exporters._sink import SpoolSink

                    self.sink()  # registers the exit hooks that flush both
                    self._offline_sink = SpoolSink(
                        self.settings.offline_spool_dir, max_spool_bytes=self.settings.max_spool_bytes
                    )
                sink = self._offline_sink
        return sink

    def _spool_written(self, rows: int) -> None:
        shipper = self._shipper
        if shipper is not None:
            shipper.notify_written(rows)

    def _start_shipper(self, settings: Settings) -> None:
        from tracehouse.exporters._sender import CollectorClient, SpoolShipper

        assert settings.endpoint is not None
        client = CollectorClient(settings.endpoint, settings.api_key)
        self._shipper = SpoolShipper(settings.spool_dir, client, before_pass=self.flush)
        self._shipper.start()

    def on_end(self, span: TraceSpan) -> None:
        """Hand a finished TraceSpan to the exporter (and to the user's processors when joined)."""
        try:
            record = SpanRecord(
                span.project, span.name, span.trace_id, span.span_id, span.parent_span_id,
                span.start_ns, span.end_ns, span.status, span.status_message, span.attributes, span.events,
                "CLIENT" if span.kind in CLIENT_KINDS else "INTERNAL", SCOPE, self._resource, VERSION,
                span.trace_state.to_header() if span.trace_state else "", span.links,
            )  # fmt: skip
            self.submit(record)
            foreign, out = self.foreign_processor, self.otlp_out
            if foreign is not None or out is not None:
                readable = self._to_readable(span)
                if foreign is not None:
                    foreign.on_end(readable)
                if out is not None:
                    out.on_end(readable)
        except Exception:
            log_internal_error("span end")

    def submit(self, record: SpanRecord) -> None:
        self.sink().submit(record)
        for listener in self.listeners:
            try:
                listener(record)
            except Exception:
                log_internal_error("span listener")

    def _to_readable(self, span: TraceSpan) -> ReadableSpan:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, Status, StatusCode

        from tracehouse._semconv import KIND, OPENINFERENCE_KIND, OPENINFERENCE_KINDS

        parent = SpanContext(span.trace_id, span.parent_span_id, is_remote=False) if span.parent_span_id else None
        attributes = dict(span.attributes)
        attributes.setdefault(OPENINFERENCE_KIND, OPENINFERENCE_KINDS.get(str(attributes.get(KIND)), "CHAIN"))
        return ReadableSpan(
            name=span.name,
            context=span.get_span_context(),
            parent=parent,
            resource=self._sdk_resource or self._make_sdk_resource(),
            attributes=attributes,
            events=[Event(n, a, t) for n, t, a in span.events or ()],
            links=[_sdk_link(link) for link in span.links or ()],
            kind=trace.SpanKind.CLIENT if span.kind in CLIENT_KINDS else trace.SpanKind.INTERNAL,
            status=Status(
                (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR)[span.status], span.status_message or None
            ),
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=InstrumentationScope(SCOPE, VERSION),
        )

    def _make_sdk_resource(self) -> Any:
        self._sdk_resource = sdk_resource(self._resource)
        return self._sdk_resource

    def ensure_provider(self) -> None:
        """Join the user's SDK TracerProvider, or install ours, so other OTel spans reach the store."""
        if self._provider_ready:
            return
        with self._lock:
            if self._provider_ready:
                return
            self._provider_ready = True
            try:
                self._join_or_install_provider()
            except Exception:
                log_internal_error("TracerProvider set-up")
            self._start_otlp_out()

    def _start_otlp_out(self) -> None:
        """Start sending to another OTLP backend when one is configured (see exporters/_otlp_out.py)."""
        try:
            from tracehouse.exporters._otlp_out import otlp_processor, otlp_target

            settings = self.settings
            target = (
                None if self.disabled else otlp_target(settings.otlp_endpoint, self._own_provider, settings.endpoint)
            )
            processor = otlp_processor(target) if target is not None else None
            with self._lock:
                old, self.otlp_out = self.otlp_out, processor
                self._otlp_from_env = target is not None and target.from_environment
            _stop_processor(old, settings.flush_timeout)
        except Exception:
            log_internal_error("OTLP export set-up")

    def _join_or_install_provider(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider

        from tracehouse.exporters._otel import StoreSpanProcessor
        from tracehouse.spans import provider as providers

        processor = StoreSpanProcessor(self)
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            self._join(current, processor)
            return
        ours = providers.JoinableTracerProvider(sdk_resource(self._resource))
        ours.add_span_processor(processor)
        trace.set_tracer_provider(ours)
        other = trace.get_tracer_provider()
        if other is not ours:  # someone else won the race: join theirs
            if isinstance(other, TracerProvider):
                self._join(other, processor)
            return
        self._own_provider = True
        if not providers.watch_late_providers(self._late_provider):
            logger.warning(
                "tracehouse installed the global OpenTelemetry TracerProvider and cannot join one set later "
                "(OpenTelemetry will refuse it): %s", providers.LATE_PROVIDER_FIX,
            )  # fmt: skip

    def _join(self, provider: Any, processor: SpanProcessor) -> None:
        """Send our spans to the app's provider's processors too, record theirs, and take its resource."""
        provider.add_span_processor(processor)
        self._adopt(provider)

    def _adopt(self, provider: Any) -> None:
        self.foreign_processor = provider._active_span_processor
        with self._lock:
            self._app_resource = dict(provider.resource.attributes)
            self._resource = resource_attributes(self.settings.service_name, self._app_resource)
            self._sdk_resource = None

    def _late_provider(self, ours: Any, theirs: Any) -> bool:
        """The app set its TracerProvider after tracehouse installed one: make it the global one, joined."""
        from opentelemetry.sdk.trace import TracerProvider

        from tracehouse.spans import provider as providers

        if not isinstance(theirs, TracerProvider):
            logger.warning(
                "OpenTelemetry refused the TracerProvider your app set (%s): tracehouse installed one at its first "
                "span and can join only an opentelemetry-sdk TracerProvider. Its spans do not reach your "
                "exporters; %s", type(theirs).__qualname__, providers.LATE_PROVIDER_FIX,
            )  # fmt: skip
            return False
        self._adopt(theirs)
        self._own_provider = False
        if self._otlp_from_env:  # the app's exporters read the same variables: theirs send our spans now
            out, self.otlp_out = self.otlp_out, None
            _stop_processor(out, self.settings.flush_timeout)
        ours.join(theirs, keep=lambda processor: True)
        providers.make_global(theirs)
        logger.info("tracehouse joined the TracerProvider your app set after tracehouse's first span")
        return True

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Write every finished span to the spool (fsync'd); False if `timeout` ran out first."""
        self._run_flush_hooks(final=False)
        sink, offline = self._sink, self._offline_sink
        if sink is None:
            return True
        limit = self.settings.flush_timeout if timeout is None else timeout
        flushed = offline.flush(limit) if offline is not None else True
        flushed = sink.flush(limit) and flushed
        shipper = self._shipper
        if shipper is not None:
            shipper.wake()
        return flushed

    def stats(self) -> dict[str, int]:
        """Counters of this process's spool sinks and shipper (see `th.stats`)."""
        totals = {"queued": 0, "written": 0, "not_written_over_cap": 0, "dropped_disk_refused": 0,
                  "failed_writes": 0, "spool_bytes": 0, "shipped": 0}  # fmt: skip
        for sink in (self._sink, self._offline_sink):
            if sink is not None:
                for name, value in sink.stats().items():
                    totals[name] += value
        totals["max_spool_bytes"] = self.settings.max_spool_bytes
        shipper = self._shipper
        totals["shipped"] = shipper.shipped if shipper is not None else 0
        return totals

    def _run_flush_hooks(self, final: bool) -> None:
        for hook in list(self.flush_hooks):
            try:
                hook(final)
            except Exception:
                log_internal_error("flush hook")

    def shutdown(self) -> None:
        """Flush and close the spool, then give the collector (if any) one last bounded pass."""
        self._run_flush_hooks(final=True)
        out, self.otlp_out = self.otlp_out, None
        if out is not None:
            _stop_processor(out, self.settings.flush_timeout)
        sink, offline, shipper = self._sink, self._offline_sink, self._shipper
        for each in (offline, sink):
            if each is not None:
                each.shutdown(self.settings.flush_timeout)
        if shipper is not None:
            self._shipper = None
            shipper.stop(self.settings.flush_timeout)

    def after_fork_in_child(self) -> None:
        """A forked child gets its own spool segment and worker thread, and flushes when it exits."""
        self._lock = threading.RLock()
        inherited, self._sink = self._sink, None
        inherited_offline, self._offline_sink = self._offline_sink, None
        self._shipper = None  # its thread did not survive the fork
        for each in (inherited, inherited_offline):
            if each is not None:
                each.spool.abandon()  # the parent still writes that segment; its queue is the parent's
        self._rand = random.Random()


def _stop_processor(processor: Optional[SpanProcessor], timeout: float) -> None:
    """Send what a span processor holds (bounded by `timeout`), then shut it down."""
    if processor is None:
        return
    try:
        processor.force_flush(int(timeout * 1000))
        processor.shutdown()
    except Exception:
        log_internal_error("OTLP export shutdown")


runtime = Runtime()
atexit.register(runtime.shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=runtime.after_fork_in_child)


def _sdk_link(link: Link) -> Any:
    """A stored link as the OpenTelemetry SDK's `Link` (for the user's processors and OTLP export)."""
    from opentelemetry.trace import Link as OtelLink
    from opentelemetry.trace import SpanContext, TraceState

    state = TraceState.from_header([link.trace_state]) if link.trace_state else None
    return OtelLink(SpanContext(link.trace_id, link.span_id, is_remote=False, trace_state=state), link.attributes)
