"""`tracehouse serve --forward-otlp URL`: what one collector receives (spans, logs, metrics; HTTP and gRPC)
reaches a second one, after it is durable here; a full forward queue drops and counts, never blocks."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
from servers import Collector, free_port, otlp_body

from tracehouse._errors import ConfigError
from tracehouse.collector.otlp.forward import OtlpForwarder


def _post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def _eventually(read: Callable[[], Any], expected: Any) -> Any:
    """Poll `read` until it returns `expected` (the forwarder sends asynchronously); the last value otherwise."""
    deadline = time.monotonic() + 60
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_collector_tees_spans_logs_and_metrics_to_another(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    second = Collector(tmp_path / "second", free_port())
    second.start()
    grpc_port = free_port()
    first = Collector(tmp_path / "first", free_port(), "--grpc-port", str(grpc_port), "--forward-otlp", second.url)
    first.start()
    try:
        assert _post(first.url + "/v1/traces", otlp_body(2), "application/x-protobuf") == 200
        provider = TracerProvider(resource=Resource.create({"service.name": "teed"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}",
                                                                         insecure=True)))  # fmt: skip
        with provider.get_tracer("t").start_as_current_span("over grpc"):
            pass
        provider.shutdown()
        logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": str(time.time_ns()),
                                                                 "body": {"stringValue": "teed log"}}]}]}]}  # fmt: skip
        assert _post(first.url + "/v1/logs", json.dumps(logs).encode(), "application/json") == 200
        metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "teed.gauge", "gauge": {
            "dataPoints": [{"timeUnixNano": str(time.time_ns()), "asDouble": 2.5}]}}]}]}]}  # fmt: skip
        assert _post(first.url + "/v1/metrics", json.dumps(metrics).encode(), "application/json") == 200

        here = first.query("SELECT name FROM spans ORDER BY name")
        assert _eventually(lambda: second.query("SELECT name FROM spans ORDER BY name"), here) == here
        assert len(here) == 5 and ["over grpc"] in here
        assert _eventually(lambda: second.query("SELECT Body FROM otel_logs"), [["teed log"]]) == [["teed log"]]
        gauge = [["teed.gauge", 2.5]]
        assert _eventually(lambda: second.query("SELECT MetricName, Value FROM otel_metrics_gauge"), gauge) == gauge
        with urllib.request.urlopen(first.url + "/metrics", timeout=30) as answer:
            text = answer.read().decode()
        assert "tracehouse_forward_sent_total 4" in text and "tracehouse_forward_dropped_total 0" in text
    finally:
        first.stop()
        second.stop()


class _Stuck(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint that holds every request until released."""

    daemon_threads = True

    def __init__(self) -> None:
        self.arrived, self.release, self.bodies = threading.Event(), threading.Event(), []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(handler) -> None:
                handler.server.bodies.append(handler.rfile.read(int(handler.headers["Content-Length"])))
                handler.server.arrived.set()
                handler.server.release.wait(60)
                handler.send_response(200)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_full_forward_queue_drops_and_counts_without_blocking() -> None:
    stuck = _Stuck()
    forwarder = OtlpForwarder(f"http://127.0.0.1:{stuck.server_address[1]}", max_queued=1)
    try:
        assert forwarder.offer("traces", b"first", "application/x-protobuf", None)
        assert stuck.arrived.wait(30)  # the first is in flight, held by the endpoint
        assert forwarder.offer("logs", b"second", "application/json", None)  # queued
        assert not forwarder.offer("metrics", b"third", "application/json", None)  # full: dropped at once
        assert (forwarder.dropped, forwarder.queued) == (1, 1)
    finally:
        stuck.release.set()
        forwarder.close()
        stuck.shutdown()
    assert stuck.bodies == [b"first", b"second"] and forwarder.sent == 2


@pytest.mark.parametrize("url", ["ftp://host:4318", "not a url", "http://"])
def test_a_bad_forward_url_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ConfigError, match="forward-otlp"):
        OtlpForwarder(url)
