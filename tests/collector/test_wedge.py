"""Edges that used to wedge the collector: a batch ClickHouse refuses whole, reads that wait on it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

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
