"""The real Logfire SDK, with `logfire.instrument_openai()`, exporting OTLP/HTTP to a real `tracehouse
serve` beside Logfire's own pipeline (`send_to_logfire=False`): spans are named by their call or
message (not Logfire's message templates), and a streamed call, which Logfire records as a request
span and a `streaming response` log, is one chat call."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

pytest.importorskip("logfire")

from foreign_apps import Served, served_fixture
from openai_server import WORDS_OUT

ANSWER = " ".join(WORDS_OUT)
_APP = """
import logfire, openai
logfire.configure(send_to_logfire=False, console=False, service_name="logfire-app", inspect_arguments=False,
                  additional_span_processors=[BatchSpanProcessor(OTLPSpanExporter(endpoint=COLLECTOR + "/v1/traces"))])
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
logfire.instrument_openai(client)
with logfire.span("answer {topic}", topic="keys") as root:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "How often?"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Rotate?"}],
                                            stream=True, stream_options={"include_usage": True})
    "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.embeddings.create(model="text-embedding-3-small", input=["one two three"])
    logfire.info("answered {count} questions", count=2)
    trace_id(root)
logfire.shutdown()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_fixture(tmp_path_factory, "logfire")


def test_logfire_spans_are_named_and_a_stream_is_one_call(served: Served) -> None:
    (trace_id,) = served.run(_APP)
    rows = served.spans(trace_id)
    assert [s["name"] for s in rows] == [
        "answer keys", "chat gpt-4o-mini", "Chat Completion with 'gpt-4o-mini'", "chat gpt-4o-mini",
        "embeddings text-embedding-3-small", "answered 2 questions",
    ]  # fmt: skip
    spans = {s["name"]: s for s in rows}
    chats = [s for s in rows if s["name"] == "chat gpt-4o-mini"]
    assert len(chats) == 2  # the plain call and the stream's response
    for call in chats:
        assert call["kind"] == "chat" and call["model"] == "gpt-4o-mini" and call["provider"] == "openai"
        assert call["output_tokens"] == len(WORDS_OUT) and call["cost_usd"] > 0
        assert ANSWER in call["output"]
    streamed = chats[1]
    request = spans["Chat Completion with 'gpt-4o-mini'"]  # the stream's request span: opened the stream
    assert request["kind"] == "function" and request["model"] == "" and request["total_tokens"] is None
    assert request["attributes"]["logfire.msg_template"] == "Chat Completion with {request_data[model]!r}"
    assert request["scope_name"] == streamed["scope_name"] == "logfire.openai"
    # the `streaming response` log is written when the stream ends: stretched back over the stream
    assert streamed["duration_ms"] > 0
    assert json.loads(streamed["output"])[0]["role"] == "assistant"
    assert spans["embeddings text-embedding-3-small"]["kind"] == "embedding"
    assert spans["embeddings text-embedding-3-small"]["cost_usd"] == pytest.approx(3 * 0.02 / 1e6)
    assert spans["answer keys"]["kind"] == "function"
    # one row per API call in llm_usage, and by model the stream is one call
    assert [row[0] for row in served.counted(trace_id)] == [
        "chat gpt-4o-mini", "chat gpt-4o-mini", "embeddings text-embedding-3-small",
    ]  # fmt: skip
    by_model = served.collector.query(
        f"SELECT model, count() FROM spans WHERE trace_id = '{trace_id}' AND model != '' GROUP BY model ORDER BY model"
    )
    assert by_model == [["gpt-4o-mini", 2], ["text-embedding-3-small", 1]]
