"""`tracehouse serve --forward-otlp URL`: what one collector receives (spans, logs, metrics; HTTP and gRPC)
reaches a second one, after it is durable here. The queue is on disk: an endpoint that is down is waited
out and a stop loses nothing; a full queue drops and counts, never blocks."""

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


def test_a_full_forward_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    stuck = _Stuck()
    body = b"x" * 1000  # ~1,080 bytes queued with its signal, type and encoding
    forwarder = OtlpForwarder(f"http://127.0.0.1:{stuck.server_address[1]}", tmp_path / "fwd", max_bytes=2500)
    try:
        assert forwarder.offer("traces", b"1" + body, "application/x-protobuf", None)
        assert stuck.arrived.wait(30)  # the first is in flight, held by the endpoint (queued until it is taken)
        assert forwarder.offer("logs", b"2" + body, "application/json", None)  # queued
        assert not forwarder.offer("metrics", b"3" + body, "application/json", None)  # past 2,500 bytes: dropped
        assert (forwarder.dropped, forwarder.queued) == (1, 2)
    finally:
        stuck.release.set()
        forwarder.close()
        stuck.shutdown()
    assert stuck.bodies == [b"1" + body, b"2" + body] and forwarder.sent == 2 and forwarder.queued == 0


class _Endpoint(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint that keeps what it took; while `down`, it answers 503 with Retry-After: 1,
    while `garbage`, something that is not HTTP, and a body in `refused` gets 400."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        self.taken: list[bytes] = []
        self.down, self.garbage, self.refused = False, False, {b"bad"}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(handler) -> None:
                server = handler.server
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                if server.garbage:
                    handler.wfile.write(b"not an HTTP answer\r\n\r\n")
                    return
                status = 503 if server.down else 400 if body in server.refused else 200
                if status == 200:
                    server.taken.append(body)
                handler.send_response(status)
                handler.send_header("Retry-After", "1")
                handler.send_header("Content-Length", "0")
                handler.end_headers()

        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_forwarding_waits_out_an_endpoint_that_is_down_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: connections are refused
    forwarder = OtlpForwarder(f"http://127.0.0.1:{port}", tmp_path / "fwd")
    bodies = [f"request {i}".encode() for i in range(5)]
    endpoint = None
    try:
        for body in bodies:
            assert forwarder.offer("traces", body, "application/x-protobuf", None)
        assert _eventually(lambda: forwarder.retries >= 1, True)
        assert (forwarder.sent, forwarder.failed, forwarder.queued) == (0, 0, 5)
        endpoint = _Endpoint(port)
        assert _eventually(lambda: forwarder.sent, 5) == 5
        assert endpoint.taken == bodies and (forwarder.failed, forwarder.dropped, forwarder.queued) == (0, 0, 0)
    finally:
        forwarder.close()
        if endpoint is not None:
            endpoint.shutdown()


def test_what_is_queued_at_a_stop_is_sent_after_the_next_start_and_only_once(tmp_path: Path) -> None:
    endpoint = _Endpoint()
    url = f"http://127.0.0.1:{endpoint.server_address[1]}"
    bodies = [f"request {i}".encode() for i in range(4)]
    first = OtlpForwarder(url, tmp_path / "fwd")
    try:
        for body in bodies[:2]:
            assert first.offer("logs", body, "application/json", None)
        assert _eventually(lambda: first.sent, 2) == 2
        endpoint.down = True  # 503 with Retry-After: the rest waits on disk
        for body in bodies[2:]:
            assert first.offer("logs", body, "application/json", None)
        assert _eventually(lambda: first.retries >= 1, True)
    finally:
        first.close(timeout=0.1)
    assert first.queued == 2 and endpoint.taken == bodies[:2]
    endpoint.down = False
    second = OtlpForwarder(url, tmp_path / "fwd")  # a restart: the same directory
    try:
        assert _eventually(lambda: second.sent, 2) == 2
        assert endpoint.taken == bodies and second.queued == 0  # the two sent before the stop are not sent again
    finally:
        second.close()
        endpoint.shutdown()


def test_a_request_the_endpoint_refuses_for_good_is_counted_and_the_next_goes(tmp_path: Path) -> None:
    endpoint = _Endpoint()
    forwarder = OtlpForwarder(f"http://127.0.0.1:{endpoint.server_address[1]}", tmp_path / "fwd")
    try:
        for body in (b"bad", b"good"):
            assert forwarder.offer("metrics", body, "application/json", None)
        assert _eventually(lambda: forwarder.sent, 1) == 1
        assert endpoint.taken == [b"good"] and (forwarder.failed, forwarder.retries) == (1, 0)
    finally:
        forwarder.close()
        endpoint.shutdown()


def test_an_endpoint_that_answers_garbage_is_retried_and_the_sender_lives_on(tmp_path: Path) -> None:
    endpoint = _Endpoint()
    endpoint.garbage = True
    forwarder = OtlpForwarder(f"http://127.0.0.1:{endpoint.server_address[1]}", tmp_path / "fwd")
    try:
        assert forwarder.offer("traces", b"kept", "application/x-protobuf", None)
        assert _eventually(lambda: forwarder.retries >= 1, True)
        endpoint.garbage = False
        assert _eventually(lambda: forwarder.sent, 1) == 1
        assert endpoint.taken == [b"kept"] and forwarder.failed == 0
    finally:
        forwarder.close()
        endpoint.shutdown()


def test_a_request_damaged_on_disk_is_skipped_and_the_rest_sent(tmp_path: Path) -> None:
    endpoint = _Endpoint(port=0)
    endpoint.down = True
    url = f"http://127.0.0.1:{endpoint.server_address[1]}"
    first = OtlpForwarder(url, tmp_path / "fwd")
    for body in (b"one", b"two"):
        first.offer("traces", body, "application/x-protobuf", None)
    first.close(timeout=0.1)
    (segment,) = (tmp_path / "fwd").glob("*.seg")
    data = bytearray(segment.read_bytes())
    at = data.index(b"one")
    data[at : at + 3] = b"ONE"  # the first request's checksum no longer matches: it is skipped, the second is read
    segment.write_bytes(bytes(data))
    endpoint.down = False
    second = OtlpForwarder(url, tmp_path / "fwd")
    try:
        assert _eventually(lambda: second.sent, 1) == 1
        assert endpoint.taken == [b"two"] and second.skipped == 1
    finally:
        second.close()
        endpoint.shutdown()


@pytest.mark.parametrize("url", ["ftp://host:4318", "not a url", "http://"])
def test_a_bad_forward_url_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ConfigError, match="forward-otlp"):
        OtlpForwarder(url, Path("unused"))
