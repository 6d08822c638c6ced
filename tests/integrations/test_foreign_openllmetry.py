"""OpenLLMetry's (Traceloop's) real instrumentations, opentelemetry-instrumentation-openai and
-langchain, exporting OTLP/HTTP to a real `tracehouse serve`: a stream keeps one event for its chunks
and its time to first token, LangChain's serialized runs read as plain inputs and messages."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

pytest.importorskip("opentelemetry.instrumentation.openai")
pytest.importorskip("opentelemetry.instrumentation.langchain")

from foreign_apps import Served, served_fixture
from openai_server import WORDS_OUT

_INSTRUMENT = """
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
OpenAIInstrumentor().instrument(tracer_provider=provider)
LangchainInstrumentor().instrument(tracer_provider=provider)
import openai
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
"""

_STREAM_APP = (
    _INSTRUMENT
    + """
with tracer.start_as_current_span("answer") as root:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "How often?"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Rotate?"}],
                                            stream=True, stream_options={"include_usage": True})
    "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    trace_id(root)
provider.shutdown()
"""
)
_CHAIN_APP = (
    _INSTRUMENT
    + """
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{q}")])
chain = prompt | FakeListChatModel(responses=["Rotate keys every 90 days."]) | StrOutputParser()
with tracer.start_as_current_span("answer") as root:
    chain.invoke({"q": "How often?"})
    trace_id(root)
provider.shutdown()
"""
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_fixture(tmp_path_factory, "openllmetry")


def test_a_stream_is_one_chat_call_with_one_chunk_event_and_its_first_token(served: Served) -> None:
    (trace_id,) = served.run(_STREAM_APP)
    _, chat, streamed = served.spans(trace_id)
    for call in (chat, streamed):
        assert call["name"] == "openai.chat" and call["kind"] == "chat" and call["provider"] == "openai"
        assert call["model"] == "gpt-4o-mini" and call["output_tokens"] == len(WORDS_OUT) and call["cost_usd"] > 0
        assert " ".join(WORDS_OUT) in call["output"]
    assert chat["event_names"] == [] and chat["time_to_first_token_ms"] is None
    # one `gen_ai.content.completion.chunk` per chunk on the wire: one event here, at the first chunk
    assert streamed["event_names"] == ["gen_ai.content.completion.chunk"]
    chunks = served.collector.query(
        f"SELECT event_attributes[1]['chunks'], toUnixTimestamp64Nano(event_times[1]) - toUnixTimestamp64Nano("
        f"start_time) FROM spans WHERE trace_id = '{trace_id}' AND span_id = '{streamed['span_id']}'"
    )
    assert chunks[0][0] == str(len(WORDS_OUT) + 2)  # the words, the finish chunk, the usage chunk
    assert streamed["time_to_first_token_ms"] == pytest.approx(chunks[0][1] / 1e6)
    assert 0 < streamed["time_to_first_token_ms"] <= streamed["duration_ms"]
    assert len(served.counted(trace_id)) == 2


def test_langchain_runs_read_as_their_inputs_and_messages(served: Served) -> None:
    (trace_id,) = served.run(_CHAIN_APP)
    workflow = served.by_name(trace_id, "RunnableSequence.workflow")
    assert workflow["kind"] == "chain"
    assert json.loads(workflow["input"]) == {"q": "How often?"} and workflow["output"] == "Rotate keys every 90 days."
    prompt = served.by_name(trace_id, "execute_task ChatPromptTemplate")
    assert json.loads(prompt["output"]) == {"messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": "How often?"}]}  # fmt: skip
    parser = served.by_name(trace_id, "execute_task StrOutputParser")
    assert json.loads(parser["input"]) == {"role": "assistant", "content": "Rotate keys every 90 days."}
    assert served.by_name(trace_id, "FakeListChatModel.chat")["kind"] == "chat"
    assert not any('"constructor"' in s["input"] + s["output"] for s in served.spans(trace_id))
