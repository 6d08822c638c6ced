"""OpenInference's real instrumentations (openinference-instrumentation-openai and -langchain) exporting
OTLP/HTTP to a real `tracehouse serve`: kinds, models, tokens, cost, messages and time to first token
land in tracehouse's columns."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

pytest.importorskip("openinference.instrumentation.openai")
pytest.importorskip("openinference.instrumentation.langchain")

from foreign_apps import Served, served_fixture
from openai_server import WORDS_OUT

ANSWER = " ".join(WORDS_OUT)
_INSTRUMENT = """
from openinference.instrumentation.openai import OpenAIInstrumentor
from openinference.instrumentation.langchain import LangChainInstrumentor
OpenAIInstrumentor().instrument(tracer_provider=provider)
LangChainInstrumentor().instrument(tracer_provider=provider)
import openai
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
"""

_CALLS_APP = (
    _INSTRUMENT
    + """
with tracer.start_as_current_span("answer") as root:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "How often?"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Rotate?"}],
                                            stream=True, stream_options={"include_usage": True})
    "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.embeddings.create(model="text-embedding-3-small", input=["one two three"])
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
_CHAT_OPENAI_APP = (
    _INSTRUMENT
    + """
from langchain_openai import ChatOpenAI
model = ChatOpenAI(model="gpt-4o-mini", base_url=BASE_URL, api_key="sk-test", max_retries=0)
with tracer.start_as_current_span("answer") as root:
    model.invoke("How often should I rotate keys?")
    trace_id(root)
provider.shutdown()
"""
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served_fixture(tmp_path_factory, "openinference")


def test_openai_chat_stream_and_embeddings(served: Served) -> None:
    (trace_id,) = served.run(_CALLS_APP)
    spans = served.spans(trace_id)
    assert [s["name"] for s in spans] == ["answer", "ChatCompletion", "ChatCompletion", "CreateEmbeddings"]
    _, chat, streamed, embedding = spans
    for call in (chat, streamed):
        assert call["kind"] == "llm" and call["model"] == "gpt-4o-mini-2024-07-18" and call["provider"] == "openai"
        assert call["output_tokens"] == len(WORDS_OUT) and call["cost_usd"] > 0
    assert chat["time_to_first_token_ms"] is None  # not streamed
    # the stream's `First Token Stream Event` gives the time to first token, within the call
    assert 0 < streamed["time_to_first_token_ms"] <= streamed["duration_ms"]
    assert streamed["event_names"] == ["First Token Stream Event"]
    # an embedding has a model, so a price: 3 tokens of text-embedding-3-small
    assert embedding["kind"] == "embedding" and embedding["model"] == "text-embedding-3-small"
    assert embedding["input_tokens"] == 3 and embedding["cost_usd"] == pytest.approx(3 * 0.02 / 1e6)
    assert [row[0] for row in served.counted(trace_id)] == ["ChatCompletion", "ChatCompletion", "CreateEmbeddings"]


def test_langchain_prompt_spans_are_chain_steps_and_model_spans_hold_messages(served: Served) -> None:
    (trace_id,) = served.run(_CHAIN_APP)
    prompt = served.by_name(trace_id, "ChatPromptTemplate")
    assert prompt["kind"] == "chain" and prompt["attributes"]["openinference.span.kind"] == "PROMPT"
    model = served.by_name(trace_id, "FakeListChatModel")
    assert model["kind"] == "llm"
    # LangChain's serialized constructors became the messages the model was sent, and its text
    assert json.loads(model["input"]) == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "How often?"}]  # fmt: skip
    assert model["output"] == "Rotate keys every 90 days."
    assert '"lc"' not in model["input"] + model["output"]
    assert served.by_name(trace_id, "RunnableSequence")["kind"] == "chain"


def test_chat_openai_under_both_instrumentors_reports_the_call_from_two_spans(served: Served) -> None:
    """A real ChatOpenAI call with OpenInference's LangChain and OpenAI instrumentors both on: the
    LangChain span and the OpenAI span each report the call's tokens. OpenInference's LangChain
    tracer does not make its span the current one (it never attaches the context), so the OpenAI
    span is not its child but its sibling (collector/store/usage_siblings.py counts it once)."""
    (trace_id,) = served.run(_CHAT_OPENAI_APP)
    root = served.by_name(trace_id, "answer")
    langchain, openai_span = served.by_name(trace_id, "ChatOpenAI"), served.by_name(trace_id, "ChatCompletion")
    assert langchain["total_tokens"] == openai_span["total_tokens"] > 0  # the same call, reported twice
    assert json.loads(langchain["input"]) == [{"role": "user", "content": "How often should I rotate keys?"}]
    assert langchain["output"] == ANSWER
    assert langchain["parent_span_id"] == openai_span["parent_span_id"] == root["span_id"]  # siblings


def test_chat_openai_under_both_instrumentors_counts_the_call_once(served: Served) -> None:
    """The sibling rule: the LangChain span's report is shadowed by the OpenAI span inside its time."""
    (trace_id,) = served.run(_CHAT_OPENAI_APP)
    counted = served.counted(trace_id)
    assert [row[0] for row in counted] == ["ChatCompletion"] and counted[0][4] > 0  # the provider call


_CHAT_OPENAI_NO_ROOT_APP = (
    _INSTRUMENT
    + """
from langchain_openai import ChatOpenAI
model = ChatOpenAI(model="gpt-4o-mini", base_url=BASE_URL, api_key="sk-test", max_retries=0)
model.invoke("No app span around me: how often?")
provider.shutdown()
"""
)


def test_chat_openai_with_no_app_span_counts_the_call_once_across_its_two_traces(served: Served) -> None:
    """With no span of the app around the call, the two reports are root spans of two traces (the LangChain
    tracer never makes its span current): the root rule (collector/store/usage_roots.py) counts it once."""
    served.run(_CHAT_OPENAI_NO_ROOT_APP)
    rows = served.collector.query(
        "SELECT name, trace_id, parent_span_id, total_tokens FROM spans "
        "WHERE positionUTF8(input, 'No app span around me') > 0 ORDER BY name"
    )
    assert [row[0] for row in rows] == ["ChatCompletion", "ChatOpenAI"]
    (_, provider_trace, provider_parent, tokens), (_, framework_trace, framework_parent, reported) = rows
    assert provider_trace != framework_trace and provider_parent == framework_parent == ""  # two roots
    assert tokens == reported > 0  # one call, reported twice
    assert all(len(t) == 32 and t.isalnum() for t in (provider_trace, framework_trace))
    counted = served.collector.query(
        f"SELECT name, total_tokens FROM llm_usage WHERE trace_id IN ('{provider_trace}', '{framework_trace}')"
    )
    assert counted == [["ChatCompletion", tokens]]
