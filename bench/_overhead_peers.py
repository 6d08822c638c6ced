"""The peers of `trace_overhead.py`: the same traced function, one tracer each, timed alike.

Each `peer_*` runs in a fresh interpreter (the parent starts one per peer): warm-up calls, then
`calls` timed calls plus the final flush, counting the spans each peer delivered where it delivers
them (an exporter that counts and discards, the spool, a discard OTLP server).
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

from _common import DiscardServer

Traced = Callable[[int], int]
Flush = Callable[[], Optional[bool]]
Counter = Callable[[], Optional[int]]


# ---------------------------------------------------------------------------------------------
# children: one peer per fresh interpreter
# ---------------------------------------------------------------------------------------------
def _measure(f: Traced, flush: Flush, exported: Counter, calls: int, warmup: int) -> dict[str, Any]:
    """Warm up, then time `calls` calls plus the final flush; count what was exported during them."""
    for i in range(warmup):
        f(i)
    flush()
    before = exported()
    gc.collect()
    t0 = time.perf_counter()
    for i in range(calls):
        f(i)
    t1 = time.perf_counter()
    flush_ok = flush()
    t2 = time.perf_counter()
    after = exported()
    count = None if before is None or after is None else after - before
    return {
        "calls": calls,
        "seconds": t2 - t0,
        "loop_seconds": t1 - t0,
        "flush_seconds": t2 - t1,
        "us_per_call": (t2 - t0) / calls * 1e6,
        "flush_ok": flush_ok is not False,
        "exported": count,
        "dropped": None if count is None else calls - count,
    }


def _counting_exporter(skip: Optional[Callable[[Any], bool]] = None) -> Any:
    """An OpenTelemetry SpanExporter that counts the spans it is given and discards them."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.count += len(spans) if skip is None else sum(1 for s in spans if not skip(s))
            return SpanExportResult.SUCCESS

    return CountingExporter()


def dir_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def peer_bare(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    def f(x: int) -> int:
        return x + 1

    return _measure(f, lambda: True, lambda: None, calls, warmup)


def peer_otel(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = _counting_exporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def f(x: int) -> int:
        with tracer.start_as_current_span("f"):
            return x + 1

    result = _measure(f, lambda: provider.force_flush(), lambda: exporter.count, calls, warmup)
    provider.shutdown()
    return result


def peer_tracehouse(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    import tracehouse
    from tracehouse.spans.runtime import runtime

    tracehouse.configure(data_dir=data_dir)
    disabled = tracehouse.get_settings().disabled

    @tracehouse.trace  # type: ignore[misc,untyped-decorator]  # mypy cannot resolve the editable install
    def f(x: int) -> int:
        return x + 1

    def written() -> Optional[int]:
        sink = runtime._sink  # do not create a sink when tracing is disabled
        return sink.written if sink is not None else 0

    result = _measure(f, lambda: tracehouse.flush(timeout=300), written, calls, warmup)
    sink = runtime._sink
    result["sink_dropped"] = sink.dropped if sink is not None else 0
    result["spool_bytes"] = dir_bytes(data_dir / "spool")
    result["disabled"] = disabled
    if disabled:
        result["dropped"] = None  # nothing is meant to be recorded
    elif result["sink_dropped"]:
        result["note"] = f"sink.dropped = {result['sink_dropped']}"
    return result


def peer_tracehouse_disabled(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    if os.environ.get("TRACEHOUSE_DISABLED") != "1":
        raise RuntimeError("the parent sets TRACEHOUSE_DISABLED=1 for this peer")
    result = peer_tracehouse(calls, warmup, data_dir)
    if not result["disabled"]:
        raise RuntimeError("TRACEHOUSE_DISABLED=1 did not disable tracing")
    return result


def peer_logfire(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    import logfire
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    def is_pending(span: Any) -> bool:  # Logfire can emit "pending" spans at span start: count finished spans only
        return (span.attributes or {}).get("logfire.span_type") == "pending_span"

    exporter = _counting_exporter(skip=is_pending)
    logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[BatchSpanProcessor(exporter)])

    @logfire.instrument
    def f(x: int) -> int:
        return x + 1

    return _measure(f, lambda: logfire.force_flush(), lambda: exporter.count, calls, warmup)


def peer_langfuse(calls: int, warmup: int, data_dir: Path) -> dict[str, Any]:
    server = DiscardServer().start()
    os.environ.update(
        LANGFUSE_HOST=server.url,
        LANGFUSE_BASE_URL=server.url,
        LANGFUSE_PUBLIC_KEY="pk-lf-bench",
        LANGFUSE_SECRET_KEY="sk-lf-bench",
        NO_PROXY="127.0.0.1,localhost",
    )
    from langfuse import get_client, observe
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    client = get_client()

    @observe
    def f(x: int) -> int:
        return x + 1

    def received_spans() -> Optional[int]:
        total = 0
        for path, body in server.decoded_bodies():
            if path.endswith("/traces"):
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                total += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        return total

    result = _measure(f, client.flush, received_spans, calls, warmup)
    total_spans = received_spans() or 0
    result["http_requests"] = server.requests
    result["export_bytes_per_span"] = server.bytes_received / total_spans if total_spans else None
    client.shutdown()
    server.stop()
    return result


PEER_FUNCS: dict[str, Callable[[int, int, Path], dict[str, Any]]] = {
    "bare": peer_bare,
    "otel": peer_otel,
    "tracehouse": peer_tracehouse,
    "tracehouse-disabled": peer_tracehouse_disabled,
    "logfire": peer_logfire,
    "langfuse": peer_langfuse,
}
