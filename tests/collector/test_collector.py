"""`tracehouse serve`: OTLP/HTTP in, REST reads out, SDK senders exactly once, SIGTERM/SIGKILL safe."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client, run_python
from servers import Collector, free_port, otlp_body

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import ServeOptions, build


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[TestClient]:
    database = f"collector_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(
        ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="p", spool_dir=tmp_path / "wal")
    )
    with collector_client(parts.app) as client:
        yield client
    parts.close()


def _count(client: TestClient, where: str = "1") -> int:
    answer = client.post("/api/v1/query", json={"sql": f"SELECT count() FROM spans WHERE {where}"}).json()
    return int(answer["rows"][0][0])


def test_otlp_protobuf_lands_in_spans_and_reads_back(collector: TestClient) -> None:
    response = collector.post("/v1/traces", content=otlp_body(), headers={"Content-Type": "application/x-protobuf"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert _count(collector) == 6
    latency = collector.get("/api/v1/latency", params={"project": "p", "by": "model"}).json()
    assert latency["columns"][:2] == ["model", "count"] and latency["rows"][0][:2] == ["gpt-4o", 3]
    traces = collector.get("/api/v1/traces", params={"project": "p"}).json()
    assert len(traces["rows"]) == 3
    tree = collector.get(f"/api/v1/traces/{traces['rows'][0][0]}", params={"project": "p"}).json()
    assert tree["name"] == "chat" and [c["name"] for c in tree["children"]] == ["tool"]
    service = collector.post("/api/v1/query", json={"sql": "SELECT DISTINCT service_name FROM spans"}).json()
    assert service["rows"] == [["otel-app"]]


def test_gzip_and_json_bodies(collector: TestClient) -> None:
    body = otlp_body(1)
    gz = collector.post(
        "/v1/traces",
        content=gzip.compress(body),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert gz.status_code == 200
    from google.protobuf.json_format import MessageToJson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(otlp_body(1, model="gpt-4o-mini"))
    as_json = MessageToJson(request)
    js = collector.post("/v1/traces", content=as_json, headers={"Content-Type": "application/json"})
    assert js.status_code == 200 and js.json() == {}
    assert _count(collector, "model = 'gpt-4o-mini'") == 1


def test_bad_requests_get_clear_statuses_and_lose_nothing(collector: TestClient) -> None:
    assert (
        collector.post(
            "/v1/traces", content=otlp_body(2), headers={"Content-Type": "application/x-protobuf"}
        ).status_code
        == 200
    )
    bad = collector.post("/v1/traces", content=b"\xff\x00garbage", headers={"Content-Type": "application/x-protobuf"})
    assert bad.status_code == 400 and "protobuf" in bad.json()["error"]
    assert (
        collector.post("/v1/traces", content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    )
    assert collector.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert (
        collector.post(
            "/v1/traces", content=b"x", headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}
        ).status_code
        == 415
    )
    huge = collector.post(
        "/v1/traces", content=b"0" * (33 * 1024 * 1024), headers={"Content-Type": "application/x-protobuf"}
    )
    assert huge.status_code == 413
    assert collector.get("/healthz").json() == {"status": "ok"}
    assert _count(collector) == 4


def test_records_endpoint_is_exactly_once_per_batch_token(collector: TestClient) -> None:
    record = {
        "type": "span", "project": "p", "name": "step", "trace_id": "1" * 32, "span_id": "2" * 16,
        "parent_span_id": "", "start_ns": time.time_ns() - 1000, "end_ns": time.time_ns(), "status": "ok",
        "status_message": "", "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip
    bad = {**record, "span_id": "zz"}
    for _ in range(3):
        answer = collector.post("/api/v1/records", json=[record, bad], headers={"X-Tracehouse-Batch": "seg:0:100"})
        assert answer.status_code == 200
        assert answer.json()["accepted"] == 1 and answer.json()["rejected"] == 1
    assert _count(collector) == 1
    assert (
        collector.post("/api/v1/records", content=b"{}", headers={"Content-Type": "application/json"}).status_code
        == 400
    )


def test_sql_endpoint_is_read_only_and_bounded(collector: TestClient) -> None:
    assert collector.post("/api/v1/query", json={"sql": "DROP TABLE spans"}).status_code == 400
    assert collector.post("/api/v1/query", json={"sql": "INSERT INTO spans (project) VALUES ('x')"}).status_code == 400
    too_many = collector.post("/api/v1/query", json={"sql": "SELECT number FROM numbers(100000)"})
    assert too_many.status_code == 400 and "rows" in too_many.json()["error"].lower()
    bound = collector.post(
        "/api/v1/query", json={"sql": "SELECT {v:String} AS v", "parameters": {"v": "x' OR 1=1 --"}}
    ).json()
    assert bound["rows"] == [["x' OR 1=1 --"]]
    assert _count(collector) == 0


def test_reading_errors_are_4xx(collector: TestClient) -> None:
    assert collector.get("/api/v1/latency", params={"by": "colour"}).status_code == 400
    assert collector.get("/api/v1/traces", params={"since": "yesterday"}).status_code == 400
    assert collector.get("/api/v1/traces/" + "0" * 31 + "1").status_code == 404
    assert collector.get("/api/v1/traces/not-hex").status_code == 400


def test_metrics_and_readiness(collector: TestClient) -> None:
    collector.post("/v1/traces", content=otlp_body(1), headers={"Content-Type": "application/x-protobuf"})
    assert _count(collector) == 2  # a read catches up with the write-ahead log
    text = collector.get("/metrics").text
    values = dict(line.split() for line in text.splitlines() if line and not line.startswith("#"))
    assert float(values["tracehouse_records_received_total"]) == 2
    assert float(values["tracehouse_records_written_total"]) == 2
    assert "tracehouse_queue_rows" in values and "tracehouse_insert_seconds_total" in values
    assert collector.get("/readyz").json()["status"] == "ready"


def test_a_full_queue_answers_503_with_retry_after(collector: TestClient) -> None:
    from tracehouse.collector.ingest import batch_writer as _writer
    from tracehouse.collector.ingest.batch_writer import Overloaded

    original = _writer.BatchWriter._enqueue  # where every submission is admitted or refused

    def full(self: Any, item: Any) -> Any:
        raise Overloaded(retry_after=3)

    _writer.BatchWriter._enqueue = full  # type: ignore[method-assign]
    try:
        busy = collector.post("/api/v1/records", json=[], headers={"X-Tracehouse-Batch": "t"})
    finally:
        _writer.BatchWriter._enqueue = original  # type: ignore[method-assign]
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "3"


def test_otlp_backlog_over_the_limit_answers_503_and_keeps_what_it_answered(tmp_path: Path) -> None:
    parts = build(
        ServeOptions(store_url=SESSION_STORE_URL, database=f"backlog_{os.getpid()}", spool_dir=tmp_path / "wal",
                     max_backlog=10)
    )  # fmt: skip
    parts.follower.stop()  # nothing drains: the backlog only grows
    body, headers = otlp_body(2), {"Content-Type": "application/x-protobuf"}
    with collector_client(parts.app) as client:
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
        busy = client.post("/v1/traces", content=body, headers=headers)
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
        assert _count(client) == 8, "a read catches up with everything answered"
    parts.close()


# --- a real collector process ---------------------------------------------------------------------


@pytest.fixture
def live_collector(tmp_path: Path) -> Iterator[Collector]:
    collector = Collector(tmp_path / "collector-data", free_port())
    collector.start()
    yield collector
    if collector.process is not None and collector.process.poll() is None:
        collector.stop(signal.SIGKILL)


def _sender_code(endpoint: str, data_dir: Path, project: str, count: int, extra: str = "") -> str:
    return textwrap.dedent(
        f"""
        import tracehouse as th
        th.configure(endpoint={endpoint!r}, data_dir={str(data_dir)!r}, project={project!r})

        @th.trace(kind="llm")
        def call(i):
            th.current_span().set_usage(model="gpt-4o-mini", input_tokens=i, output_tokens=1)
            return i

        for i in range({count}):
            call(i)
        {extra}
        """
    )


def test_sdk_sender_and_stock_otlp_exporter_reach_the_collector(live_collector: Collector, tmp_path: Path) -> None:
    result = run_python(_sender_code(live_collector.url, tmp_path / "app", "sdk", 500))
    assert result.returncode == 0, result.stderr
    stock = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=Resource.create({{"service.name": "plain", "tracehouse.project": "otel"}}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="{live_collector.url}/v1/traces")))
        tracer = provider.get_tracer("plain")
        for i in range(300):
            with tracer.start_as_current_span("op", attributes={{"input.value": "q" + str(i)}}):
                pass
        provider.shutdown()
        """
    )
    result = run_python(stock, env={"PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert live_collector.query("SELECT project, count() FROM spans GROUP BY project ORDER BY project") == [
        ["otel", 300],
        ["sdk", 500],
    ]
    assert live_collector.query("SELECT sum(input_tokens) FROM spans WHERE project = 'sdk'") == [[sum(range(500))]]
    assert live_collector.stop() == 0


def test_reads_go_through_the_collector_when_an_endpoint_is_set(live_collector: Collector, tmp_path: Path) -> None:
    code = _sender_code(
        live_collector.url, tmp_path / "app", "reads", 20,
        extra=textwrap.dedent(
            """
            frame = th.latency(by="model", since="1h")
            print("latency", frame["model"].tolist(), frame["count"].tolist())
            tid = th.traces(limit=1).trace_id[0]
            print("tree", th.trace_tree(tid)["name"])
            n = th.query("SELECT count() AS n FROM spans WHERE project = {p:String}", {"p": "reads"})["n"][0]
            print("query", n)
            try:
                th.latency(by="colour")
            except th.ConfigError as error:
                print("error", error.option)
            """
        ).replace("\n", "\n        "),
    )  # fmt: skip
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "latency ['gpt-4o-mini'] [20]" in lines
    assert "tree call" in lines and "query 20" in lines and "error by" in lines


def test_sender_keeps_spans_while_the_collector_is_down(tmp_path: Path) -> None:
    port = free_port()
    collector = Collector(tmp_path / "collector-data", port)
    app_dir = tmp_path / "app"
    result = run_python(
        _sender_code(collector.url, app_dir, "down", 200), env={"TRACEHOUSE_FLUSH_TIMEOUT": "2"}
    )  # nothing listens
    assert result.returncode == 0, result.stderr
    assert "unreachable" in result.stderr or "could not send" in result.stderr
    collector.start()
    try:
        sync = subprocess.run(
            [sys.executable, "-m", "tracehouse", "sync", "--data-dir", str(app_dir), "--json"],
            env={**os.environ, "TRACEHOUSE_ENDPOINT": collector.url}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sync.returncode == 0, sync.stderr
        assert json.loads(sync.stdout)["rows"] == 200
        assert collector.query("SELECT count() FROM spans WHERE project = 'down'") == [[200]]
    finally:
        collector.stop(signal.SIGKILL)


def test_sigkill_of_the_collector_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "collector-data", free_port())
    collector.start()
    senders = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _sender_code(collector.url, tmp_path / f"app{i}", "kill", 3000, "import time; time.sleep(0)"),
            ],
            env={**os.environ, "TRACEHOUSE_FLUSH_TIMEOUT": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    time.sleep(1.0)
    collector.stop(signal.SIGKILL)
    for sender in senders:
        sender.wait(120)
    collector.start()
    try:
        for i in range(3):
            sync = subprocess.run(
                [sys.executable, "-m", "tracehouse", "sync", "--data-dir", str(tmp_path / f"app{i}")],
                env={**os.environ, "TRACEHOUSE_ENDPOINT": collector.url}, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert sync.returncode == 0, sync.stderr
        assert collector.query("SELECT count(), uniqExact(span_id) FROM spans WHERE project = 'kill'") == [[9000, 9000]]
    finally:
        assert collector.stop() == 0


def test_spans_with_bad_ids_or_times_are_partial_successes(collector: TestClient) -> None:
    now = time.time_ns()

    def span(span_id: str, start: int, end: int) -> dict[str, Any]:
        return {
            "traceId": "5" * 32,
            "spanId": span_id,
            "name": "s",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
        }

    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            span("6" * 16, now - 10, now),
                            span("", now - 10, now),
                            span("7" * 16, now, now - 10**9),
                        ]
                    }
                ],
            }
        ]
    }
    answer = collector.post("/v1/traces", json=body)
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == 2
    assert _count(collector) == 1


def test_local_processes_reach_a_running_collector_through_its_spool(live_collector: Collector) -> None:
    code = _sender_code("", live_collector.data_dir, "local", 50, "th.flush(); import time; time.sleep(30)")
    writer = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if live_collector.query("SELECT count() FROM spans WHERE project = 'local'") == [[50]]:
                break
            time.sleep(0.2)
        # how soon they appear is a figure for bench/, not a bound here (a busy machine is slower)
        assert live_collector.query("SELECT count() FROM spans WHERE project = 'local'") == [[50]]
    finally:
        writer.kill()
        writer.wait()


def test_a_running_sender_delivers_by_itself_once_the_collector_returns(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "collector-data", free_port())
    code = _sender_code(collector.url, tmp_path / "app", "later", 300, "import time; time.sleep(25)")
    sender = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2)  # the sender traced its spans and failed to reach anyone at least once
        collector.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if collector.query("SELECT count() FROM spans WHERE project = 'later'") == [[300]]:
                break
            time.sleep(0.5)
        assert collector.query("SELECT count() FROM spans WHERE project = 'later'") == [[300]]
        assert sender.poll() is None, "delivered while the sender was still running, not by its exit hook"
    finally:
        sender.kill()
        sender.wait()
        collector.stop(signal.SIGKILL)


def _raw_span(name: str, n: int) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "type": "span", "project": "raw", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
        "parent_span_id": "", "start_ns": now, "end_ns": now + 1_000, "status": "ok", "status_message": "",
        "attributes": {"input.value": f"q{n}"}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def test_frames_go_undecoded_and_a_bad_frame_is_resent_decoded(live_collector: Collector, tmp_path: Path) -> None:
    """Spool frames travel as they are (no decode, no re-encode); a frame whose checksum is fine but
    whose JSON is not makes the collector answer 400, and that range is then sent decoded without it."""
    from tracehouse.collector.ingest.spool import SpoolWriter
    from tracehouse.collector.ingest.spool_ingest import SpoolIngester
    from tracehouse.exporters._sender import CollectorClient, CollectorDestination

    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    writer.append(json.dumps([_raw_span("good", 1), _raw_span("good", 2)]).encode())
    writer.append(json.dumps([_raw_span("fine", 3)]).encode())
    writer.close()
    client = CollectorClient(live_collector.url)
    report = SpoolIngester(CollectorDestination(client), max_rows_per_insert=2, max_inflight=2).ingest(spool)
    assert report.rows == 3 and report.problems == [] and list(spool.glob("*.seg")) == []
    writer = SpoolWriter(spool)
    writer.append(json.dumps([_raw_span("after", 4)]).encode())
    writer.append(b'[{"type": "span", "name": "torn"')  # a writer bug, not a torn write: its checksum is right
    writer.append(json.dumps([_raw_span("after", 5)]).encode())
    writer.close()
    report = SpoolIngester(CollectorDestination(client)).ingest(spool)
    assert report.rows == 2 and any("not JSON" in p for p in report.problems)
    assert live_collector.query("SELECT name, count() FROM spans GROUP BY name ORDER BY name") == [
        ["after", 2], ["fine", 1], ["good", 2],
    ]  # fmt: skip
    client.close()


def test_the_shipper_sends_a_full_batch_without_waiting_for_its_interval(
    live_collector: Collector, tmp_path: Path
) -> None:
    from tracehouse.collector.ingest.spool import SpoolWriter
    from tracehouse.exporters._sender import CollectorClient, SpoolShipper

    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    client = CollectorClient(live_collector.url)
    shipper = SpoolShipper(spool, client, before_pass=lambda: None, interval=600, wake_rows=3)
    shipper.start()
    try:
        writer.append(json.dumps([_raw_span("woken", n) for n in range(1, 4)]).encode())
        shipper.notify_written(2)
        time.sleep(0.5)
        # (also shows that the collector does not trace its own requests into the store it serves)
        assert live_collector.query("SELECT count() FROM spans") == [[0]], "under a batch: waits for the interval"
        shipper.notify_written(1)
        deadline = time.monotonic() + 10
        while live_collector.query("SELECT count() FROM spans") != [[3]] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_collector.query("SELECT count() FROM spans") == [[3]]
    finally:
        shipper.stop(timeout=2)
        writer.close()
