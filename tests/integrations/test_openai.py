"""`th.instrument_openai()` with the real `openai` client against a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any, Iterator

import pytest

openai = pytest.importorskip("openai")

from openai_server import WORDS_OUT, OpenAIServer  # noqa: E402

import tracehouse as th  # noqa: E402
from tracehouse.testing import CapturedSpans  # noqa: E402

ANSWER = " ".join(WORDS_OUT)
QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How often rotate keys?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    running = OpenAIServer()
    yield running
    running.stop()


@pytest.fixture
def instrumented(spans: CapturedSpans) -> Iterator[CapturedSpans]:
    handle = th.instrument_openai()
    yield spans
    handle.uninstrument()


def _client(server: OpenAIServer) -> Any:
    return openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)


def _async_client(server: OpenAIServer) -> Any:
    return openai.AsyncOpenAI(base_url=server.url, api_key="test", max_retries=0)


def test_chat_completion_is_a_child_span_with_model_messages_tokens_and_cost(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    client = _client(server)  # made after instrumenting; another test covers one made before

    @th.trace(kind="chain")
    def answer() -> str:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0.2, max_tokens=50)
        return str(reply.choices[0].message.content)

    assert answer() == ANSWER
    assert instrumented.tree() == [{"name": "answer", "kind": "chain", "status": "ok", "children": [
        {"name": "chat gpt-4o-mini", "kind": "chat", "status": "ok", "children": []}]}]  # fmt: skip
    row = instrumented.by_name("chat gpt-4o-mini")
    assert row["model"] == "gpt-4o-mini" and row["provider"] == "openai"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (4, 5, 9)
    assert row["cost_usd"] == pytest.approx((4 * 0.15 + 5 * 0.60) / 1e6)
    assert row["output"] == ANSWER and json.loads(row["input"]) == QUESTION
    attrs = row["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.temperature"] == "0.2"
    assert attrs["gen_ai.request.max_tokens"] == "50" and attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1" and attrs["gen_ai.response.finish_reasons"] == '["stop"]'
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == "2" and attrs["openinference.span.kind"] == "LLM"
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "How often rotate keys?"}]}]  # fmt: skip
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}]  # fmt: skip
    assert len(attrs) < 40, "content goes in a few JSON attributes, not one per message"


def test_streamed_chat_assembles_the_text_and_asks_for_usage_without_showing_it(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    server.requests.clear()
    stream = _client(server).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks), "the usage chunk tracehouse asked for is not shown"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ANSWER
    assert server.requests[-1][1]["stream_options"] == {"include_usage": True}
    row = instrumented.by_name("chat gpt-4o-mini")
    assert row["output"] == ANSWER and (row["input_tokens"], row["output_tokens"]) == (4, 5)
    assert row["time_to_first_token_ms"] is not None and 0 <= row["time_to_first_token_ms"] <= row["duration_ms"]
    assert len(instrumented) == 1


def test_a_stream_whose_caller_asked_for_usage_keeps_its_usage_chunk(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    stream = _client(server).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert instrumented.by_name("chat gpt-4o-mini")["total_tokens"] == 9


def test_streamed_tool_calls_are_assembled_per_choice(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with _client(server).chat.completions.create(model="tools", messages=QUESTION, tools=tools, stream=True) as stream:
        for _ in stream:
            pass
    row = instrumented.by_name("chat tools")
    output = json.loads(row["attributes"]["gen_ai.output.messages"])
    assert output == [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
        {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": '{"key": "rotation"}'}]}]  # fmt: skip
    assert json.loads(row["attributes"]["gen_ai.tool.definitions"]) == tools
    assert json.loads(row["output"])[0]["name"] == "lookup"


@pytest.mark.parametrize("how", ["break", "close", "with", "garbage"])
def test_a_stream_left_early_ends_its_span_exactly_once(
    server: OpenAIServer, instrumented: CapturedSpans, how: str
) -> None:
    client = _client(server)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    if how == "with":
        with stream:
            next(iter(stream))
    else:
        for _ in stream:
            break
        if how == "close":
            stream.close()
            stream.close()
    del stream
    gc.collect()
    assert instrumented.names() == ["chat gpt-4o-mini"]
    row = instrumented[0]
    assert row["output"] == WORDS_OUT[0] and row["status"] == "ok"
    assert row["attributes"]["tracehouse.stream.end"] == ("abandoned" if how in ("break", "garbage") else "closed")


def test_a_stream_broken_in_the_middle_raises_as_usual_and_the_span_records_it(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    stream = _client(server).chat.completions.create(model="broken-stream", messages=QUESTION, stream=True)
    received = []
    with pytest.raises(Exception) as raised:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    row = instrumented.by_name("chat broken-stream")
    assert row["status"] == "error" and type(raised.value).__name__ in row["status_message"]
    assert row["output"] == "Rotate keys"


@pytest.mark.parametrize("status, error", [(429, "RateLimitError"), (500, "InternalServerError")])
def test_provider_errors_reach_the_caller_unchanged_and_mark_the_span(
    server: OpenAIServer, instrumented: CapturedSpans, status: int, error: str
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        _client(server).chat.completions.create(model=f"error-{status}", messages=QUESTION)
    assert type(raised.value).__name__ == error and raised.value.status_code == status
    row = instrumented.by_name(f"chat error-{status}")
    assert row["status"] == "error" and row["attributes"]["error.type"] == error
    assert row["attributes"]["http.response.status_code"] == str(status)


def test_no_usage_and_an_unknown_model_leave_tokens_and_cost_empty(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    _client(server).chat.completions.create(model="no-usage", messages=QUESTION)
    row = instrumented.by_name("chat no-usage")
    assert row["input_tokens"] is None and row["cost_usd"] is None and row["output"] == ANSWER


def test_embeddings_legacy_completions_and_raw_responses(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    client = _client(server)
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say it")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=QUESTION)
    assert raw.parse().choices[0].message.content == ANSWER and raw.http_response.status_code == 200
    embedding = instrumented.by_name("embeddings text-embedding-3-small")
    assert embedding["kind"] == "embedding" and embedding["input_tokens"] == 6
    assert embedding["attributes"]["gen_ai.embeddings.dimension.count"] == "8"
    completion = instrumented.by_name("text_completion gpt-3.5-turbo-instruct")
    assert completion["kind"] == "llm" and completion["output"] == ANSWER and completion["input"] == "Say it"
    assert instrumented.by_name("chat gpt-4o")["output"] == ANSWER


def test_responses_api_plain_and_streamed(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    client = _client(server)
    response = client.responses.create(model="gpt-4.1", input="How often?", instructions="Be brief.")
    assert response.output_text == ANSWER
    events = list(client.responses.create(model="gpt-4.1-mini", input="How often?", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = instrumented.by_name("chat gpt-4.1"), instrumented.by_name("chat gpt-4.1-mini")
    for row in (plain, streamed):
        assert row["output"] == ANSWER and (row["input_tokens"], row["output_tokens"]) == (2, 5)
        assert row["attributes"]["gen_ai.usage.reasoning.output_tokens"] == "2"
    assert streamed["time_to_first_token_ms"] is not None
    assert json.loads(plain["attributes"]["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]


def test_async_client_plain_and_streamed(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    async def main() -> str:
        client = _async_client(server)
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        stream = await client.chat.completions.create(model="gpt-4.1-nano", messages=QUESTION, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        await client.close()
        return str(reply.choices[0].message.content) + "|" + text

    assert asyncio.run(main()) == ANSWER + "|" + ANSWER
    assert instrumented.by_name("chat gpt-4.1-nano")["total_tokens"] == 9
    assert instrumented.by_name("chat gpt-4o-mini")["output"] == ANSWER


def test_instrumenting_is_idempotent_and_uninstrument_restores_the_methods(
    server: OpenAIServer, spans: CapturedSpans
) -> None:
    from openai.resources.chat.completions import Completions

    original = Completions.create
    client = _client(server)  # made before instrumenting
    first = th.instrument_openai()
    assert th.instrument_openai() is first and Completions.create.__tracehouse_original__ is original
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert spans.names() == ["chat gpt-4o-mini"]
    th.uninstrument_openai()
    assert Completions.create is original and not first.active
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert len(spans) == 1
    first.uninstrument()  # harmless twice


def test_recording_failures_never_reach_the_call(
    server: OpenAIServer, instrumented: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracehouse.integrations.openai import record as _openai_record

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recording bug")

    monkeypatch.setenv("TRACEHOUSE_RAISE_INTERNAL_ERRORS", "0")
    monkeypatch.setattr(_openai_record, "record_request", broken)
    monkeypatch.setattr(_openai_record, "record_response", broken)
    reply = _client(server).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert reply.choices[0].message.content == ANSWER


def test_response_format_and_an_unknown_model_with_usage(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    _client(server).chat.completions.create(
        model="mystery-model", messages=QUESTION, response_format=schema, top_p=0.5, stop=["\n"], seed=7
    )
    row = instrumented.by_name("chat mystery-model")
    assert row["input_tokens"] == 4 and row["cost_usd"] is None, "no price: cost empty, not zero"
    attrs = row["attributes"]
    assert attrs["gen_ai.output.type"] == "json" and json.loads(attrs["openai.request.response_format"]) == schema
    assert (attrs["gen_ai.request.top_p"], attrs["gen_ai.request.seed"]) == ("0.5", "7")
    assert json.loads(attrs["gen_ai.request.stop_sequences"]) == ["\n"]


def test_an_async_stream_closed_early_ends_its_span(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    async def main() -> None:
        client = _async_client(server)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
        async with stream:
            async for _ in stream:
                break
        await client.close()

    asyncio.run(main())
    row = instrumented.by_name("chat gpt-4o-mini")
    assert row["attributes"]["tracehouse.stream.end"] == "closed" and row["output"] == WORDS_OUT[0]
