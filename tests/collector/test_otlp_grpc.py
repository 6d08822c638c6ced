"""OTLP/gRPC against a real `tracehouse serve`: the stock OpenTelemetry gRPC exporters for spans, logs
and metrics, keys in `authorization` metadata, and the statuses that make the exporters retry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from servers import Collector, InProcessCollector, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, int]]:
    grpc_port = free_port()
    collector = Collector(tmp_path_factory.mktemp("grpc"), free_port(), "--grpc-port", str(grpc_port))
    collector.start()
    yield collector, grpc_port
    assert collector.stop() == 0


def _tracer(port: int, compression: Any = None, headers: Any = None, project: str = "grpc") -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{port}", insecure=True, compression=compression, headers=headers, timeout=5
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-app", "tracehouse.project": project}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_the_stock_grpc_span_exporter_lands_spans_plain_and_gzipped(served: tuple[Collector, int]) -> None:
    collector, port = served
    for compression, name in ((None, "plain"), (Compression.Gzip, "gzipped")):
        provider, _ = _tracer(port, compression)
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span(f"chat {name}", attributes={"gen_ai.request.model": "gpt-4o"}) as span:
            span.set_attribute("gen_ai.usage.input_tokens", 7)
            with tracer.start_as_current_span(f"tool {name}"):
                pass
        provider.shutdown()
    rows = collector.query(
        "SELECT name, model, input_tokens, service_name, project FROM spans WHERE project = 'grpc' ORDER BY name"
    )
    assert rows == [
        ["chat gzipped", "gpt-4o", 7, "grpc-app", "grpc"],
        ["chat plain", "gpt-4o", 7, "grpc-app", "grpc"],
        ["tool gzipped", "", None, "grpc-app", "grpc"],
        ["tool plain", "", None, "grpc-app", "grpc"],
    ]


def test_the_stock_grpc_log_exporter_fills_otel_logs(served: tuple[Collector, int]) -> None:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    collector, port = served
    provider = LoggerProvider(resource=Resource.create({"service.name": "log-app", "tracehouse.project": "grpc-logs"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
    )
    logger = provider.get_logger("app.scope", "1.2.3")
    logger.emit(
        LogRecord(
            body="disk almost full",
            severity_text="WARN",
            severity_number=SeverityNumber.WARN,
            attributes={"disk": "/dev/sda1", "used": 0.93},
        )
    )
    logger.emit(LogRecord(body={"nested": [1, 2]}, event_name="app.custom"))
    provider.shutdown()
    rows = collector.query(
        "SELECT ServiceName, SeverityText, SeverityNumber, Body, LogAttributes, ScopeName, ScopeVersion, EventName, "
        "ResourceAttributes['service.name'] FROM otel_logs WHERE project = 'grpc-logs' ORDER BY Timestamp"
    )
    assert rows == [
        [
            "log-app",
            "WARN",
            13,
            "disk almost full",
            {"disk": "/dev/sda1", "used": "0.93"},
            "app.scope",
            "1.2.3",
            "",
            "log-app",
        ],
        ["log-app", "", 0, '{"nested":[1,2]}', {}, "app.scope", "1.2.3", "app.custom", "log-app"],
    ]


def _metrics_data() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "m-app", "tracehouse.project": "grpc-metrics"}),
    )
    meter = provider.get_meter("genai.scope")
    usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    usage.record(12, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
    usage.record(30, {"gen_ai.token.type": "output", "gen_ai.request.model": "gpt-4o"})
    meter.create_counter("requests").add(3, {"route": "/chat"})
    meter.create_gauge("queue.depth").set(5.5)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def test_the_stock_grpc_metric_exporter_fills_gauge_sum_and_histogram_tables(served: tuple[Collector, int]) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    collector, port = served
    exporter = OTLPMetricExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    assert exporter.export(_metrics_data()) == MetricExportResult.SUCCESS
    where = "WHERE project = 'grpc-metrics'"
    assert collector.query(f"SELECT MetricName, Value, Attributes FROM otel_metrics_gauge {where}") == [
        ["queue.depth", 5.5, {}]
    ]
    assert collector.query(
        f"SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes FROM otel_metrics_sum {where}"
    ) == [["requests", 3.0, True, 2, {"route": "/chat"}]]
    histograms = collector.query(
        "SELECT Attributes['gen_ai.token.type'], Count, Sum, Min, Max, MetricUnit, length(BucketCounts) > 1 "
        f"FROM otel_metrics_histogram {where} AND MetricName = 'gen_ai.client.token.usage' ORDER BY Sum"
    )
    assert histograms == [
        ["input", 1, 12.0, 12.0, 12.0, "{token}", True],
        ["output", 1, 30.0, 30.0, 30.0, "{token}", True],
    ]


def _stub_export(port: int, request: Any, metadata: Any = None) -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return MetricsServiceStub(channel).Export(request, metadata=metadata, timeout=30)  # type: ignore[no-untyped-call]


def test_exponential_histograms_and_summaries_are_named_in_partial_success(served: tuple[Collector, int]) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    collector, port = served
    now = time.time_ns()
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    exponential = scope.metrics.add(name="latency.exp")
    exponential.exponential_histogram.data_points.add(time_unix_nano=now, count=1)
    summary = scope.metrics.add(name="latency.summary")
    summary.summary.data_points.add(time_unix_nano=now, count=1)
    kept = scope.metrics.add(name="kept.gauge")
    kept.gauge.data_points.add(time_unix_nano=now, as_int=4)
    response = _stub_export(port, request)
    assert response.partial_success.rejected_data_points == 2
    assert "exponential histograms are not stored" in response.partial_success.error_message
    assert "summaries are not stored" in response.partial_success.error_message
    assert collector.query("SELECT Value FROM otel_metrics_gauge WHERE MetricName = 'kept.gauge'") == [[4.0]]


def _span(name: str, project: str) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    span = TracerProvider(resource=Resource.create({"tracehouse.project": project})).get_tracer("t").start_span(name)
    span.end()
    return span


def test_keys_are_checked_over_grpc_as_over_http(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.trace.export import SpanExportResult

    created = subprocess.run(
        [sys.executable, "-m", "tracehouse", "keys", "create", "--project", "alpha", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    key = next(word for word in created.stdout.split() if word.startswith("thk_"))
    grpc_port = free_port()
    collector = Collector(tmp_path, free_port(), "--grpc-port", str(grpc_port), "--require-keys")
    collector.start()
    try:
        with pytest.raises(grpc.RpcError) as refused:
            _stub_export(grpc_port, ExportMetricsServiceRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "an API key is required" in str(refused.value.details())
        with pytest.raises(grpc.RpcError) as unknown:
            _stub_export(grpc_port, ExportMetricsServiceRequest(), (("authorization", "Bearer thk_not_a_key"),))
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        provider, exporter = _tracer(grpc_port, project="alpha")
        with provider.get_tracer("t").start_as_current_span("no key"):
            pass
        provider.force_flush()
        _, exporter = _tracer(grpc_port, headers={"authorization": f"Bearer {key}"})
        assert exporter.export([_span("other project", "beta")]) == SpanExportResult.FAILURE  # PERMISSION_DENIED
        assert exporter.export([_span("with key", "alpha")]) == SpanExportResult.SUCCESS
        admin = subprocess.run(
            [sys.executable, "-m", "tracehouse", "keys", "create", "--admin", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        admin_key = next(word for word in admin.stdout.split() if word.startswith("thk_"))
        import json
        import urllib.request

        request = urllib.request.Request(
            collector.url + "/api/v1/query",
            data=json.dumps({"sql": "SELECT project, name FROM spans ORDER BY name"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin_key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["rows"] == [["alpha", "with key"]]
    finally:
        collector.stop()


def test_a_full_backlog_answers_unavailable_with_retry_info(tmp_path: Path) -> None:
    from conftest import SESSION_STORE_URL
    from google.rpc.error_details_pb2 import RetryInfo
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
    from servers import otlp_body

    from tracehouse.collector.server import ServeOptions

    options = ServeOptions(  # the session's embedded store (one per process), a database of its own
        store_url=SESSION_STORE_URL,
        database=f"grpc_{os.getpid()}_{time.monotonic_ns()}",
        spool_dir=tmp_path / "spool",
        max_backlog=1,
        max_body_bytes=64 * 1024,
    )
    with InProcessCollector(options) as running:
        port = running.parts.start_grpc("127.0.0.1", 0)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.RpcError) as busy:
                stub.Export(ExportTraceServiceRequest.FromString(otlp_body(2)), timeout=30)
            assert busy.value.code() == grpc.StatusCode.UNAVAILABLE
            trailers = dict(busy.value.trailing_metadata())
            assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds >= 1
            big = ExportTraceServiceRequest.FromString(otlp_body(1))
            big.resource_spans[0].scope_spans[0].spans[0].name = "x" * (65 * 1024)
            with pytest.raises(grpc.RpcError) as too_big:
                stub.Export(big, timeout=30)
            assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as malformed:
                channel.unary_unary(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    request_serializer=None,
                    response_deserializer=None,
                )(b"\xff\xff\xff", timeout=30)
            assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_grpc_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tracehouse",
                "serve",
                "--port",
                "0",
                "--grpc-port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in result.stderr and "--grpc-port" in result.stderr
