"""OpenTelemetry's own OpenAI instrumentation (opentelemetry-instrumentation-openai-v2) in event mode, with
the real `openai` client against a local OpenAI-compatible server, exporting through the stock OTLP/gRPC
exporters to a real `tracehouse serve`: the prompts and completions it sends only as log events land on
the chat span's input and output, and its GenAI client metrics sit beside the spans in SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any, Iterator

import pytest
from openai_server import WORDS_OUT, OpenAIServer
from servers import Collector, free_port

pytest.importorskip("opentelemetry.instrumentation.openai_v2")

_APP = """
import openai
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

tracer_provider = TracerProvider()  # OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME from the environment
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider,
                                meter_provider=meter_provider)
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test")
with tracer_provider.get_tracer("app").start_as_current_span("answer") as span:
    client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "You are a security assistant."},
        {"role": "user", "content": "How often should I rotate keys?"},
    ])
    print(format(span.get_span_context().trace_id, "032x"))
for provider in (tracer_provider, logger_provider, meter_provider):
    provider.shutdown()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, int, OpenAIServer]]:
    grpc_port = free_port()
    collector = Collector(tmp_path_factory.mktemp("openai-v2"), free_port(), "--grpc-port", str(grpc_port))
    collector.start()
    server = OpenAIServer()
    yield collector, grpc_port, server
    server.stop()
    assert collector.stop() == 0


def _run_app(served: tuple[Collector, int, OpenAIServer], service: str, **env: str) -> str:
    _, grpc_port, server = served
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEHOUSE_"))}
    environment.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{grpc_port}", OTEL_SERVICE_NAME=service,
                       OTEL_EXPORTER_OTLP_INSECURE="true", **env)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", f"BASE_URL = {server.url!r}\n{_APP}"], env=environment,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def _chat_span(collector: Collector, trace_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{collector.url}/api/v1/traces/{trace_id}", timeout=30) as answer:
        root = json.loads(answer.read())
    assert root["name"] == "answer" and len(root["children"]) == 1
    chat: dict[str, Any] = root["children"][0]
    return chat


def test_event_mode_content_lands_on_the_chat_span(served: tuple[Collector, int, OpenAIServer]) -> None:
    # openai-v2 2.4b0 runs on opentelemetry-util-genai, whose content modes are NO_CONTENT, SPAN_ONLY,
    # EVENT_ONLY and SPAN_AND_EVENT ("true" is refused there and means no content): EVENT_ONLY is its event
    # mode, one gen_ai.client.inference.operation.details event per call
    collector = served[0]
    trace_id = _run_app(served, "events", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="EVENT_ONLY")
    events = collector.query(f"SELECT EventName, SpanId FROM otel_logs WHERE TraceId = '{trace_id}'")
    chat = _chat_span(collector, trace_id)
    assert events == [["gen_ai.client.inference.operation.details", chat["span_id"]]]
    assert chat["name"] == "chat gpt-4o-mini" and chat["model"] == "gpt-4o-mini"
    assert "gen_ai.input.messages" not in chat["attributes"]  # the span itself carries no content
    messages = json.loads(chat["input"])
    assert {"role": "user", "content": "How often should I rotate keys?"} in messages
    assert {"role": "system", "content": "You are a security assistant."} in messages
    assert chat["output"] == " ".join(WORDS_OUT)
    assert chat["logs"] == []  # folded, not listed again
    with urllib.request.urlopen(f"{collector.url}/traces/{trace_id}?span={chat['span_id']}", timeout=30) as answer:
        page = answer.read().decode()
    assert "How often should I rotate keys?" in page and " ".join(WORDS_OUT) in page
    # its GenAI client metrics sit beside the span: the token histogram adds up to the span's tokens
    rows = collector.query(
        "SELECT sumIf(Sum, Attributes['gen_ai.token.type'] = 'input'), "
        "sumIf(Sum, Attributes['gen_ai.token.type'] = 'output'), "
        f"(SELECT any(input_tokens) FROM spans WHERE trace_id = '{trace_id}' AND name = 'chat gpt-4o-mini'), "
        f"(SELECT any(output_tokens) FROM spans WHERE trace_id = '{trace_id}' AND name = 'chat gpt-4o-mini') "
        "FROM otel_metrics_histogram WHERE MetricName = 'gen_ai.client.token.usage' AND ServiceName = 'events'"
    )
    assert rows[0][0] == rows[0][2] > 0 and rows[0][1] == rows[0][3] == len(WORDS_OUT)
    durations = collector.query(
        "SELECT Count FROM otel_metrics_histogram WHERE MetricName = 'gen_ai.client.operation.duration' "
        "AND ServiceName = 'events'"
    )
    assert durations == [[1]]


def test_span_and_event_mode_keeps_the_spans_own_content(served: tuple[Collector, int, OpenAIServer]) -> None:
    collector = served[0]
    trace_id = _run_app(served, "both", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT")
    chat = _chat_span(collector, trace_id)
    assert collector.query(f"SELECT count() FROM otel_logs WHERE TraceId = '{trace_id}'") == [[1]]
    assert "How often should I rotate keys?" in chat["input"] and "parts" in chat["input"]  # the span's, as sent


def test_the_app_reports_no_export_errors(served: tuple[Collector, int, OpenAIServer]) -> None:
    _, grpc_port, server = served
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEHOUSE_"))}
    environment.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{grpc_port}", OTEL_EXPORTER_OTLP_INSECURE="true",
                       OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="EVENT_ONLY")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", f"BASE_URL = {server.url!r}\n{_APP}"], env=environment,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "Failed to export" not in done.stderr and "404" not in done.stderr, done.stderr
