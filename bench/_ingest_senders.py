"""Part 2 of bench/ingest.py: the SDK sender and the stock OTLP exporter, each in a fresh interpreter.

The children are started as ``python bench/ingest.py --child <kind> ...`` (`sender_argv`) and end with
`child_main`, which prints their result for the parent. Nothing here imports tracehouse or OpenTelemetry at
module level: the stock child checks that no tracehouse module was loaded in its process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from _common import DiscardServer, emit, own_peak_rss_mb, run_child
from _ingest_collector import wait_for_count
from _ingest_workload import MODEL, PROMPT, span_attributes

ENTRY = Path(__file__).resolve().with_name("ingest.py")
STOCK_QUIET_SECONDS = 10.0  # the stock exporter's count is final once it has not grown for this long
SDK_QUIET_SECONDS = 30.0  # the SDK sender retries with backoff: give it longer before calling it stuck


def sender_argv(kind: str, endpoint: str, spans: int, data_dir: Path) -> list[str]:
    """The arguments that run sender `kind` (sdk, stock, stock-discard) as a child of bench/ingest.py."""
    return [str(ENTRY), "--child", kind, "--endpoint", endpoint, "--spans", str(spans), "--data-dir", str(data_dir)]


def child_sdk(url: str, spans: int, data_dir: Path) -> dict[str, Any]:
    """The tracehouse SDK: @trace N calls, flush, wait until the collector holds them all."""
    import tracehouse
    from tracehouse.spans.runtime import runtime

    tracehouse.configure(endpoint=url, data_dir=str(data_dir), project="sdk")

    @tracehouse.trace(kind="llm", name="chat")
    def chat(prompt: str) -> str:
        tracehouse.current_span().set_usage(model=MODEL, input_tokens=180, output_tokens=42)
        return "Rotate by creating a second key, deploying it, then revoking the first."

    t0 = time.perf_counter()
    for i in range(spans):
        chat(PROMPT % i)
    t1 = time.perf_counter()
    flush_ok = tracehouse.flush()
    t2 = time.perf_counter()
    waited = wait_for_count(url, "sdk", spans, quiet_seconds=SDK_QUIET_SECONDS, started=t0)
    sink = runtime.sink()
    return {
        "spans": spans,
        "loop_seconds": t1 - t0,
        "flush_seconds": t2 - t1,
        "flush_ok": bool(flush_ok),
        "seconds": waited["seconds"],
        "stored": waited["stored"],
        "dropped": spans - waited["stored"],
        "sink_dropped": sink.dropped,
        "spans_per_second": waited["stored"] / waited["seconds"] if waited["seconds"] > 0 else None,
        "polls": waited["polls"],
    }


def child_stock(url: str, spans: int, data_dir: Path, poll: bool = True) -> dict[str, Any]:
    """The stock OTel SDK + BatchSpanProcessor + OTLP/HTTP exporter, all defaults.

    With `poll` false (the discard-server reference) nothing is counted here: the parent counts what
    its discard server received, and `seconds` ends when `provider.shutdown()` returns.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app", "tracehouse.project": "stock"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
    tracer = provider.get_tracer("bench.ingest")
    output = "Rotate by creating a second key, deploying it, then revoking the first."

    t0 = time.perf_counter()
    for i in range(spans):
        with tracer.start_as_current_span("chat", attributes=span_attributes(i)) as span:
            span.set_attribute("output.value", output)
    t1 = time.perf_counter()
    provider.shutdown()
    t2 = time.perf_counter()
    imported = any(m == "tracehouse" or m.startswith("tracehouse.") for m in sys.modules)
    if not poll:
        return {"spans": spans, "loop_seconds": t1 - t0, "flush_seconds": t2 - t1, "seconds": t2 - t0,
                "tracehouse_imported": imported}  # fmt: skip
    waited = wait_for_count(url, "stock", spans, quiet_seconds=STOCK_QUIET_SECONDS, started=t0)
    return {
        "spans": spans,
        "loop_seconds": t1 - t0,
        "flush_seconds": t2 - t1,
        "seconds": waited["seconds"],
        "stored": waited["stored"],
        "dropped": spans - waited["stored"],
        "spans_per_second": waited["stored"] / waited["seconds"] if waited["seconds"] > 0 else None,
        "polls": waited["polls"],
        "tracehouse_imported": imported,
    }


def child_main(args: argparse.Namespace) -> int:
    """The child process: run the sender `args.child` asks for and print its result (with its own peak RSS)."""
    try:
        data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="th-bench-"))
        if args.child == "sdk":
            result = child_sdk(args.endpoint, args.spans, data_dir)
        elif args.child == "grpc-burst":
            from _ingest_grpc import child_grpc_burst

            result = child_grpc_burst(args.endpoint, args.spans, data_dir)
        else:
            result = child_stock(args.endpoint, args.spans, data_dir, poll=args.child == "stock")
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    result["peak_rss_mb"] = own_peak_rss_mb()
    emit(result)
    return 0


def part_stock_discard(spans: int, data_dir: Path) -> dict[str, Any]:
    """The stock exporter against a discard server in this (idle) process: its ceiling without a store."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    server = DiscardServer().start()
    try:
        result = run_child(sender_argv("stock-discard", server.url, spans, data_dir), timeout=900)
        bodies = server.decoded_bodies()
    finally:
        server.stop()
    if "skipped" in result:
        return result
    received = 0
    for _, body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received += sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    result.update(stored=received, dropped=spans - received, requests=len(bodies),
                  spans_per_second=received / result["seconds"] if result["seconds"] > 0 else None)  # fmt: skip
    return result
