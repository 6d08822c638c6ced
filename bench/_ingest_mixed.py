"""Part ``mixed`` of bench/ingest.py: OTLP at full speed while a reader runs the dashboard's queries in a loop.

The client threads of part 1 post pre-built bodies of project ``mixed``; meanwhile one reader thread
asks, back to back, what a user with the dashboard open asks: the dashboard's data
(``/api/v1/ui/dashboard``: volume, latency, tokens and cost over time), the traces list
(``/api/v1/ui/traces``), latency by model (``/api/v1/latency``) and an ad-hoc SQL aggregate
(``/api/v1/query``: p95 duration and tokens by span name). Ingest is measured as in part 1 (spans
stored / first request -> all rows queryable); reads as the latency of each answered request
(p50, p95, max) and how many were answered. Every read must answer 200: a read that fails
under load is counted and shown.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any, Optional
from urllib.parse import urlencode

from _common import proc_cpu_seconds
from _ingest_clients import post_bodies, quantile_ms
from _ingest_collector import CollectorProcess, wait_for_count
from _ingest_workload import build_bodies

PROJECT = "mixed"
SEED_SPANS = 16  # posted (and stored) before the clock, so the dashboard has a project to show
SQL = (
    "SELECT name, count() AS spans, quantile(0.95)(duration_ms) AS p95_ms, sum(total_tokens) AS tokens "
    "FROM spans WHERE project = {p:String} AND start_time > now() - INTERVAL 1 HOUR GROUP BY name ORDER BY spans DESC"
)


def dashboard_requests() -> list[tuple[str, str, Optional[bytes]]]:
    """(method, path, body) of one round of the dashboard's reads."""
    window = urlencode({"project": PROJECT, "since": "1h"})
    sql = json.dumps({"sql": SQL, "parameters": {"p": PROJECT}}).encode()
    return [
        ("GET", f"/api/v1/ui/dashboard?{window}", None),
        ("GET", f"/api/v1/ui/traces?{window}", None),
        ("GET", f"/api/v1/latency?{urlencode({'project': PROJECT, 'since': '1h', 'by': 'model'})}", None),
        ("POST", "/api/v1/query", sql),
    ]


class Reader(threading.Thread):
    """Runs the dashboard's reads in a loop until stopped; latencies of answered reads, failures counted."""

    def __init__(self, url: str) -> None:
        super().__init__(name="dashboard-reader", daemon=True)
        self.host, port = url.split("//", 1)[1].split(":")
        self.port = int(port)
        self.latencies: list[float] = []
        self.by_path: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        requests = dashboard_requests()
        while not self.stopped.is_set():
            for method, path, body in requests:
                headers = {"Content-Type": "application/json"} if body else {}
                sent = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                    self.failures.append(f"{path.split('?')[0]}: {type(error).__name__}: {error}")
                    continue
                elapsed = time.perf_counter() - sent
                if response.status != 200:
                    self.failures.append(f"{path.split('?')[0]}: HTTP {response.status}: {answer[:160]!r}")
                    continue
                self.latencies.append(elapsed)
                self.by_path.setdefault(path.split("?")[0], []).append(elapsed)
        conn.close()


def part_mixed(collector: CollectorProcess, bodies: list[bytes], sizes: list[int], clients: int) -> dict[str, Any]:
    """Post the bodies (project `mixed`) with the reader running; ingest rate and read latencies."""
    spans = sum(sizes)
    pid = collector.process.pid if collector.process is not None else 0
    cpu_before = proc_cpu_seconds(pid)
    seed = build_bodies(1, SEED_SPANS, PROJECT, 10**9)
    post_bodies(collector.url, seed, 1)
    wait_for_count(collector.url, PROJECT, SEED_SPANS, quiet_seconds=30.0, started=time.perf_counter())
    reader = Reader(collector.url)
    reader.start()
    time.sleep(0.5)  # the reader is mid-loop when the load starts
    try:
        stats, started, sent = post_bodies(collector.url, bodies, clients)
        waited = wait_for_count(collector.url, PROJECT, spans + SEED_SPANS, quiet_seconds=30.0, started=started)
        waited["stored"] -= SEED_SPANS
    finally:
        reader.stopped.set()
        reader.join(120)
    cpu_after = proc_cpu_seconds(pid)
    seconds = waited["seconds"]
    return {
        "spans": spans,
        "stored": waited["stored"],
        "dropped": spans - waited["stored"],
        "seconds": seconds,
        "send_seconds": sent - started,
        "spans_per_second": waited["stored"] / seconds if seconds > 0 else None,
        "status_503": stats.status_503,
        "failed_bodies": stats.failed_bodies,
        "request_ms_p95": quantile_ms(stats.latencies, 0.95),
        "reads": len(reader.latencies),
        "read_failures": len(reader.failures),
        "read_failure_samples": reader.failures[:5],
        "read_ms_p50": quantile_ms(reader.latencies, 0.5),
        "read_ms_p95": quantile_ms(reader.latencies, 0.95),
        "read_ms_max": quantile_ms(reader.latencies, 1.0),
        "read_ms_p95_by_path": {path: quantile_ms(times, 0.95) for path, times in sorted(reader.by_path.items())},
        "collector_cpu_seconds": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    }
