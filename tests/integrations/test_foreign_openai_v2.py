"""OpenTelemetry's own OpenAI instrumentation (opentelemetry-instrumentation-openai-v2) in span and in
event mode, exporting through the stock OTLP/gRPC exporters to a real `tracehouse serve`: a plain and a
streamed call are one chat span each, with model, provider, tokens, cost and content, counted once.
(test_openai_v2_events.py checks the event mode's folding and metrics in detail.)"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

pytest.importorskip("opentelemetry.instrumentation.openai_v2")

from foreign_apps import Served, served_fixture
from openai_server import WORDS_OUT

ANSWER = " ".join(WORDS_OUT)
_APP = """
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
provider = TracerProvider()  # over gRPC, not the prelude's HTTP
provider.add_span_processor(BatchSpanProcessor(GrpcSpanExporter(endpoint=os.environ["TEST_GRPC_URL"], insecure=True)))
tracer = provider.get_tracer("app")
logs = LoggerProvider()
logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=os.environ["TEST_GRPC_URL"],
                                                                      insecure=True)))
OpenAIInstrumentor().instrument(tracer_provider=provider, logger_provider=logs)
import openai
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
with tracer.start_as_current_span("answer") as root:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "How often?"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Rotate?"}],
                                            stream=True, stream_options={"include_usage": True})
    "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    trace_id(root)
provider.shutdown()
logs.shutdown()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_fixture(tmp_path_factory, "openai-v2")


@pytest.mark.parametrize("mode", ["SPAN_ONLY", "EVENT_ONLY"])
def test_each_call_is_one_counted_chat_span(served: Served, mode: str) -> None:
    (trace_id,) = served.run(_APP, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=mode)
    root, chat, streamed = served.spans(trace_id)
    assert root["name"] == "answer"
    for call, question in ((chat, "How often?"), (streamed, "Rotate?")):
        assert call["name"] == "chat gpt-4o-mini" and call["kind"] == "chat" and call["span_kind"] == "CLIENT"
        assert call["model"] == "gpt-4o-mini" and call["provider"] == "openai"
        assert call["input_tokens"] == 1 + (question == "How often?") and call["output_tokens"] == len(WORDS_OUT)
        assert call["cost_usd"] > 0 and call["parent_span_id"] == root["span_id"]
        if mode == "SPAN_ONLY":  # in event mode the content is in otel_logs, folded when the trace is read
            assert json.loads(call["input"])[0]["parts"][0]["content"] == question
            assert ANSWER in call["output"]
        else:
            assert call["input"] == "" and call["output"] == ""
    # openai-v2 2.4b0 measures no time to first chunk (its metrics are the duration and the token usage)
    assert streamed["time_to_first_token_ms"] is None
    assert len(served.counted(trace_id)) == 2
    if mode == "EVENT_ONLY":
        logs = served.collector.query(f"SELECT count() FROM otel_logs WHERE TraceId = '{trace_id}'")
        assert logs == [[2]]  # one details event per call


_UTIL_GENAI_STREAM = """
import time
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.stream import SyncStreamWrapper

class Chunks:  # a provider SDK's stream: the first chunk comes 0.2 s after the request, the others soon after
    def __init__(self):
        self.delays = iter([0.2, 0.01, 0.01])
    def __iter__(self):
        return self
    def __next__(self):
        time.sleep(next(self.delays))
        return "chunk"
    def close(self):
        pass

class Instrumented(SyncStreamWrapper):  # how an instrumentation built on util-genai wraps that stream
    def __init__(self, stream, invocation):
        super().__init__(stream, invocation)
        self._self_call = invocation
    def _process_chunk(self, chunk):
        pass
    def _on_stream_end(self):
        self._self_call.stop()
    def _on_stream_error(self, error):
        self._self_call.fail(error)

with tracer.start_as_current_span("answer") as root:
    call = TelemetryHandler(tracer_provider=provider).start_inference("openai", request_model="gpt-4o-mini")
    call.input_tokens, call.output_tokens = 4, 3
    assert len(list(Instrumented(Chunks(), call))) == 3
    trace_id(root)
provider.shutdown()
"""


def test_a_util_genai_stream_gives_its_span_the_time_to_first_chunk(served: Served) -> None:
    # util-genai's stream wrapper (what instrumentations built on it use; openai-v2 2.4b0 has its own, which
    # measures no first chunk at all) puts gen_ai.response.time_to_first_chunk, in seconds, on the span
    (trace_id,) = served.run(_UTIL_GENAI_STREAM)
    _, call = served.spans(trace_id)
    seconds = float(call["attributes"]["gen_ai.response.time_to_first_chunk"])
    assert call["name"] == "chat gpt-4o-mini" and call["input_tokens"] == 4 and call["output_tokens"] == 3
    assert call["time_to_first_token_ms"] == pytest.approx(seconds * 1000)
    assert 200 <= call["time_to_first_token_ms"] < call["duration_ms"]
