"""Edges that used to wedge the collector: a batch ClickHouse refuses whole, reads that wait on it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import ServeOptions, build

PROTOBUF = {"Content-Type": "application/x-protobuf"}
DAY_NS = 86_400 * 10**9


def _spans_over_days(days: int, name: str = "old") -> bytes:
    """One OTLP request whose spans start on `days` different days (ending today)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("backfill")
    now = time.time_ns()
    for day in range(days):
        span = tracer.start_span(name, start_time=now - day * DAY_NS - 10**9)
        span.end(end_time=now - day * DAY_NS)
    return bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[TestClient]:
    database = f"wedge_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(
        ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="p", spool_dir=tmp_path / "wal")
    )
    with collector_client(parts.app) as client:
        yield client
    parts.close()


def test_spans_over_more_than_100_days_are_stored_and_reads_go_on(collector: TestClient) -> None:
    answer = collector.post("/v1/traces", content=_spans_over_days(150), headers=PROTOBUF)
    assert answer.status_code == 200
    count = collector.post("/api/v1/query", json={"sql": "SELECT count(), uniqExact(toDate(start_time)) FROM spans"})
    assert count.status_code == 200 and count.json()["rows"] == [[150, 150]]
    traces = collector.get("/api/v1/traces", params={"project": "p", "since": "200d", "limit": 500})
    assert traces.status_code == 200 and len(traces.json()["rows"]) == 150
    assert collector.get("/readyz").json()["queued_rows"] == 0
    again = collector.post("/v1/traces", content=_spans_over_days(3, "after"), headers=PROTOBUF)
    assert again.status_code == 200
    after = collector.post("/api/v1/query", json={"sql": "SELECT count() FROM spans WHERE name = 'after'"})
    assert after.json()["rows"] == [[3]]


def test_a_wal_holding_a_batch_over_many_days_is_stored_after_a_restart(tmp_path: Path) -> None:
    """The range a version before the fix could not insert (it survived restarts) now goes in."""
    from tracehouse.collector.ingest.wal import CollectorWal
    from tracehouse.collector.otlp.decode import decode_traces

    wal_dir = tmp_path / "wal"
    decoded = decode_traces(_spans_over_days(120), PROTOBUF["Content-Type"], None, "p")
    wal = CollectorWal(wal_dir)
    wal.append(decoded.records)
    wal.close()
    database = f"wedge_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="p", spool_dir=wal_dir))
    try:
        with collector_client(parts.app) as client:
            count = client.post("/api/v1/query", json={"sql": "SELECT count() FROM spans"})
            assert count.status_code == 200 and count.json()["rows"] == [[120]]
    finally:
        parts.close()


# -- reads and ingest on paths of their own ------------------------------------------------------


def _hold(pool: Any, release: threading.Event, workers: int = 4) -> list[Any]:
    """Occupy every thread of `pool` until `release` is set."""
    started = threading.Barrier(workers + 1)

    def occupy() -> None:
        started.wait(10)
        release.wait(60)

    futures = [pool.submit(occupy) for _ in range(workers)]
    started.wait(10)
    return futures


def test_ingest_answers_while_every_read_thread_is_busy(collector: TestClient) -> None:
    release = threading.Event()
    held = _hold(collector.app.state.collector.read_pool, release)  # type: ignore[attr-defined]
    try:
        answer = collector.post("/v1/traces", content=_spans_over_days(2, "during"), headers=PROTOBUF)
        assert answer.status_code == 200
    finally:
        release.set()
        for future in held:
            future.result(10)
    count = collector.post("/api/v1/query", json={"sql": "SELECT count() FROM spans WHERE name = 'during'"})
    assert count.json()["rows"] == [[2]]


def test_reads_answer_while_every_ingest_thread_is_busy(collector: TestClient) -> None:
    collector.post("/v1/traces", content=_spans_over_days(1, "before"), headers=PROTOBUF)
    collector.post("/api/v1/query", json={"sql": "SELECT 1"})  # stored before the ingest threads are taken
    release = threading.Event()
    held = _hold(collector.app.state.collector.ingest_pool, release)  # type: ignore[attr-defined]
    try:
        count = collector.post("/api/v1/query", json={"sql": "SELECT count() FROM spans WHERE name = 'before'"})
        assert count.status_code == 200 and count.json()["rows"] == [[1]]
        assert collector.get("/api/v1/traces", params={"project": "p", "since": "1h"}).status_code == 200
    finally:
        release.set()
        for future in held:
            future.result(10)


def test_store_reads_do_not_wait_for_the_insert_lock() -> None:
    from tracehouse.collector import Store

    store = Store(SESSION_STORE_URL, f"wedge_{os.getpid()}_{time.monotonic_ns()}")
    try:
        with store._lock:  # an insert in progress
            done: list[Any] = []
            reader = threading.Thread(target=lambda: done.append(store.query_rows("SELECT count() FROM spans")))
            reader.start()
            reader.join(30)
            assert done and done[0][1] == [(0,)]
    finally:
        store.close()


def test_the_backlog_counts_only_the_wal_never_local_segments(tmp_path: Path) -> None:
    """A local process's segment in the data dir is ingested too, but it was never answered by this
    collector: counting it made the 503 guard trip late and the gauge go below zero."""
    import orjson

    from tracehouse.collector.ingest.spool import SpoolWriter

    spool = tmp_path / "wal"
    local = SpoolWriter(spool)
    local.append(orjson.dumps([_record(f"local{i}") for i in range(50)]))
    local.close()
    assert local.path is not None
    pid_of_another = local.path.name.replace(f"-{os.getpid()}-", "-1-")
    local.path.rename(spool / pid_of_another)
    database = f"wedge_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="p", spool_dir=spool,
                               spool_interval=3600))  # fmt: skip
    try:
        collector = parts.app.state.collector
        _until(lambda: parts.follower.ingested == 50)
        assert collector.backlog() == 0
        parts.wal.append([_record(f"answered{i}") for i in range(7)])
        assert collector.backlog() == 7
        parts.follower.catch_up(30)
        _until(lambda: parts.follower.ingested == 57)
        assert collector.backlog() == 0
        with collector_client(parts.app) as client:
            metrics = client.get("/metrics").text
            assert "tracehouse_queue_rows 0" in metrics
    finally:
        parts.close()


def test_the_batch_writer_stores_records_that_are_not_spans() -> None:
    from tracehouse.collector import Store
    from tracehouse.collector.ingest.batch_writer import BatchWriter

    store = Store(SESSION_STORE_URL, f"wedge_{os.getpid()}_{time.monotonic_ns()}")
    writer = BatchWriter(store)
    try:
        now = time.time_ns()
        metrics = {
            "type": "metrics",
            "project": "p",
            "run_id": "r1",
            "step": 3,
            "time_ns": now,
            "values": {"loss": 0.5},
        }
        result = writer.submit([metrics, _record("beside")]).result(30)
        assert result.rows == 2 and not result.rejected
        _, rows = store.query_rows("SELECT run_id, step, key, value FROM metrics")
        assert rows == [("r1", 3, "loss", 0.5)]
        _, spans = store.query_rows("SELECT count() FROM spans WHERE name = 'beside'")
        assert spans == [(1,)]
    finally:
        writer.close()
        store.close()


def _record(name: str) -> dict[str, Any]:
    now = time.time_ns()
    n = time.monotonic_ns()
    return {
        "type": "span", "project": "p", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x")[-16:],
        "parent_span_id": "", "start_ns": now - 1000, "end_ns": now, "status": "ok", "status_message": "",
        "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def _until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_metrics_count_damaged_spool_bytes_and_the_frames_after_them_are_stored(tmp_path: Path) -> None:
    import orjson

    from tracehouse.collector.ingest.spool import HEADER_SIZE, SpoolWriter, scan_segment

    spool = tmp_path / "wal"
    writer = SpoolWriter(spool)
    for name in ("first", "lost", "third"):
        writer.append(orjson.dumps([_record(name)]))
    assert writer.path is not None
    segment = writer.path
    writer.close()
    data = bytearray(segment.read_bytes())
    second = scan_segment(segment).frames[1]
    data[second.start : second.start + HEADER_SIZE] = b"\xff" * HEADER_SIZE
    segment.write_bytes(bytes(data))
    database = f"wedge_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="p", spool_dir=spool))
    try:
        with collector_client(parts.app) as client:
            stored = client.post("/api/v1/query", json={"sql": "SELECT name FROM spans ORDER BY name"})
            assert stored.json()["rows"] == [["first"], ["third"]]
            _until(lambda: parts.follower.damaged_bytes > 0)
            metrics = client.get("/metrics").text
        damaged = next(line for line in metrics.splitlines() if line.startswith("tracehouse_spool_damaged_bytes_total"))
        assert int(damaged.split()[1]) >= HEADER_SIZE
        assert "tracehouse_spool_set_aside_total 0" in metrics
    finally:
        parts.close()
