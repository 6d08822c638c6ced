"""The real Langfuse SDK (v3 and later are OpenTelemetry-based) and its OpenAI drop-in exporting to a
real `tracehouse serve`: observations land with their kind, model, tokens, cost, input and output,
and a stream's `completion_start_time` is its time to first token.

Langfuse's exporter posts to `{base_url}/api/public/otel/v1/traces`, which the collector serves as it
serves `/v1/traces` (tests/collector/test_langfuse_otlp_path.py: its secret key as our key)."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

pytest.importorskip("langfuse")

from foreign_apps import Served, served_fixture
from openai_server import WORDS_OUT

ANSWER = " ".join(WORDS_OUT)
_APP = """
from langfuse import Langfuse, observe
langfuse = Langfuse(public_key="pk-lf-test", secret_key="sk-lf-test", base_url=COLLECTOR)
from langfuse.openai import OpenAI
client = OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)

@observe()
def answer(question):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}],
                                            stream=True, stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.embeddings.create(model="text-embedding-3-small", input=["one two three"])
    with langfuse.start_as_current_observation(name="lookup", as_type="tool", input={"key": "rotation"}) as tool:
        tool.update(output={"days": 90})
    with langfuse.start_as_current_observation(name="judge", as_type="generation", model="gpt-4o",
                                               input=[{"role": "user", "content": "rate it"}]) as generation:
        generation.update(output="good", usage_details={"input": 10, "output": 3},
                          cost_details={"input": 0.001, "output": 0.002})
    with langfuse.start_as_current_observation(name="check", as_type="guardrail") as check:
        check.update(level="ERROR", status_message="blocked")
    print(langfuse.get_current_trace_id())
    return text

answer("How often should I rotate keys?")
langfuse.shutdown()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_fixture(tmp_path_factory, "langfuse")


def test_langfuse_observations_land_in_the_columns(served: Served) -> None:
    (trace_id,) = served.run(_APP)
    spans = served.spans(trace_id)
    names = [s["name"] for s in spans]
    assert names == ["answer", "OpenAI-generation", "OpenAI-generation", "OpenAI-embedding", "lookup", "judge", "check"]
    root, chat, streamed, embedding, tool, judge, check = spans
    assert root["kind"] == "function" and root["output"] == ANSWER
    assert json.loads(root["input"]) == {"args": ["How often should I rotate keys?"], "kwargs": {}}
    for call in (chat, streamed):
        assert call["kind"] == "chat" and call["model"] == "gpt-4o-mini-2024-07-18"
        assert call["input_tokens"] == 6 and call["output_tokens"] == len(WORDS_OUT)
        assert call["total_tokens"] == 6 + len(WORDS_OUT) and call["cost_usd"] > 0
        assert json.loads(call["input"]) == [{"role": "user", "content": "How often should I rotate keys?"}]
        assert call["output"] == ANSWER
        assert call["attributes"]["gen_ai.usage.cache_read.input_tokens"] == "2"
    assert chat["time_to_first_token_ms"] is None
    # completion_start_time (the first chunk) less the span's start
    assert 0 < streamed["time_to_first_token_ms"] <= streamed["duration_ms"]
    assert embedding["kind"] == "embedding" and embedding["model"] == "text-embedding-3-small"
    assert embedding["input_tokens"] == 3 and embedding["cost_usd"] == pytest.approx(3 * 0.02 / 1e6)
    assert tool["kind"] == "tool" and json.loads(tool["input"]) == {"key": "rotation"}
    assert json.loads(tool["output"]) == {"days": 90}
    # cost details win over the price table
    assert judge["kind"] == "chat" and judge["model"] == "gpt-4o" and judge["cost_usd"] == pytest.approx(0.003)
    assert (judge["input_tokens"], judge["output_tokens"], judge["total_tokens"]) == (10, 3, 13)
    assert check["kind"] == "chain" and check["status"] == "error"
    assert "langfuse.observation.input" not in chat["attributes"]  # moved to the column, not copied
    counted = served.counted(trace_id)
    assert [row[0] for row in counted] == ["OpenAI-generation", "OpenAI-generation", "OpenAI-embedding", "judge"]
