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
   median of 5 (target <= 60 ms), beside ``import opentelemetry.sdk.trace`` and ``import logfire``,
   and the slowest modules it pulls in (``-X importtime``).
3. Spool -> store ingest: the spool the ``tracehouse`` peer wrote (calls + warm-up spans) is
   ingested by ``tracehouse.sync()`` in another process; the store is opened first
   (``tracehouse.reads.reading.get_store()``) so its ~1 s open time is reported apart from rows/s.
4. Latency queries over ``--spans-1m`` synthetic span rows inserted with one ``INSERT ... SELECT
   FROM numbers(N)`` into a fresh embedded store, spread over the last 6 days:
   ``tracehouse.latency(by="name", since="7d")`` and ``latency(by="model", since="7d")``, median of 5;
   ``tracehouse.query(<p95 by model over 7 days>)`` (free SQL: the guard, then a ``readonly=1``
   session with limits), median of 5; then the same latency and SQL calls from a second process on
   the same data dir, which goes through the first (the store's owner) over loopback.
5. Payloads: a traced call with a 6 MB string, a 300,000-number list, a 5 MB string passed through,
   and JSON of a value nested 5,000 deep (`_overhead_payloads.py`), median of 5, with targets.
6. Peak RSS of every child.

Then the ratios tracehouse / otel (target <= 0.7), / logfire, / langfuse, and PASS/FAIL for:
ratio <= 0.7, zero spans dropped by tracehouse, disabled < 1 us/call, import <= 60 ms. Results are
also written as JSON to ``bench/results/trace_overhead.json``. A peer that cannot be imported or run
is reported as ``skipped: <reason>``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from _common import emit, finish, machine_info, median, parse_choices, peak_rss_mb, progress, run_child
from _overhead_payloads import task_payloads
from _overhead_peers import PEER_FUNCS, dir_bytes
from _overhead_report import QUERY_RUNS, evaluate, report

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "trace_overhead.json"
PEERS = ("bare", "otel", "tracehouse", "tracehouse-disabled", "logfire", "langfuse")
IMPORT_RUNS = 5


def task_ingest(data_dir: Path) -> dict[str, Any]:
    """Ingest an existing spool into the embedded store, timing store open and sync() apart."""
    import tracehouse
    from tracehouse.reads.reading import get_store

    tracehouse.configure(data_dir=data_dir)
    spool_bytes = dir_bytes(data_dir / "spool")
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
        elif args.task == "payloads":
            result = task_payloads(data_dir)
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
IMPORT_PEERS = ("tracehouse", "opentelemetry.sdk.trace", "logfire")
_IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _import_ms(module: str) -> dict[str, Any]:
    """`import module` in IMPORT_RUNS fresh interpreters: the median and every run, in ms."""
    times = []
    for _ in range(IMPORT_RUNS):
        proc = subprocess.run([sys.executable, "-c", _IMPORT_SNIPPET.format(module=module)], capture_output=True,
                              text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return {"skipped": lines[-1] if lines else f"exit code {proc.returncode}"}
        times.append(float(proc.stdout.strip().splitlines()[-1]) * 1e3)
    return {"median_ms": median(times), "runs_ms": times}


def measure_import() -> dict[str, Any]:
    """`import tracehouse` in fresh interpreters beside its peers' imports, and its heaviest direct imports."""
    found = _import_ms("tracehouse")
    if "skipped" in found:
        return found
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tracehouse"], capture_output=True, text=True, check=False
    )
    found["heaviest_imports_ms"] = [[m, round(ms, 1)] for ms, m in _heaviest_dependencies(proc.stderr)[:6]]
    found["peers"] = {module: _import_ms(module) for module in IMPORT_PEERS[1:]}
    return found


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
        progress("payloads ...")
        results["payloads"] = run_child(_child_args(args, "--task", "payloads", "--data-dir", str(root / "payloads")))
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
    parser.add_argument("--task", choices=("ingest", "query", "payloads"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.spans_1m < 1:
        parser.error("--calls and --spans-1m must be positive, --warmup not negative")
    if args.peer or args.task:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
