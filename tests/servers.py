"""Test helpers that start real things: a `tracehouse serve` process, a free port, OTLP bodies
made by the stock OpenTelemetry encoder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def otlp_body(n_traces: int = 3, model: str = "gpt-4o") -> bytes:
    """OTLP protobuf bytes of `n_traces` traces (chat > tool) with GenAI attributes."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("plain-otel")
    for _ in range(n_traces):
        with tracer.start_as_current_span("chat", attributes={"gen_ai.request.model": model}) as span:
            span.set_attribute("gen_ai.usage.input_tokens", 10)
            span.set_attribute("gen_ai.usage.output_tokens", 4)
            with tracer.start_as_current_span("tool"):
                pass
    return bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """`tracehouse serve` in a subprocess with its own data dir."""

    def __init__(self, data_dir: Path, port: int, *extra_args: str) -> None:
        self.data_dir, self.port, self.extra_args = data_dir, port, extra_args
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
        # gRPC is off unless a test asks for a port: tests run side by side, 4317 would clash
        grpc = () if "--grpc-port" in self.extra_args else ("--grpc-port", "0")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracehouse", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             *grpc, *self.extra_args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode() if self.process.stderr else "serve died")
        raise RuntimeError("collector did not become ready")

    def query(self, sql: str) -> list[list[Any]]:
        request = urllib.request.Request(
            self.url + "/api/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            rows: list[list[Any]] = json.loads(answer.read())["rows"]
            return rows

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(60)


class InProcessCollector:
    """A collector app (`build(options)`) served by uvicorn on a thread of this process: for tests that
    need real sockets and options `tracehouse serve` has no flag for."""

    def __init__(self, options: Any) -> None:
        from tracehouse.collector.server import build

        self.parts = build(options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: Any = None

    def __enter__(self) -> InProcessCollector:
        import threading

        import uvicorn

        config = uvicorn.Config(self.parts.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the in-process collector did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self.parts.close()

    def count(self, where: str = "1") -> int:
        """Spans matching `where`, read through the collector (so it catches up first)."""
        request = urllib.request.Request(
            self.url + "/api/v1/query", data=json.dumps({"sql": f"SELECT count() FROM spans WHERE {where}"}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(json.loads(answer.read())["rows"][0][0])
