"""`th.instrument_langchain()` with real langchain-core: fake chat models, a retriever, tools, LCEL."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool

import tracehouse as th
from tracehouse.testing import CapturedSpans

DOCS = [
    Document(page_content="Keys rotate every 90 days.", metadata={"id": "d1", "score": 0.9}),
    Document(page_content="x" * 100_000, metadata={"id": "d2", "score": 0.5}),
    Document(page_content="Revoke the old key after deploying the new one.", metadata={"id": "d3"}),
]
ANSWER = "Rotate keys every 90 days."


class KeyDocs(BaseRetriever):
    """A retriever over three fixed documents."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return DOCS


def _model(**usage: int) -> GenericFakeChatModel:
    message = AIMessage(content=ANSWER, usage_metadata={"input_tokens": 30, "output_tokens": 7, "total_tokens": 37},
                        response_metadata={"model_name": "gpt-4o-mini"})  # fmt: skip
    return GenericFakeChatModel(messages=iter([message] * 10))


def _chain(model: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from: {context}"), ("human", "{question}")])
    context = KeyDocs() | RunnableLambda(lambda docs: "\n".join(d.page_content[:50] for d in docs), name="join_docs")
    return {"context": context, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()


@pytest.fixture
def instrumented(spans: CapturedSpans) -> Iterator[CapturedSpans]:
    handle = th.instrument_langchain()
    yield spans
    handle.uninstrument()


def test_an_lcel_rag_chain_nests_under_the_traced_function(instrumented: CapturedSpans) -> None:
    chain = _chain(_model())

    @th.trace(kind="chain")
    def answer(question: str) -> str:
        return str(chain.invoke(question))

    assert answer("How often do keys rotate?") == ANSWER
    tree = instrumented.tree()
    assert tree[0]["name"] == "answer" and [c["name"] for c in tree[0]["children"]] == ["RunnableSequence"]
    steps = tree[0]["children"][0]["children"]
    assert [(s["name"], s["kind"]) for s in steps] == [
        ("RunnableParallel<context,question>", "chain"), ("ChatPromptTemplate", "chain"),
        ("GenericFakeChatModel", "chat"), ("StrOutputParser", "chain"),
    ]  # fmt: skip
    parallel = steps[0]["children"]
    assert sorted(c["name"] for c in parallel) == ["RunnablePassthrough", "RunnableSequence"]
    retriever = instrumented.by_name("KeyDocs")
    assert retriever["kind"] == "retriever" and retriever["input"] == "How often do keys rotate?"
    documents = json.loads(retriever["context"])
    assert [d["id"] for d in documents] == ["d1", "d2", "d3"] and documents[0]["score"] == 0.9
    assert len(documents[1]["text"]) < 100_000 and documents[2]["text"] == DOCS[2].page_content
    chat = instrumented.by_name("GenericFakeChatModel")
    assert (chat["input_tokens"], chat["output_tokens"]) == (30, 7) and chat["output"] == ANSWER
    assert chat["cost_usd"] == pytest.approx((30 * 0.15 + 7 * 0.60) / 1e6)
    messages = json.loads(chat["input"])
    assert [m["role"] for m in messages] == ["system", "user"] and messages[1]["content"] == "How often do keys rotate?"


def test_stream_batch_and_async_forms(instrumented: CapturedSpans) -> None:
    chain = _chain(_model())
    assert "".join(chain.stream("q1")) == ANSWER
    assert chain.batch(["q2", "q3"]) == [ANSWER, ANSWER]

    async def run() -> list[str]:
        first = await chain.ainvoke("q4")
        streamed = "".join([piece async for piece in chain.astream("q5")])
        return [first, streamed]

    assert asyncio.run(run()) == [ANSWER, ANSWER]
    chats = [row for row in instrumented if row["kind"] == "chat"]
    assert len(chats) == 5 and all(row["output"] == ANSWER for row in chats)
    assert all(row["time_to_first_token_ms"] is not None for row in chats[:1])  # stream: tokens came one by one
    roots = [node for node in instrumented.tree() if node["name"] == "RunnableSequence"]
    assert len(roots) == 5 and all(len(node["children"]) == 4 for node in roots)


def test_tools_and_errors_keep_what_the_user_would_see(instrumented: CapturedSpans) -> None:
    @tool
    def lookup(key: str) -> str:
        """Look a policy up."""
        if key == "missing":
            raise KeyError(key)
        return f"policy for {key}"

    assert lookup.invoke({"key": "rotation"}) == "policy for rotation"
    with pytest.raises(KeyError):
        lookup.invoke({"key": "missing"})
    ok, failed = instrumented.rows
    assert ok["name"] == "lookup" and ok["kind"] == "tool" and ok["output"] == "policy for rotation"
    assert failed["status"] == "error" and "KeyError" in failed["status_message"]


def test_a_failing_user_callback_and_user_callbacks_still_run(instrumented: CapturedSpans) -> None:
    seen: list[str] = []

    class Mine(BaseCallbackHandler):
        def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
            seen.append("start")

    class Broken(BaseCallbackHandler):
        raise_error = True

        def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("user callback bug")

    double = RunnableLambda(lambda x: x * 2, name="double")
    assert double.invoke(2, config={"callbacks": [Mine()]}) == 4 and seen == ["start"]
    with pytest.raises(RuntimeError, match="user callback bug"):
        double.invoke(3, config={"callbacks": [Broken()]})  # LangChain stops before tracehouse hears the end
    assert [row["name"] for row in instrumented] == ["double"]
    th.instrument_langchain(orphan_after=0)  # the same handle; top-level runs count as left open at once
    th.flush()
    assert [row["name"] for row in instrumented] == ["double", "double"]
    assert instrumented[1]["attributes"]["tracehouse.orphaned"] == "true"


def test_openai_under_langchain_is_one_call_with_one_parent(instrumented: CapturedSpans) -> None:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult

    openai = pytest.importorskip("openai")
    from openai_server import OpenAIServer

    server = OpenAIServer()

    class OpenAIBacked(BaseChatModel):
        """A chat model that calls the real openai client (as langchain-openai does)."""

        @property
        def _llm_type(self) -> str:
            return "openai-backed"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
            client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": str(messages[-1].content)}]
            )
            usage = {"input_tokens": reply.usage.prompt_tokens, "output_tokens": reply.usage.completion_tokens,
                     "total_tokens": reply.usage.total_tokens}  # fmt: skip
            message = AIMessage(content=reply.choices[0].message.content, usage_metadata=usage)
            return ChatResult(generations=[ChatGeneration(message=message)])

    handle = th.instrument_openai()
    try:
        OpenAIBacked().invoke("How often?")
    finally:
        handle.uninstrument()
        server.stop()
    assert instrumented.tree(("name", "kind")) == [{"name": "OpenAIBacked", "kind": "chat", "children": [
        {"name": "chat gpt-4o-mini", "kind": "chat", "children": []}]}]  # fmt: skip
    outer, inner = instrumented.by_name("OpenAIBacked"), instrumented.by_name("chat gpt-4o-mini")
    assert inner["input_tokens"] == 2 and inner["cost_usd"] is not None
    assert outer["input_tokens"] is None and outer["cost_usd"] is None, "tokens and cost are counted once"


def test_instrumenting_twice_is_one_handler_and_uninstrument_stops_tracing(spans: CapturedSpans) -> None:
    first = th.instrument_langchain()
    assert th.instrument_langchain() is first
    RunnableLambda(lambda x: x, name="traced").invoke(1)
    th.uninstrument_langchain()
    RunnableLambda(lambda x: x, name="not-traced").invoke(1)
    assert spans.names() == ["traced"] and not first.active
    first.uninstrument()


def test_runs_left_open_are_ended_on_flush(instrumented: CapturedSpans) -> None:
    from uuid import uuid4

    from tracehouse.integrations.langchain import instrument as _langchain

    assert _langchain._active is not None
    handler = _langchain._active.handler
    parent, child = uuid4(), uuid4()
    handler.on_chain_start({"name": "outer"}, {}, run_id=parent)
    handler.on_chain_start({"name": "inner"}, {}, run_id=child, parent_run_id=parent)
    handler.on_chain_end({}, run_id=parent)  # LangChain never closed the child
    assert instrumented.names() == ["outer"]
    th.flush()
    assert instrumented.names() == ["outer", "inner"]
    assert instrumented.by_name("inner")["attributes"]["tracehouse.orphaned"] == "true"


def test_agent_runs_and_their_actions(instrumented: CapturedSpans) -> None:
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.runnables import RunnableConfig

    def step(question: str, config: RunnableConfig) -> str:
        manager = config["callbacks"]  # the agent's run manager's children: report as an agent does
        for handler in manager.handlers:
            handler.on_agent_action(AgentAction("lookup", {"key": "rotation"}, "I should look it up"),
                                    run_id=manager.parent_run_id)  # fmt: skip
            handler.on_agent_finish(AgentFinish({"output": ANSWER}, "done"), run_id=manager.parent_run_id)
        return ANSWER

    assert RunnableLambda(step, name="KeyAgent").invoke("How often?") == ANSWER
    row = instrumented.by_name("KeyAgent")
    assert row["kind"] == "agent"
    assert [name for name in row["event_names"]] == ["agent_action", "agent_finish"]
    assert json.loads(row["event_attributes"][0]["tool_input"]) == {"key": "rotation"}
