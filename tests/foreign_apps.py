"""Helpers of tests/integrations/test_foreign_*.py: an app that uses a foreign instrumentation runs in a
subprocess (its global patches stay out of the test process), exports OTLP to a real `tracehouse
serve`, and prints its trace ids; the tests read the stored rows back through the collector's SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import pytest
from openai_server import OpenAIServer
from servers import Collector, free_port

COLUMNS = (
    "span_id", "parent_span_id", "name", "kind", "model", "provider", "input", "output", "input_tokens",
    "output_tokens", "total_tokens", "cost_usd", "time_to_first_token_ms", "duration_ms", "status", "event_names",
    "scope_name", "span_kind", "attributes",
)  # fmt: skip

# the app's first lines: where the collector and the OpenAI-compatible server are, and a tracer
# provider exporting to the collector over OTLP/HTTP (protobuf)
PRELUDE = """
import os
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
BASE_URL = os.environ["TEST_OPENAI_URL"]
COLLECTOR = os.environ["TEST_COLLECTOR_URL"]
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=COLLECTOR + "/v1/traces")))
tracer = provider.get_tracer("app")
def trace_id(span):
    print(format(span.get_span_context().trace_id, "032x"))
"""


class Served:
    """A collector (HTTP and gRPC) and an OpenAI-compatible server, for one test module."""

    def __init__(self, collector: Collector, grpc_port: int, server: OpenAIServer) -> None:
        self.collector, self.grpc_port, self.server = collector, grpc_port, server

    def run(self, code: str, **env: str) -> list[str]:
        """Run `code` (after PRELUDE) in a fresh interpreter; the trace ids it printed."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEHOUSE_", "LANGFUSE_"))}
        environment.update(TEST_OPENAI_URL=self.server.url, TEST_COLLECTOR_URL=self.collector.url,
                           TEST_GRPC_URL=f"http://127.0.0.1:{self.grpc_port}", OTEL_EXPORTER_OTLP_INSECURE="true",
                           LOGFIRE_SEND_TO_LOGFIRE="false", **env)  # fmt: skip
        done = subprocess.run([sys.executable, "-c", PRELUDE + code], env=environment, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Failed to export" not in done.stderr and "Exception while exporting" not in done.stderr, done.stderr
        return [line for line in done.stdout.split() if len(line) == 32]

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The trace's stored rows (COLUMNS), in start order."""
        assert len(trace_id) == 32 and trace_id.isalnum()
        rows = self.collector.query(
            f"SELECT {', '.join(COLUMNS)} FROM spans WHERE trace_id = '{trace_id}' ORDER BY start_time, name"
        )
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def counted(self, trace_id: str) -> list[list[Any]]:
        """The trace's rows in `llm_usage` (each LLM call once): name, model, input, output and total tokens."""
        return self.collector.query(
            "SELECT name, model, input_tokens, output_tokens, total_tokens FROM llm_usage "
            f"WHERE trace_id = '{trace_id}' ORDER BY start_time"
        )

    def by_name(self, trace_id: str, name: str) -> dict[str, Any]:
        (found,) = [s for s in self.spans(trace_id) if s["name"] == name]
        return found


def served_fixture(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Served]:
    """A module fixture's body: start both servers, yield them, stop them."""
    grpc_port = free_port()
    collector = Collector(tmp_path_factory.mktemp(name), free_port(), "--grpc-port", str(grpc_port))
    collector.start()
    server = OpenAIServer()
    try:
        yield Served(collector, grpc_port, server)
    finally:
        server.stop()
        assert collector.stop() == 0
