"""Ingest throughput of the tracehouse collector, and of the SDK's sender against the stock OTLP exporter.

Run from the repository root::

    python bench/ingest.py                    # defaults: 200,000 spans per part (~1-2 min on 2 cores)
    python bench/ingest.py --spans 50000 --clients 2
    python bench/ingest.py --parts collector  # only part 1 (parts: collector, grpc, grpc-burst, mixed, sdk,
                                              # stock, stock-discard)

One real collector is started for the whole run: ``python -m tracehouse serve --port P --data-dir D``
in a subprocess, on a free loopback port, with a fresh data directory (embedded chDB), no API keys.
The run waits for ``/readyz``. Counts are read back through the collector's own
``POST /api/v1/query`` (``SELECT count() FROM spans WHERE project = ...``), so "stored" always means
"queryable by a user". What is measured:

1. Collector OTLP/HTTP ingest, end to end. ``--spans`` spans are pre-built (before the clock, in two
   worker processes) as protobuf ``ExportTraceServiceRequest`` bodies of ``--batch`` (512) spans: real
   SDK ``ReadableSpan``s from a ``TracerProvider`` + ``InMemorySpanExporter``, encoded with the stock
   ``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``. Each body is a fresh
   batch (distinct trace and span ids), traces of two spans (``rag.answer`` -> ``chat gpt-4o-mini``),
   every span with ``gen_ai.request.model``, ``gen_ai.system``, ``gen_ai.operation.name``, token
   counts and an ``input.value`` of ~190 characters (resource ``tracehouse.project=ingest``). One
   warm-up body (project ``warmup``) is posted first and not counted. ``--clients`` (4) threads of
   this process then POST the bodies over keep-alive ``http.client`` connections; a 503 is counted,
   its ``Retry-After`` honoured, and the body resent. The clock runs from the first request to the
   moment the count query returns N. Target >= 30,000 spans/s. The collector's ``/metrics`` before
   and after give the number of inserts and the time spent inside them.
2. SDK sender vs stock exporter, one fresh process each, one after the other, the same burst of
   ``--spans`` spans named ``chat`` carrying a ~190-character prompt, model and token counts:

   - ``tracehouse``: ``tracehouse.configure(endpoint=<collector>, data_dir=<tmp>, project="sdk")``,
     a ``@tracehouse.trace(kind="llm")`` function (input captured from its argument, usage set with
     ``current_span().set_usage``) called N times as fast as possible, ``tracehouse.flush()``, then
     the process polls the count of project ``sdk`` every 0.1 s until it is N (its background
     shipper keeps sending meanwhile). spans/s = N / (time from the first call until all N are
     queryable).
   - ``stock``: an SDK ``TracerProvider`` (resource ``tracehouse.project=stock``) with
     ``BatchSpanProcessor(OTLPSpanExporter(endpoint=<collector>/v1/traces))``, both with their
     defaults, N spans in a tight loop, ``provider.shutdown()``, then the count of project ``stock``
     is polled until it is N or has not grown for 10 s. spans/s = stored / (time from the first
     span until the final count was first seen); dropped = N - stored. The stock exporter drops
     spans under a burst (its queue holds 2,048): that is expected and reported, not hidden.
     No tracehouse module is imported in that process (checked).

   Target: tracehouse spans/s >= 5x the stock exporter's delivered spans/s, with 0 dropped.

   Reference, not a target (part ``stock-discard``): the same stock child pointed at a discard
   server (``_common.DiscardServer``) in this otherwise idle process, which answers 200 at once;
   spans are counted from the bodies it received, seconds end when ``provider.shutdown()`` returns.
   It shows the stock exporter's own ceiling, i.e. how much of its figure above is the collector's
   answer latency (the exporter sends one batch at a time and waits for each answer).
   Part ``mixed`` (``_ingest_mixed.py``): the same load (``--spans`` fresh spans, project ``mixed``)
   while one reader thread runs the dashboard's reads back to back (``/api/v1/ui/dashboard``,
   ``/api/v1/ui/traces``, ``/api/v1/latency`` by model, a SQL aggregate through ``/api/v1/query``).
   Targets: ingest >= 30,000 spans/s as in part 1, every read answered 200; read latency p50/p95/max
   reported (also per endpoint). The collector's peak RSS covers this load: target <= 500 MB.
3. Memory and CPU: peak RSS (``VmHWM`` of /proc/<pid>/status) of the collector, read just before it
   is stopped, and its split, sampled every 50 ms during parts 1 and mixed: peak private memory
   (``RssAnon``) and peak file-backed memory (``RssFile``, mostly chDB's library code pages); the peak RSS
   of each sender process and of this load generator (each reads its own); the collector's CPU seconds
   during part 1 (/proc/<pid>/stat). The collector is then stopped with
   SIGTERM and must exit with code 0.

Results are printed as a table with PASS/FAIL per target and written as JSON to
``bench/results/ingest.json`` (git-ignored).

Parts ``grpc`` and ``grpc-burst`` (``_ingest_grpc.py``, ``_ingest_paired.py``): part 1 over OTLP/gRPC on the
same collector, twice, then part 1 over HTTP once more (the order HTTP, gRPC, gRPC, HTTP, so that a drift of
the host or the store weighs on both sides alike; each run its own fresh spans; target: the mean gRPC
spans/s >= the mean HTTP spans/s, nothing lost), and the stock gRPC exporter under a burst of ``--spans``
spans with a queue big enough for all of them (target: 0 dropped). Each of part 1 and part grpc reports
the collector's peak RSS during that part (VmHWM reset before it).

The code is split by concern: ``_ingest_collector.py`` (the collector subprocess, counts and metrics),
``_ingest_workload.py`` (the spans and the pre-built OTLP bodies), ``_ingest_clients.py`` (part 1),
``_ingest_senders.py`` (part 2 and the child processes), ``_ingest_report.py`` (targets and report);
this file holds the command line and runs the parts in order.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from _common import machine_info, own_peak_rss_mb, parse_choices, proc_status_mb, progress, run_child, write_results
from _ingest_clients import part_collector
from _ingest_collector import CollectorProcess
from _ingest_grpc import reset_peak_rss
from _ingest_mixed import part_mixed
from _ingest_paired import part_grpc_paired
from _ingest_report import evaluate, report
from _ingest_senders import child_main, part_stock_discard, sender_argv
from _ingest_workload import prebuild

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
PARTS = ("collector", "grpc", "grpc-burst", "mixed", "sdk", "stock", "stock-discard")
VERSIONED_PACKAGES = ("tracehouse", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                      "opentelemetry-exporter-otlp-proto-grpc", "grpcio", "chdb", "clickhouse-connect", "fastapi",
                      "uvicorn")  # fmt: skip


def _prebuild_if(
    parts: list[str], part: str, args: argparse.Namespace, results: dict[str, Any]
) -> tuple[list[bytes], list[int]]:
    """The OTLP bodies of `part` (project "ingest" or "mixed", distinct span numbers), when it runs."""
    if part not in parts:
        return [], []
    project, first = {"collector": ("ingest", 0), "mixed": ("mixed", args.spans)}[part]
    progress(f"building {args.spans:,} spans of project {project} as OTLP bodies of {args.batch} (not timed) ...")
    t = time.perf_counter()
    built = prebuild(args.spans, args.batch, project=project, first=first)
    results[f"build_seconds_{part}"] = time.perf_counter() - t
    return built


def _guarded(function: Any, *args: Any) -> dict[str, Any]:
    """A part's results, or {"skipped": reason} when it raised (the other parts still run)."""
    try:
        result: dict[str, Any] = function(*args)
        return result
    except Exception as error:
        traceback.print_exc()
        return {"skipped": f"{type(error).__name__}: {error}"[:300]}


def parent_main(args: argparse.Namespace) -> int:
    """Start the collector, run the chosen parts one after the other, stop it, print the report, write the JSON."""
    parts = parse_choices(args.parts, PARTS, "part")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "spans": args.spans,
        "batch": args.batch,
        "clients": args.clients,
        "parts": parts,
        **machine_info(VERSIONED_PACKAGES),
    }
    with tempfile.TemporaryDirectory(prefix="th-bench-ingest-") as tmp:
        root = Path(tmp)
        collector = CollectorProcess(root / "collector")
        try:
            progress(f"starting the collector on {collector.url} ...")
            collector.start()
            bodies, sizes = _prebuild_if(parts, "collector", args, results)
            collector.wait_ready()
            results["collector_start_seconds"] = collector.start_seconds
            if "collector" in parts:
                progress(f"part 1: posting with {args.clients} client threads ...")
                rss_reset = reset_peak_rss(collector.process.pid)  # type: ignore[union-attr]
                collector.memory.reset()
                results["collector"] = _guarded(part_collector, collector, bodies, sizes, args.clients)
                results["collector"]["collector_memory"] = collector.memory.split()
                if rss_reset:
                    results["collector"]["collector_peak_rss_mb"] = collector.peak_rss_mb()
            bodies = []
            if "grpc" in parts:
                progress(f"part grpc: {args.clients} client threads calling TraceService/Export, ABBA with HTTP ...")
                results["grpc"] = _guarded(part_grpc_paired, collector, args.spans, args.batch, args.clients,
                                           results.get("collector"))  # fmt: skip
            if "grpc-burst" in parts:
                progress("part grpc-burst: the stock gRPC exporter, one burst ...")
                child_args = sender_argv("grpc-burst", f"{collector.url},{collector.grpc_port}", args.spans,
                                         root / "grpc-burst")  # fmt: skip
                results["grpc-burst"] = run_child(child_args, timeout=900)
            bodies, sizes = _prebuild_if(parts, "mixed", args, results)
            if "mixed" in parts:
                progress(f"part mixed: {args.clients} client threads posting, a reader looping the dashboard ...")
                collector.memory.reset()
                results["mixed"] = _guarded(part_mixed, collector, bodies, sizes, args.clients)
                results["mixed"]["collector_memory"] = collector.memory.split()
            bodies = []
            for part in ("sdk", "stock"):
                if part in parts:
                    progress(f"part 2: {part} sender ...")
                    child_args = sender_argv(part, collector.url, args.spans, root / part)
                    results[part] = run_child(child_args, env={"TRACEHOUSE_DISABLED": "0"}, timeout=900)
            if "stock-discard" in parts:
                progress("reference: stock exporter -> discard server ...")
                results["stock-discard"] = part_stock_discard(args.spans, root / "stock-discard")
            results["collector_peak_rss_mb"] = collector.peak_rss_mb()
            results["collector_current_rss_mb"] = proc_status_mb(collector.process.pid, "VmRSS")  # type: ignore[union-attr]
            progress("stopping the collector (SIGTERM) ...")
            results["collector_stop"] = collector.stop()
            if results["collector_stop"]["exit_code"] != 0:
                results["collector_log_tail"] = collector.log_tail()
        finally:
            collector.kill()
    results["load_generator_peak_rss_mb"] = own_peak_rss_mb()
    results["checks"] = evaluate(results)
    results["total_seconds"] = time.perf_counter() - started
    print(report(results))
    if results.get("collector_log_tail"):
        print("\ncollector log (tail):\n" + results["collector_log_tail"])
    write_results(results, args.out)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """The command line: the parent run, or with --child one sender process started by it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=200_000, help="spans per part (default 200,000)")
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request in part 1 (default 512)")
    parser.add_argument("--clients", type=int, default=4, help="client threads posting in part 1 (default 4)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts (default {','.join(PARTS)})")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--child", choices=("sdk", "stock", "stock-discard", "grpc-burst"), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.spans < 1 or args.batch < 1 or args.clients < 1:
        parser.error("--spans, --batch and --clients must be positive")
    if args.child:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
