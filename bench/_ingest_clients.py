"""Part 1 of bench/ingest.py: client threads POST pre-built OTLP bodies to the collector until every span is stored."""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from typing import Any, Optional

from _common import proc_cpu_seconds
from _ingest_collector import CollectorProcess, collector_metrics, wait_for_count
from _ingest_workload import build_bodies

PROTOBUF = "application/x-protobuf"


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


def part_collector(
    collector: CollectorProcess, bodies: list[bytes], sizes: list[int], clients: int, project: str = "ingest"
) -> dict[str, Any]:
    """Part 1: post the pre-built bodies (of `project`) and wait until all their spans are queryable."""
    spans = sum(sizes)
    warmup = build_bodies(1, sizes[0], "warmup", 0)[0]
    warm_stats, _, _ = post_bodies(collector.url, [warmup], 1)
    before = collector_metrics(collector.url)
    pid = collector.process.pid if collector.process is not None else 0
    cpu_before = proc_cpu_seconds(pid)
    stats, started, sent = post_bodies(collector.url, bodies, clients)
    waited = wait_for_count(collector.url, project, spans, quiet_seconds=30.0, started=started)
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


def quantile_ms(values: list[float], q: float) -> Optional[float]:
    """The `q` quantile of `values` (seconds) in milliseconds; None when there are none."""
    return _ms(_quantile(values, q))


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1e3
