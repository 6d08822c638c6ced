"""Ingest throughput of the tracehouse collector, and of the SDK's sender against the stock OTLP exporter.

Run from the repository root::

    python bench/ingest.py                    # defaults: 200,000 spans per part (~1-2 min on 2 cores)
    python bench/ingest.py --spans 50000 --clients 2
    python bench/ingest.py --parts collector  # only part 1 (parts: collector, sdk, stock, stock-discard)

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
3. Memory and CPU: peak RSS (``VmHWM`` of /proc/<pid>/status) of the collector, read just before it
   is stopped, and of each sender process and of this load generator (each reads its own); the
   collector's CPU seconds during part 1 (/proc/<pid>/stat). The collector is then stopped with
   SIGTERM and must exit with code 0.

Results are printed as a table with PASS/FAIL per target and written as JSON to
``bench/results/ingest.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from _common import (
    DiscardServer,
    emit,
    free_port,
    peak_rss_mb,
    proc_cpu_seconds,
    proc_status_mb,
    render_table,
    run_child,
    write_results,
)

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "ingest.json"
PARTS = ("collector", "sdk", "stock", "stock-discard")
TARGET_COLLECTOR_SPANS_PER_S = 30_000.0
TARGET_SENDER_RATIO = 5.0
PROTOBUF = "application/x-protobuf"
MODEL = "gpt-4o-mini"
PROMPT = (
    "Answer the question using only the retrieved context. Question #%07d: how do I rotate the API key of a "
    "project without downtime? Context: keys are stored hashed; a project may hold two keys at once."
)
POLL_INTERVAL = 0.1
STOCK_QUIET_SECONDS = 10.0  # the stock exporter's count is final once it has not grown for this long
SDK_QUIET_SECONDS = 30.0  # the SDK sender retries with backoff: give it longer before calling it stuck
READY_TIMEOUT = 90.0


def own_peak_rss_mb() -> Optional[float]:
    """This process's peak RSS from VmHWM.

    Not `ru_maxrss`: Linux carries it over fork and exec, so a child started by a bigger parent would
    report the parent's peak instead of its own.
    """
    return proc_status_mb(os.getpid(), "VmHWM") or peak_rss_mb()


# ---------------------------------------------------------------------------------------------
# the collector: subprocess, reads
# ---------------------------------------------------------------------------------------------
def count_spans(url: str, project: str, timeout: float = 30.0) -> int:
    """`SELECT count() FROM spans WHERE project = ...` through the collector's SQL endpoint."""
    body = json.dumps(
        {"sql": "SELECT count() FROM spans WHERE project = {p:String}", "parameters": {"p": project}}
    ).encode()
    request = urllib.request.Request(
        url + "/api/v1/query", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return int(json.loads(answer.read())["rows"][0][0])


def wait_for_count(
    url: str, project: str, expected: int, quiet_seconds: float, started: float, limit: float = 600.0
) -> dict[str, Any]:
    """Poll the count of `project` until it is `expected`, or has not grown for `quiet_seconds`.

    Returns the final count and `seconds`: from `started` (a perf_counter) to the first poll that saw
    the final count.
    """
    last, last_change = -1, time.perf_counter()
    seen_at = last_change
    polls = errors = 0
    while True:
        try:
            current = count_spans(url, project)
            polls += 1
        except (OSError, ValueError, KeyError, IndexError):
            errors += 1
            current = last
        now = time.perf_counter()
        if current != last:
            last, last_change, seen_at = current, now, now
        if last >= expected or now - last_change >= quiet_seconds or now - started >= limit:
            break
        time.sleep(POLL_INTERVAL)
    return {"stored": max(last, 0), "seconds": seen_at - started, "polls": polls, "poll_errors": errors}


def collector_metrics(url: str) -> dict[str, float]:
    """The collector's Prometheus counters as {name: value} (empty when unreadable)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


class CollectorProcess:
    """`python -m tracehouse serve` on a free loopback port with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "collector.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.start_seconds: Optional[float] = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        with open(self.log_path, "wb") as log:  # a file, not a pipe: a chatty collector must never block
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tracehouse", "serve", "--port", str(self.port), "--data-dir",
                 str(self.data_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the collector exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        self.start_seconds = time.perf_counter() - self._started
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the collector was not ready after {READY_TIMEOUT:.0f} s: {self.log_tail()}")

    def peak_rss_mb(self) -> Optional[float]:
        return None if self.process is None else proc_status_mb(self.process.pid, "VmHWM")

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM, then wait; the exit code and how long the drain took."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: Optional[int] = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            code = None
        return {"exit_code": code, "stop_seconds": time.perf_counter() - started}

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# part 1: pre-built OTLP bodies, posted by client threads
# ---------------------------------------------------------------------------------------------
def _span_attributes(i: int) -> dict[str, Any]:
    return {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 150 + i % 60,
        "gen_ai.usage.output_tokens": 20 + i % 40,
        "input.value": PROMPT % i,
    }


def build_bodies(count: int, batch: int, project: str, seed: int) -> list[bytes]:
    """`count` ExportTraceServiceRequest bodies of `batch` fresh spans each (a worker process runs this)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app", "tracehouse.project": project}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.ingest")
    bodies = []
    i = seed
    for _ in range(count):
        for _ in range(batch // 2):
            with (
                tracer.start_as_current_span("rag.answer", attributes=_span_attributes(i)),
                tracer.start_as_current_span(f"chat {MODEL}", attributes=_span_attributes(i + 1)),
            ):
                pass
            i += 2
        if batch % 2:
            with tracer.start_as_current_span("rag.answer", attributes=_span_attributes(i)):
                i += 1
        spans = exporter.get_finished_spans()
        exporter.clear()
        bodies.append(encode_spans(spans).SerializeToString())
    provider.shutdown()
    return bodies


def prebuild(spans: int, batch: int, workers: int = 2) -> tuple[list[bytes], list[int]]:
    """Bodies holding exactly `spans` spans (the last one may be smaller), built in `workers` processes."""
    sizes = [batch] * (spans // batch) + ([spans % batch] if spans % batch else [])
    full = spans // batch
    chunks = [(full * w // workers, full * (w + 1) // workers) for w in range(workers)]
    bodies: list[bytes] = []
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(build_bodies, hi - lo, batch, "ingest", lo * batch) for lo, hi in chunks]
        tail = pool.submit(build_bodies, 1, sizes[-1], "ingest", full * batch) if len(sizes) > full else None
        for future in futures:
            bodies.extend(future.result())
        if tail is not None:
            bodies.extend(tail.result())
    return bodies, sizes


class PostStats:
    """What the client threads saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.status_503 = 0
        self.other_errors: list[str] = []
        self.rejected_spans = 0
        self.latencies: list[float] = []
        self.failed_bodies = 0


def _rejected_in(answer: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    response.ParseFromString(answer)
    return int(response.partial_success.rejected_spans)


def post_bodies(url: str, bodies: list[bytes], clients: int) -> tuple[PostStats, float, float]:
    """POST every body from `clients` keep-alive threads; (stats, start perf_counter, end perf_counter)."""
    host, port = url.split("//", 1)[1].split(":")
    stats = PostStats()
    next_index = itertools.count()
    go = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Content-Type": PROTOBUF}
        go.wait()
        while True:
            index = next(next_index)
            if index >= len(bodies):
                break
            attempts = 0
            while True:
                attempts += 1
                sent = time.perf_counter()
                try:
                    conn.request("POST", "/v1/traces", body=bodies[index], headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=120)
                    with stats.lock:
                        stats.other_errors.append(f"{type(error).__name__}: {error}")
                    if attempts < 5:
                        time.sleep(0.5)
                        continue
                    with stats.lock:
                        stats.failed_bodies += 1
                    break
                elapsed = time.perf_counter() - sent
                with stats.lock:
                    stats.requests += 1
                    stats.latencies.append(elapsed)
                if response.status == 503:
                    with stats.lock:
                        stats.status_503 += 1
                    time.sleep(float(response.getheader("Retry-After") or 1))
                    continue
                if response.status != 200:
                    with stats.lock:
                        stats.other_errors.append(f"HTTP {response.status}: {answer[:200]!r}")
                        stats.failed_bodies += 1
                    break
                rejected = _rejected_in(answer)
                if rejected:
                    with stats.lock:
                        stats.rejected_spans += rejected
                break
        conn.close()

    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # every client is parked on the event
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    return stats, started, time.perf_counter()


def _quantile(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def part_collector(collector: CollectorProcess, bodies: list[bytes], sizes: list[int], clients: int) -> dict[str, Any]:
    """Part 1: post the pre-built bodies and wait until all their spans are queryable."""
    spans = sum(sizes)
    warmup = build_bodies(1, sizes[0], "warmup", 0)[0]
    warm_stats, _, _ = post_bodies(collector.url, [warmup], 1)
    before = collector_metrics(collector.url)
    pid = collector.process.pid if collector.process is not None else 0
    cpu_before = proc_cpu_seconds(pid)
    stats, started, sent = post_bodies(collector.url, bodies, clients)
    waited = wait_for_count(collector.url, "ingest", spans, quiet_seconds=30.0, started=started)
    cpu_after = proc_cpu_seconds(pid)
    after = collector_metrics(collector.url)
    seconds = waited["seconds"]
    inserts = after.get("tracehouse_inserts_total", 0) - before.get("tracehouse_inserts_total", 0)
    insert_seconds = after.get("tracehouse_insert_seconds_total", 0) - before.get("tracehouse_insert_seconds_total", 0)
    return {
        "spans": spans,
        "bodies": len(bodies),
        "batch": sizes[0],
        "body_bytes_mean": sum(map(len, bodies)) / len(bodies),
        "clients": clients,
        "warmup_ok": warm_stats.requests == 1 and not warm_stats.other_errors,
        "send_seconds": sent - started,
        "seconds": seconds,
        "spans_per_second": waited["stored"] / seconds if seconds > 0 else None,
        "stored": waited["stored"],
        "dropped": spans - waited["stored"],
        "requests": stats.requests,
        "status_503": stats.status_503,
        "other_errors": len(stats.other_errors),
        "error_samples": stats.other_errors[:5],
        "failed_bodies": stats.failed_bodies,
        "rejected_spans": stats.rejected_spans,
        "request_ms_p50": _ms(_quantile(stats.latencies, 0.5)),
        "request_ms_p95": _ms(_quantile(stats.latencies, 0.95)),
        "request_ms_max": _ms(max(stats.latencies) if stats.latencies else None),
        "inserts": int(inserts),
        "rows_per_insert": (spans / inserts) if inserts else None,
        "insert_seconds": insert_seconds,
        "overloaded_total": after.get("tracehouse_overloaded_total"),
        "collector_cpu_seconds": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    }


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1e3


# ---------------------------------------------------------------------------------------------
# part 2: sender children (one fresh interpreter each)
# ---------------------------------------------------------------------------------------------
def child_sdk(url: str, spans: int, data_dir: Path) -> dict[str, Any]:
    """The tracehouse SDK: @trace N calls, flush, wait until the collector holds them all."""
    import tracehouse
    from tracehouse._runtime import runtime

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
        with tracer.start_as_current_span("chat", attributes=_span_attributes(i)) as span:
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
    try:
        data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="th-bench-"))
        if args.child == "sdk":
            result = child_sdk(args.endpoint, args.spans, data_dir)
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
        child_args = [str(HERE), "--child", "stock-discard", "--endpoint", server.url, "--spans", str(spans),
                      "--data-dir", str(data_dir)]  # fmt: skip
        result = run_child(child_args, timeout=900)
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


# ---------------------------------------------------------------------------------------------
# parent: orchestration and report
# ---------------------------------------------------------------------------------------------
def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value: Optional[float], digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _versions() -> dict[str, str]:
    found = {}
    for package in ("tracehouse", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "chdb",
                    "clickhouse-connect", "fastapi", "uvicorn"):  # fmt: skip
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _sender_ratio(results: dict[str, Any], other: str = "stock") -> Optional[float]:
    sdk, stock = results.get("sdk") or {}, results.get(other) or {}
    mine, theirs = sdk.get("spans_per_second"), stock.get("spans_per_second")
    return mine / theirs if mine and theirs else None


def evaluate(results: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """PASS/FAIL per target; SKIP when its part did not run."""
    checks: list[tuple[str, Any, str, str]] = []

    def check(name: str, value: Any, target: str, ok: Optional[bool]) -> None:
        checks.append((name, "n/a" if value is None else value, target,
                       "SKIP" if ok is None else ("PASS" if ok else "FAIL")))  # fmt: skip

    col = results.get("collector")
    if col is not None and "skipped" not in col:
        rate = col["spans_per_second"]
        check("collector OTLP ingest spans/s", rate, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}",
              rate is not None and rate >= TARGET_COLLECTOR_SPANS_PER_S)  # fmt: skip
        check("collector spans lost", col["dropped"], "0", col["dropped"] == 0 and not col["rejected_spans"])
    elif "collector" in results["parts"]:
        check("collector OTLP ingest spans/s", None, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}", None)
    ratio = _sender_ratio(results)
    if "sdk" in results["parts"] and "stock" in results["parts"]:
        check("sdk sender / stock exporter spans/s", ratio, f">= {TARGET_SENDER_RATIO:.0f}",
              None if ratio is None else ratio >= TARGET_SENDER_RATIO)  # fmt: skip
    sdk = results.get("sdk")
    if sdk is not None:
        lost = None if "skipped" in sdk else sdk["dropped"] + sdk.get("sink_dropped", 0)
        check("sdk sender spans dropped", lost, "0", None if lost is None else lost == 0)
    stop = results.get("collector_stop") or {}
    code = stop.get("exit_code")
    check("collector exit code on SIGTERM", code, "0", None if not stop else code == 0)
    return checks


def report(results: dict[str, Any]) -> str:
    n = results["spans"]
    out = [
        f"ingest: {n:,} spans per part, one `tracehouse serve` (embedded chDB, fresh data dir) on "
        f"{results['cpus']} CPUs; spans/s = stored / (first request or call -> all rows queryable)"
    ]
    rows = []
    col = results.get("collector")
    if col is not None:
        if "skipped" in col:
            rows.append(["collector OTLP/HTTP", *["-"] * 7, f"skipped: {col['skipped']}"])
        else:
            note = (f"{col['bodies']} bodies of {col['batch']} spans ({col['body_bytes_mean'] / 1024:.0f} KiB), "
                    f"{col['clients']} keep-alive client threads")  # fmt: skip
            rows.append(["collector OTLP/HTTP", f"{n:,}", f"{col['stored']:,}", f"{col['dropped']:,}",
                         _fmt(col["seconds"], 2), _fmt(col["spans_per_second"]), f"{col['status_503']:,}",
                         _fmt(results.get("collector_peak_rss_mb"), 1), note])  # fmt: skip
    for key, label in (("sdk", "tracehouse SDK sender"), ("stock", "stock OTLP/HTTP exporter"),
                       ("stock-discard", "(ref) stock -> discard")):  # fmt: skip
        child = results.get(key)
        if child is None:
            continue
        if "skipped" in child:
            rows.append([label, *["-"] * 7, f"skipped: {child['skipped']}"])
            continue
        note = f"loop {child['loop_seconds']:.2f} s, flush {child['flush_seconds']:.2f} s"
        if key == "sdk" and child.get("sink_dropped"):
            note += f", spool dropped {child['sink_dropped']:,}"
        if key == "stock-discard":
            note += ", received by a discard server, not stored; not a target"
        if key.startswith("stock") and child.get("tracehouse_imported"):
            note += ", WARNING: tracehouse was imported"
        if child.get("note"):
            note += f"; {child['note']}"
        rows.append([label, f"{n:,}", f"{child['stored']:,}", f"{child['dropped']:,}", _fmt(child["seconds"], 2),
                     _fmt(child["spans_per_second"]), "-", _fmt(child.get("peak_rss_mb"), 1), note])  # fmt: skip
    headers = ["part", "spans", "stored", "dropped", "seconds", "spans/s", "503s", "peak RSS MB", "note"]
    out.append(render_table(headers, rows, left=(0, len(headers) - 1)))

    if col is not None and "skipped" not in col:
        out.append("")
        out.append(
            f"collector detail: posting took {col['send_seconds']:.2f} s, {col['requests']:,} requests "
            f"(503: {col['status_503']}, other errors: {col['other_errors']}, spans rejected: "
            f"{col['rejected_spans']}); request latency p50 {_fmt(col['request_ms_p50'], 1)} ms, "
            f"p95 {_fmt(col['request_ms_p95'], 1)} ms, max {_fmt(col['request_ms_max'], 1)} ms"
        )
        share = col["insert_seconds"] / col["seconds"] * 100 if col["seconds"] else 0.0
        out.append(
            f"  writer: {col['inserts']:,} inserts, {_fmt(col['rows_per_insert'])} rows each on average, "
            f"{col['insert_seconds']:.2f} s inside inserts ({share:.0f}% of the wall time)"
        )
        cpu = col.get("collector_cpu_seconds")
        if cpu is not None and col["seconds"]:
            out.append(
                f"  collector CPU: {cpu:.2f} s over {col['seconds']:.2f} s of wall time = {cpu / col['seconds']:.2f} "
                f"of {results['cpus']} cores busy, {cpu / col['spans'] * 1e6:.0f} us of CPU per span"
            )
        for sample in col["error_samples"]:
            out.append(f"  error: {sample}")
    out.append(
        f"collector: ready in {_fmt(results.get('collector_start_seconds'), 2)} s, peak RSS "
        f"{_fmt(results.get('collector_peak_rss_mb'), 1)} MB, SIGTERM -> exit code "
        f"{(results.get('collector_stop') or {}).get('exit_code')} in "
        f"{_fmt((results.get('collector_stop') or {}).get('stop_seconds'), 2)} s; load generator peak RSS "
        f"{_fmt(results.get('load_generator_peak_rss_mb'), 1)} MB; bodies built in "
        f"{_fmt(results.get('build_seconds'), 1)} s (not timed)"
    )
    ratio = _sender_ratio(results)
    if ratio is not None:
        out.append(f"sdk sender / stock exporter: {ratio:.2f}x (delivered spans/s)")
    reference = _sender_ratio(results, "stock-discard")
    if reference is not None:
        out.append(
            f"sdk sender / stock exporter at its own ceiling (discard server): {reference:.2f}x -- what the ratio "
            "would be if the collector answered the stock exporter instantly (information, not a target)"
        )

    out.append("")
    checks = [[name, _fmt(value, 2) if isinstance(value, float) else value, target, verdict]
              for name, value, target, verdict in results["checks"]]  # fmt: skip
    out.append(render_table(["check", "value", "target", "result"], checks))
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "spans": args.spans,
        "batch": args.batch,
        "clients": args.clients,
        "parts": parts,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": _versions(),
    }
    with tempfile.TemporaryDirectory(prefix="th-bench-ingest-") as tmp:
        root = Path(tmp)
        collector = CollectorProcess(root / "collector")
        try:
            _progress(f"starting the collector on {collector.url} ...")
            collector.start()
            bodies: list[bytes] = []
            sizes: list[int] = []
            if "collector" in parts:
                _progress(f"building {args.spans:,} spans as OTLP bodies of {args.batch} (not timed) ...")
                t = time.perf_counter()
                bodies, sizes = prebuild(args.spans, args.batch)
                results["build_seconds"] = time.perf_counter() - t
            collector.wait_ready()
            results["collector_start_seconds"] = collector.start_seconds
            if "collector" in parts:
                _progress(f"part 1: posting with {args.clients} client threads ...")
                try:
                    results["collector"] = part_collector(collector, bodies, sizes, args.clients)
                except Exception as error:
                    traceback.print_exc()
                    results["collector"] = {"skipped": f"{type(error).__name__}: {error}"[:300]}
                bodies = []
            for part in ("sdk", "stock"):
                if part in parts:
                    _progress(f"part 2: {part} sender ...")
                    child_args = [str(HERE), "--child", part, "--endpoint", collector.url, "--spans",
                                  str(args.spans), "--data-dir", str(root / part)]  # fmt: skip
                    results[part] = run_child(child_args, env={"TRACEHOUSE_DISABLED": "0"}, timeout=900)
            if "stock-discard" in parts:
                _progress("reference: stock exporter -> discard server ...")
                results["stock-discard"] = part_stock_discard(args.spans, root / "stock-discard")
            results["collector_peak_rss_mb"] = collector.peak_rss_mb()
            results["collector_current_rss_mb"] = proc_status_mb(collector.process.pid, "VmRSS")  # type: ignore[union-attr]
            _progress("stopping the collector (SIGTERM) ...")
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=200_000, help="spans per part (default 200,000)")
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request in part 1 (default 512)")
    parser.add_argument("--clients", type=int, default=4, help="client threads posting in part 1 (default 4)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts (default {','.join(PARTS)})")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--child", choices=("sdk", "stock", "stock-discard"), help=argparse.SUPPRESS)
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
