"""Tracing overhead of tracehouse against its peers, plus import time, ingest rate and query latency.

Run from the repository root::

    python bench/trace_overhead.py                     # defaults: 200,000 calls, 1,000,000-span store
    python bench/trace_overhead.py --calls 50000 --spans-1m 200000
    python bench/trace_overhead.py --only otel,tracehouse --skip-store

What is measured (each item in its own fresh interpreter, one at a time):

1. Wall time per call of ``def f(x): return x + 1`` called ``--calls`` times, traced by each peer,
   after ``--warmup`` calls. The clock covers the calls AND the flush of everything the tracer
   buffered, so deferred export work is paid inside the measurement. Spans are counted where each
   peer delivers them, and ``dropped = calls - exported``.

   - ``bare``: no tracing.
   - ``otel``: raw OpenTelemetry SDK, ``tracer.start_as_current_span("f")`` per call, a default
     ``BatchSpanProcessor`` and an exporter that counts and discards; ``provider.force_flush()``.
   - ``tracehouse``: ``@tracehouse.trace``, ``configure(data_dir=<temp dir>)``, ``tracehouse.flush()``
     (spans fsync'd in the spool); exported = ``runtime.sink().written`` delta, plus ``sink.dropped``.
   - ``tracehouse-disabled``: the same with ``TRACEHOUSE_DISABLED=1`` (target < 1 us per call).
   - ``logfire``: ``@logfire.instrument``, ``configure(send_to_logfire=False, console=False)`` and a
     counting exporter behind a default ``BatchSpanProcessor``; ``logfire.force_flush()``.
   - ``langfuse``: ``@observe`` exporting OTLP/HTTP to a discard server on 127.0.0.1 started in the
     same process (it answers 200 ``{}``; bodies are decoded and counted after the clock stops);
     ``get_client().flush()``.

   Peers run with their default capture settings: tracehouse and Langfuse record the arguments and
   the return value, Logfire records the arguments, the raw OTel span records nothing.
2. ``import tracehouse`` time: ``time.perf_counter`` around the import in a fresh interpreter,
   median of 5 (target < 150 ms), and the slowest modules it pulls in (``-X importtime``).
3. Spool -> store ingest: the spool the ``tracehouse`` peer wrote (calls + warm-up spans) is
   ingested by ``tracehouse.sync()`` in another process; the store is opened first
   (``tracehouse.reads.reading.get_store()``) so its ~1 s open time is reported apart from rows/s.
4. Latency queries over ``--spans-1m`` synthetic span rows inserted with one ``INSERT ... SELECT
   FROM numbers(N)`` into a fresh embedded store, spread over the last 6 days:
   ``tracehouse.latency(by="name", since="7d")`` and ``latency(by="model", since="7d")``, median of 5;
   ``tracehouse.query(<p95 by model over 7 days>)`` (free SQL: the guard, then a ``readonly=1``
   session with limits), median of 5; then the same latency and SQL calls from a second process on
   the same data dir, which goes through the first (the store's owner) over loopback.
5. Peak RSS of every child.

Then the ratios tracehouse / otel (target <= 0.7), / logfire, / langfuse, and PASS/FAIL for:
ratio <= 0.7, zero spans dropped by tracehouse, disabled < 1 us/call, import < 150 ms. Results are
also written as JSON to ``bench/results/trace_overhead.json``. A peer that cannot be imported or run
is reported as ``skipped: <reason>``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from _common import (
    DiscardServer,
    emit,
    finish,
    fmt_number,
    machine_info,
    median,
    parse_choices,
    peak_rss_mb,
    progress,
    render_table,
    run_child,
)

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "trace_overhead.json"
PEERS = ("bare", "otel", "tracehouse", "tracehouse-disabled", "logfire", "langfuse")
TARGET_RATIO = 0.7
TARGET_DISABLED_US = 1.0
TARGET_IMPORT_MS = 150.0
IMPORT_RUNS = 5
QUERY_RUNS = 5

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


def _dir_bytes(path: Path) -> int:
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
    result["spool_bytes"] = _dir_bytes(data_dir / "spool")
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


def task_ingest(data_dir: Path) -> dict[str, Any]:
    """Ingest an existing spool into the embedded store, timing store open and sync() apart."""
    import tracehouse
    from tracehouse.reads.reading import get_store

    tracehouse.configure(data_dir=data_dir)
    spool_bytes = _dir_bytes(data_dir / "spool")
    t0 = time.perf_counter()
    store = get_store()
    t1 = time.perf_counter()
    report = tracehouse.sync()
    t2 = time.perf_counter()
    _, rows = store.query_rows("SELECT count() FROM spans")
    return {
        "rows": report.rows,
        "rows_in_store": int(rows[0][0]),
        "rejected": report.rejected,
        "problems": report.problems[:5],
        "spool_bytes": spool_bytes,
        "open_seconds": t1 - t0,
        "sync_seconds": t2 - t1,
        "rows_per_second": report.rows / (t2 - t1) if t2 > t1 else None,
    }


_SYNTHETIC_SPANS_SQL = """
INSERT INTO spans (project, trace_id, span_id, name, kind, start_time, end_time, duration_ms, status, model,
                   input_tokens, output_tokens)
SELECT
    'default',
    lower(hex(generateUUIDv4(number))),
    lower(substring(hex(generateUUIDv4(number + 1)), 1, 16)),
    concat('step_', toString(number % 25)),
    if(model = '', 'function', 'llm'),
    start_time,
    addMicroseconds(start_time, toInt64(duration_ms * 1000)),
    duration_ms,
    if(number % 97 = 0, 'error', 'ok'),
    model,
    if(model = '', NULL, cityHash64(number) % 4000),
    if(model = '', NULL, cityHash64(number, 1) % 800)
FROM (
    SELECT
        number,
        subtractMilliseconds(now64(9, 'UTC'), number * {step_ms}) AS start_time,
        round(pow((cityHash64(number, 2) % 10000) / 10000.0, 3) * 5000, 3) AS duration_ms,
        ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'llama-3.1-70b', ''][number % 5 + 1] AS model
    FROM numbers({rows})
)
"""


SQL_P95 = (
    "SELECT model, quantile(0.95)(duration_ms) AS p95_ms, count() AS n FROM spans "
    "WHERE project = 'default' AND start_time >= now() - INTERVAL 7 DAY GROUP BY model ORDER BY p95_ms DESC"
)
_VIA_OWNER = """
import json, sys, time
from statistics import median
import tracehouse
tracehouse.configure(data_dir=sys.argv[1])
out = {}
for label, call in (("latency_by_name", lambda: tracehouse.latency(by="name", since="7d")),
                    ("sql", lambda: tracehouse.query(sys.argv[2]))):
    times = []
    for _ in range(int(sys.argv[3]) + 1):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    out[label] = {"median_ms": median(times[1:]) * 1e3, "first_ms": times[0] * 1e3, "min_ms": min(times[1:]) * 1e3}
print(json.dumps(out))
"""


def _timed(call: Any) -> dict[str, Any]:
    times = []
    for _ in range(QUERY_RUNS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"median_ms": median(times) * 1e3, "first_ms": times[0] * 1e3, "min_ms": min(times) * 1e3}


def task_query(data_dir: Path, rows: int) -> dict[str, Any]:
    """Insert `rows` synthetic spans into a fresh store and time tracehouse.latency() over them."""
    import tracehouse
    from tracehouse.reads.reading import get_store

    tracehouse.configure(data_dir=data_dir)
    t0 = time.perf_counter()
    store = get_store()
    t1 = time.perf_counter()
    step_ms = max(1, 6 * 86_400_000 // max(rows, 1))  # spread over the last 6 days
    store.client.command(_SYNTHETIC_SPANS_SQL.format(step_ms=step_ms, rows=rows))
    t2 = time.perf_counter()
    _, counted = store.query_rows("SELECT count() FROM spans")
    result: dict[str, Any] = {
        "rows": int(counted[0][0]),
        "open_seconds": t1 - t0,
        "insert_seconds": t2 - t1,
    }
    for by in ("name", "model"):
        times, groups, spans = [], 0, 0
        for _ in range(QUERY_RUNS):
            start = time.perf_counter()
            frame = tracehouse.latency(by=by, since="7d")
            times.append(time.perf_counter() - start)
            groups, spans = len(frame), int(frame["count"].sum())
        result[f"latency_by_{by}"] = {
            "median_ms": median(times) * 1e3,
            "first_ms": times[0] * 1e3,
            "min_ms": min(times) * 1e3,
            "groups": groups,
            "spans": spans,
        }
    result["sql"] = _timed(lambda: tracehouse.query(SQL_P95))
    routed = subprocess.run([sys.executable, "-c", _VIA_OWNER, str(data_dir), SQL_P95, str(QUERY_RUNS)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    if routed.returncode == 0:
        result["via_owner"] = json.loads(routed.stdout.strip().splitlines()[-1])
    else:
        result["via_owner"] = {"skipped": (routed.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return result


def child_main(args: argparse.Namespace) -> int:
    """Entry point of a child process: run one peer or task and emit its JSON result."""
    try:
        data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="th-bench-"))
        if args.peer:
            result = PEER_FUNCS[args.peer](args.calls, args.warmup, data_dir)
        elif args.task == "ingest":
            result = task_ingest(data_dir)
        else:
            result = task_query(data_dir, args.spans_1m)
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    result["peak_rss_mb"] = peak_rss_mb()
    emit(result)
    return 0


# ---------------------------------------------------------------------------------------------
# parent: orchestration, import time, report
# ---------------------------------------------------------------------------------------------
_IMPORT_SNIPPET = "import time; t = time.perf_counter(); import tracehouse; print(time.perf_counter() - t)"


def measure_import() -> dict[str, Any]:
    """`import tracehouse` in fresh interpreters: median of IMPORT_RUNS, and its heaviest direct imports."""
    times = []
    for _ in range(IMPORT_RUNS):
        proc = subprocess.run([sys.executable, "-c", _IMPORT_SNIPPET], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return {"skipped": lines[-1] if lines else f"exit code {proc.returncode}"}
        times.append(float(proc.stdout.strip().splitlines()[-1]) * 1e3)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tracehouse"], capture_output=True, text=True, check=False
    )
    return {
        "median_ms": median(times),
        "runs_ms": times,
        "heaviest_imports_ms": [[module, round(ms, 1)] for ms, module in _heaviest_dependencies(proc.stderr)[:6]],
    }


def _heaviest_dependencies(importtime_log: str) -> list[tuple[float, str]]:
    """From `-X importtime` output: (cumulative ms, module) of the non-tracehouse modules tracehouse imports.

    Lines come in post-order (children before their parent), indented two spaces per level; the
    parent of an entry is the next entry with a smaller depth.
    """
    entries: list[tuple[int, str, int]] = []  # (depth, module, cumulative us)
    for line in importtime_log.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth == 0 and name.strip() != "tracehouse":
            entries = []  # an import before tracehouse (interpreter start-up): not ours
            continue
        entries.append((depth, name.strip(), int(parts[1])))
        if depth == 0:
            break
    found = []
    for i, (depth, module, cumulative) in enumerate(entries):
        parent = next((m for d, m, _ in entries[i + 1 :] if d < depth), "")
        if not module.startswith("tracehouse") and parent.startswith("tracehouse"):
            found.append((cumulative / 1e3, module))
    return sorted(found, reverse=True)


def _child_args(args: argparse.Namespace, *extra: str) -> list[str]:
    return [str(HERE), "--calls", str(args.calls), "--warmup", str(args.warmup), *extra]


def _fmt_int(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"


def _fmt_check(value: Any) -> str:
    if value is None:
        return "n/a"
    return fmt_number(value, 3) if isinstance(value, float) else str(value)


def _ratio(peers: dict[str, dict[str, Any]], other: str) -> Optional[float]:
    mine, theirs = peers.get("tracehouse", {}), peers.get(other, {})
    if "us_per_call" not in mine or "us_per_call" not in theirs:
        return None
    return float(mine["us_per_call"] / theirs["us_per_call"])


def report(results: dict[str, Any]) -> str:
    """The human-readable report of a full run."""
    peers: dict[str, dict[str, Any]] = results["peers"]
    bare_us = peers.get("bare", {}).get("us_per_call")
    out = [f"tracing overhead: {results['calls']:,} calls of f(x) = x + 1, warm-up {results['warmup']:,}, "
           f"time includes the final flush"]  # fmt: skip
    rows = []
    for name, peer in peers.items():
        if "skipped" in peer:
            rows.append([name, *["-"] * 7, f"skipped: {peer['skipped']}"])
            continue
        overhead = None if bare_us is None or name == "bare" else peer["us_per_call"] - bare_us
        exported = peer.get("exported")
        dropped = peer.get("dropped")
        note = peer.get("note", "")
        if not peer.get("flush_ok", True):
            note = (note + "; " if note else "") + "flush timed out"
        rows.append([
            name, fmt_number(peer["us_per_call"], 3), fmt_number(overhead, 3), fmt_number(peer["loop_seconds"], 3),
            fmt_number(peer["flush_seconds"], 3), _fmt_int(exported) if exported is not None else "n/a",
            _fmt_int(dropped) if dropped is not None else ("-" if name in ("bare", "tracehouse-disabled") else "n/a"),
            fmt_number(peer.get("peak_rss_mb"), 1), note,
        ])  # fmt: skip
    headers = ["peer", "us/call", "overhead us", "loop s", "flush s", "exported", "dropped", "peak RSS MB", "note"]
    out.append(render_table(headers, rows, left=(0, len(headers) - 1)))

    out.append("")
    ratio_rows = []
    for other in ("otel", "logfire", "langfuse"):
        ratio = _ratio(peers, other)
        target = f"<= {TARGET_RATIO}" if other == "otel" else ""
        ratio_rows.append([f"tracehouse / {other}", fmt_number(ratio, 3) if ratio is not None else "n/a", target])
    out.append(render_table(["ratio (us/call)", "value", "target"], ratio_rows))

    imp = results["import"]
    out.append("")
    if "skipped" in imp:
        out.append(f"import tracehouse: skipped: {imp['skipped']}")
    else:
        runs = ", ".join(f"{t:.0f}" for t in imp["runs_ms"])
        out.append(f"import tracehouse: {imp['median_ms']:.1f} ms median of {len(imp['runs_ms'])} ({runs} ms)")
        heavy = ", ".join(f"{m} {ms:.0f} ms" for m, ms in imp["heaviest_imports_ms"])
        out.append(f"  heaviest imports under it: {heavy}")

    ingest = results.get("ingest")
    if ingest is not None:
        if "skipped" in ingest:
            out.append(f"spool -> store ingest: skipped: {ingest['skipped']}")
        else:
            out.append(
                f"spool -> store ingest: {ingest['rows']:,} rows ({ingest['spool_bytes'] / 1e6:.1f} MB of spool) in "
                f"{ingest['sync_seconds']:.2f} s = {ingest['rows_per_second']:,.0f} rows/s "
                f"(store open {ingest['open_seconds']:.2f} s not included; {ingest['rows_in_store']:,} rows in store, "
                f"peak RSS {ingest['peak_rss_mb']:.0f} MB)"
            )
    query = results.get("query")
    if query is not None:
        if "skipped" in query:
            out.append(f"latency queries: skipped: {query['skipped']}")
        else:
            out.append(
                f"latency queries over {query['rows']:,} spans (insert {query['insert_seconds']:.2f} s, "
                f"store open {query['open_seconds']:.2f} s, peak RSS {query['peak_rss_mb']:.0f} MB):"
            )
            for by in ("name", "model"):
                q = query[f"latency_by_{by}"]
                out.append(
                    f"  latency(by={by!r}, since='7d'): {q['median_ms']:.1f} ms median of {QUERY_RUNS} "
                    f"(first {q['first_ms']:.1f} ms, min {q['min_ms']:.1f} ms; "
                    f"{q['groups']} groups, {q['spans']:,} spans)"
                )
            if "sql" in query:
                q = query["sql"]
                out.append(f"  query(p95 by model, read-only session): {q['median_ms']:.1f} ms median of {QUERY_RUNS} "
                           f"(first {q['first_ms']:.1f} ms, min {q['min_ms']:.1f} ms)")  # fmt: skip
            routed = query.get("via_owner") or {}
            if "skipped" in routed:
                out.append(f"  from a second process (through the owner): skipped: {routed['skipped']}")
            for label, q in ((k, v) for k, v in routed.items() if k != "skipped"):
                out.append(f"  {label} from a second process, through the owner: {q['median_ms']:.1f} ms median of "
                           f"{QUERY_RUNS} (first {q['first_ms']:.1f} ms, min {q['min_ms']:.1f} ms)")  # fmt: skip

    out.append("")
    checks = [[name, _fmt_check(value), target, verdict] for name, value, target, verdict in results["checks"]]
    out.append(render_table(["check", "value", "target", "result"], checks))
    return "\n".join(out)


def evaluate(results: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """PASS/FAIL against the targets; a check whose input is missing is SKIP."""
    peers = results["peers"]
    checks: list[tuple[str, Any, str, str]] = []

    ratio = _ratio(peers, "otel")
    checks.append(("tracehouse / otel us/call", ratio, f"<= {TARGET_RATIO}",
                   "SKIP" if ratio is None else ("PASS" if ratio <= TARGET_RATIO else "FAIL")))  # fmt: skip

    th = peers.get("tracehouse", {})
    if "dropped" in th and th["dropped"] is not None:
        lost = th["dropped"] + th.get("sink_dropped", 0)
        checks.append(("tracehouse spans dropped", lost, "0", "PASS" if lost == 0 and th["flush_ok"] else "FAIL"))
    else:
        checks.append(("tracehouse spans dropped", "n/a", "0", "SKIP"))

    disabled = peers.get("tracehouse-disabled", {}).get("us_per_call")
    checks.append(("tracehouse disabled us/call", disabled, f"< {TARGET_DISABLED_US}",
                   "SKIP" if disabled is None else ("PASS" if disabled < TARGET_DISABLED_US else "FAIL")))  # fmt: skip

    imp = results["import"].get("median_ms")
    checks.append(("import tracehouse ms", imp, f"< {TARGET_IMPORT_MS:.0f}",
                   "SKIP" if imp is None else ("PASS" if imp < TARGET_IMPORT_MS else "FAIL")))  # fmt: skip
    return checks


def parent_main(args: argparse.Namespace) -> int:
    selected = parse_choices(args.only, PEERS, "peer") if args.only else list(PEERS)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "calls": args.calls,
        "warmup": args.warmup,
        "spans_1m": args.spans_1m,
        **machine_info(("tracehouse", "opentelemetry-sdk", "logfire", "langfuse", "chdb", "clickhouse-connect")),
        "peers": {},
    }
    with tempfile.TemporaryDirectory(prefix="th-bench-") as tmp:
        root = Path(tmp)
        progress("import tracehouse ...")
        results["import"] = measure_import()
        for peer in PEERS:
            if peer not in selected:
                continue
            progress(f"peer {peer} ...")
            env = {"TRACEHOUSE_DISABLED": "1" if peer == "tracehouse-disabled" else "0"}
            data_dir = root / peer
            results["peers"][peer] = run_child(_child_args(args, "--peer", peer, "--data-dir", str(data_dir)), env)
        if not args.skip_store:
            if "tracehouse" in results["peers"] and "skipped" not in results["peers"]["tracehouse"]:
                progress("ingest ...")
                ingest_args = _child_args(args, "--task", "ingest", "--data-dir", str(root / "tracehouse"))
                results["ingest"] = run_child(ingest_args)
            else:
                results["ingest"] = {"skipped": "needs the spool written by the tracehouse peer"}
            progress("latency queries ...")
            query_args = _child_args(
                args, "--task", "query", "--spans-1m", str(args.spans_1m), "--data-dir", str(root / "query")
            )
            results["query"] = run_child(query_args)
    results["checks"] = evaluate(results)
    return finish(results, started, report, args.out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200_000, help="timed calls per peer (default 200,000)")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed calls before timing (default 2,000)")
    parser.add_argument("--spans-1m", type=int, default=1_000_000, help="spans in the latency-query store")
    parser.add_argument("--only", default="", help=f"comma-separated peers to run (default all: {','.join(PEERS)})")
    parser.add_argument("--skip-store", action="store_true", help="skip the ingest and latency-query parts")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=("ingest", "query"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.spans_1m < 1:
        parser.error("--calls and --spans-1m must be positive, --warmup not negative")
    if args.peer or args.task:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
