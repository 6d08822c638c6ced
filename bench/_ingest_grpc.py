"""The OTLP/gRPC parts of bench/ingest.py, beside OTLP/HTTP on the same collector.

- ``grpc`` (one run; `_ingest_paired.py` runs it twice beside HTTP): part 1 over gRPC. Pre-built
  ``ExportTraceServiceRequest`` bodies like part 1's (their own project, ``grpc`` or ``grpc2``),
  sent by ``--clients`` threads as unary ``TraceService/Export`` calls on one grpcio channel each (the
  bytes as they are: grpcio's client, no re-encoding, as part 1 posts its bodies as they are). An
  UNAVAILABLE / RESOURCE_EXHAUSTED answer is counted, its RetryInfo delay honoured and the call resent.
  The clock runs from the first call until the count of the run's project is N.
- ``grpc-burst``: the stock exporter under a burst, in a fresh interpreter: an SDK ``TracerProvider`` with
  ``BatchSpanProcessor(OTLPSpanExporter())`` from opentelemetry-exporter-otlp-proto-grpc, its queue
  made big enough for the whole burst (``max_queue_size`` = N), N spans (default 200,000) in a tight
  loop, ``provider.force_flush()`` (with time enough: ``shutdown()`` alone drops what is still queued
  after 30 s) and ``provider.shutdown()``, then the count of project ``grpc-burst`` is polled until it is N or has
  not grown for 10 s; dropped = N - stored (target 0).

Before each gRPC run the collector is left to go idle (the last run's merges done, at most 60 s), so it does not
pay for the last run's leftovers. Each part's collector peak RSS is its own: the collector's VmHWM is reset
(``/proc/<pid>/clear_refs``, value 5) before the part and read after it.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

from _common import proc_cpu_seconds, proc_status_mb
from _ingest_clients import PostStats, quantile_ms
from _ingest_collector import CollectorProcess, collector_metrics, wait_for_count
from _ingest_workload import span_attributes

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BURST_QUIET_SECONDS = 10.0


def reset_peak_rss(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux; root or the same user); False where it cannot."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _retry_delay(error: Any) -> float:
    from google.rpc.error_details_pb2 import RetryInfo

    for key, value in error.trailing_metadata() or ():
        if key == "google.rpc.retryinfo-bin":
            delay = RetryInfo.FromString(value).retry_delay
            return float(delay.seconds + delay.nanos / 1e9)
    return 1.0


def call_bodies(port: int, bodies: list[bytes], clients: int) -> tuple[PostStats, float, float]:
    """Send every body as a TraceService/Export call from `clients` threads; (stats, start, end)."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    stats, next_index, go = PostStats(), itertools.count(), threading.Event()
    retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            go.wait()
            while (index := next(next_index)) < len(bodies):
                for _ in range(20):
                    sent = time.perf_counter()
                    try:
                        answer = export(bodies[index], timeout=120)
                    except grpc.RpcError as error:
                        with stats.lock:
                            stats.requests += 1
                            if error.code() in retryable:
                                stats.status_503 += 1
                            else:
                                stats.other_errors.append(f"{error.code()}: {error.details()}")
                        if error.code() not in retryable:
                            break
                        time.sleep(_retry_delay(error))
                        continue
                    rejected = ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans
                    with stats.lock:
                        stats.requests += 1
                        stats.latencies.append(time.perf_counter() - sent)
                        stats.rejected_spans += rejected
                    break
                else:
                    with stats.lock:
                        stats.failed_bodies += 1

    threads = [threading.Thread(target=client, name=f"grpc-client-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # every client has its channel and is parked on the event
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    return stats, started, time.perf_counter()


def settle(pid: int, limit: float = 60.0) -> float:
    """Wait (at most `limit` s) until the collector is idle (< 0.1 CPU s per s: the previous part's merges
    done), so parts run one after the other do not measure each other's leftovers; seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = proc_cpu_seconds(pid)
        time.sleep(1.0)
        after = proc_cpu_seconds(pid)
        if before is None or after is None or after - before < 0.1:
            break
    return time.perf_counter() - started


def part_grpc(
    collector: CollectorProcess, bodies: list[bytes], sizes: list[int], clients: int, project: str = "grpc"
) -> dict[str, Any]:
    """One gRPC run: the pre-built bodies (of `project`) over OTLP/gRPC until all their spans are queryable."""
    spans = sum(sizes)
    pid = collector.process.pid if collector.process is not None else 0
    settled = settle(pid)
    rss_reset = reset_peak_rss(pid)
    before = collector_metrics(collector.url)
    cpu_before = proc_cpu_seconds(pid)
    stats, started, sent = call_bodies(collector.grpc_port, bodies, clients)
    waited = wait_for_count(collector.url, project, spans, quiet_seconds=30.0, started=started)
    cpu_after = proc_cpu_seconds(pid)
    after = collector_metrics(collector.url)
    seconds = waited["seconds"]
    return {
        "spans": spans, "bodies": len(bodies), "batch": sizes[0], "clients": clients, "send_seconds": sent - started,
        "seconds": seconds, "spans_per_second": waited["stored"] / seconds if seconds > 0 else None,
        "stored": waited["stored"], "dropped": spans - waited["stored"], "requests": stats.requests,
        "status_503": stats.status_503, "other_errors": len(stats.other_errors),
        "error_samples": stats.other_errors[:5],
        "failed_bodies": stats.failed_bodies, "rejected_spans": stats.rejected_spans,
        "request_ms_p50": quantile_ms(stats.latencies, 0.5), "request_ms_p95": quantile_ms(stats.latencies, 0.95),
        "inserts": int(after.get("tracehouse_inserts_total", 0) - before.get("tracehouse_inserts_total", 0)),
        "collector_cpu_seconds": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        "collector_peak_rss_mb": proc_status_mb(pid, "VmHWM") if rss_reset else None, "settle_seconds": settled,
    }  # fmt: skip


def child_grpc_burst(endpoint: str, spans: int, data_dir: Path) -> dict[str, Any]:
    """The stock gRPC exporter behind a BatchSpanProcessor whose queue holds the whole burst."""
    import sys

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    http_url, grpc_port = endpoint.rsplit(",", 1)
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app", "tracehouse.project": "grpc-burst"}))
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True),
                                   max_queue_size=spans, max_export_batch_size=512)  # fmt: skip
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench.ingest")
    t0 = time.perf_counter()
    for i in range(spans):
        with tracer.start_as_current_span("chat", attributes=span_attributes(i)) as span:
            span.set_attribute(
                "output.value", "Rotate by creating a second key, deploying it, then revoking the first."
            )
    t1 = time.perf_counter()
    flushed = provider.force_flush(timeout_millis=900_000)  # shutdown() alone gives the queue 30 s, then drops it
    provider.shutdown()
    t2 = time.perf_counter()
    waited = wait_for_count(http_url, "grpc-burst", spans, quiet_seconds=BURST_QUIET_SECONDS, started=t0)
    return {
        "spans": spans, "loop_seconds": t1 - t0, "flush_seconds": t2 - t1, "seconds": waited["seconds"],
        "stored": waited["stored"], "dropped": spans - waited["stored"], "flushed": flushed,
        "spans_per_second": waited["stored"] / waited["seconds"] if waited["seconds"] > 0 else None,
        "tracehouse_imported": any(m == "tracehouse" or m.startswith("tracehouse.") for m in sys.modules),
    }  # fmt: skip


def grpc_checks(results: dict[str, Any], check: Any) -> None:
    """gRPC >= HTTP spans/s, nothing lost over gRPC, and the stock exporter's burst dropping nothing."""
    grpc_part = results.get("grpc")
    if grpc_part is not None:
        ok = "skipped" not in grpc_part
        rate = grpc_part.get("grpc_mean_spans_per_second") if ok else None
        http_rate = grpc_part.get("http_mean_spans_per_second")
        check("collector OTLP/gRPC spans/s vs OTLP/HTTP (ABBA means)", rate, f">= {http_rate or 0:,.0f} (HTTP)",
              None if rate is None or http_rate is None else rate >= http_rate)  # fmt: skip
        grpc_runs = [run for run in grpc_part["runs"] if run["protocol"] == "grpc"] if ok else []
        lost = sum(run["dropped"] + run["rejected_spans"] for run in grpc_runs) if ok else None
        check("collector OTLP/gRPC spans lost (dropped or rejected, both runs)", lost, "0",
              None if lost is None else lost == 0)  # fmt: skip
    burst = results.get("grpc-burst")
    if burst is not None:
        lost = burst.get("dropped")
        check("stock gRPC exporter burst: spans dropped", lost, "0", None if lost is None else lost == 0)


def grpc_rows(results: dict[str, Any], n: int, fmt_number: Any) -> list[list[str]]:
    """The report's rows of the gRPC parts."""
    rows: list[list[str]] = []
    part, burst = results.get("grpc"), results.get("grpc-burst")
    if part is not None:
        if "skipped" in part:
            rows.append(["collector OTLP/gRPC", *["-"] * 7, f"skipped: {part['skipped']}"])
        else:
            note = f"part 1's workload as unary Export calls, {part['clients']} client threads (1st gRPC run)"
            rows.append(["collector OTLP/gRPC", f"{n:,}", f"{part['stored']:,}", f"{part['dropped']:,}",
                         fmt_number(part["seconds"], 2), fmt_number(part["spans_per_second"], 0),
                         f"{part['status_503']:,}", fmt_number(part.get("collector_peak_rss_mb"), 1),
                         note])  # fmt: skip
    if burst is not None:
        if "skipped" in burst:
            rows.append(["stock gRPC exporter burst", *["-"] * 7, f"skipped: {burst['skipped']}"])
        else:
            note = (f"BatchSpanProcessor(max_queue_size={burst['spans']:,}); loop {burst['loop_seconds']:.2f} s, "
                    f"flush {burst['flush_seconds']:.2f} s; RSS = the sender's")  # fmt: skip
            rows.append(["stock gRPC exporter burst", f"{burst['spans']:,}", f"{burst['stored']:,}",
                         f"{burst['dropped']:,}", fmt_number(burst["seconds"], 2),
                         fmt_number(burst["spans_per_second"], 0), "-", fmt_number(burst.get("peak_rss_mb"), 1),
                         note])  # fmt: skip
    return rows
