"""The instrumented `openai` client is indistinguishable from the plain one; every choice of `n>1` is recorded."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Iterator

import pytest

openai = pytest.importorskip("openai")

from openai_server import WORDS_OUT, OpenAIServer  # noqa: E402

import tracehouse as th  # noqa: E402
from tracehouse.testing import CapturedSpans  # noqa: E402

ANSWER = " ".join(WORDS_OUT)
QUESTION = [{"role": "user", "content": "How often rotate keys?"}]


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


def _both(server: OpenAIServer, spans: CapturedSpans, observe: Callable[[Any], Any]) -> tuple[Any, Any]:
    """What `observe(client)` sees without tracehouse, and then with it."""
    plain = observe(_client(server))
    handle = th.instrument_openai()
    try:
        traced = observe(_client(server))
    finally:
        handle.uninstrument()
    assert len(spans) >= 1, "the instrumented run recorded its call"
    return plain, traced


def test_a_streamed_create_is_an_openai_stream_with_its_attributes(
    server: OpenAIServer, instrumented: CapturedSpans
) -> None:
    stream = _client(server).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200 and stream.response.headers["content-type"] == "text/event-stream"
    with stream as same:
        assert same is stream
        text = "".join(chunk.choices[0].delta.content or "" for chunk in same)
    assert text == ANSWER
    stream.close()  # closing again is harmless, as on a plain stream
    assert instrumented.names() == ["chat gpt-4o-mini"] and instrumented[0]["output"] == ANSWER


def test_an_async_streamed_create_is_an_openai_async_stream(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="test", max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
        assert isinstance(stream, openai.AsyncStream) and stream.response.status_code == 200
        async with stream as same:
            assert same is stream
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in same])
        await client.close()
        return text

    assert asyncio.run(main()) == ANSWER
    assert instrumented.by_name("chat gpt-4o-mini")["total_tokens"] == 9


def test_raw_and_streaming_responses_behave_as_without_tracehouse(server: OpenAIServer, spans: CapturedSpans) -> None:
    def observe(client: Any) -> Any:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
        raw_stream = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=QUESTION, stream=True
        )
        streamed_chunks = [c.choices[0].delta.content for c in raw_stream.parse()]
        with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=QUESTION) as response:
            streaming = (type(response).__name__, response.status_code, response.parse().choices[0].message.content)
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=QUESTION, stream=True
        ) as response:
            lines = [line for line in response.iter_lines() if line]
        return {
            "raw": (type(raw).__name__, raw.http_response.status_code, raw.parse().choices[0].message.content),
            "raw_stream": (type(raw_stream.parse()).__name__, streamed_chunks),
            "streaming": streaming,
            "lines": len(lines),
        }

    plain, traced = _both(server, spans, observe)
    assert traced == plain
    assert plain["raw"] == ("LegacyAPIResponse", 200, ANSWER) and plain["lines"] == len(WORDS_OUT) + 2


def test_the_stream_helper_and_attribute_access_are_unchanged(server: OpenAIServer, spans: CapturedSpans) -> None:
    def observe(client: Any) -> Any:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=QUESTION) as stream:
            final = stream.get_final_completion()
        completions = client.chat.completions
        return (final.choices[0].message.content, type(completions).__name__, completions.create.__name__,
                callable(completions.with_raw_response.create))  # fmt: skip

    plain, traced = _both(server, spans, observe)
    assert traced == plain and plain[0] == ANSWER
    assert spans.by_name("chat gpt-4o-mini")["output"] == ANSWER


def test_every_choice_of_n_2_lands_in_output_and_messages(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    reply = _client(server).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, n=2)
    assert [c.message.content for c in reply.choices] == [ANSWER, ANSWER + " 1"]
    row = instrumented.by_name("chat gpt-4o-mini")
    assert json.loads(row["output"]) == [ANSWER, ANSWER + " 1"]
    messages = json.loads(row["attributes"]["gen_ai.output.messages"])
    assert [m["parts"][0]["content"] for m in messages] == [ANSWER, ANSWER + " 1"]
    assert row["attributes"]["gen_ai.request.choice.count"] == "2"
    assert json.loads(row["attributes"]["gen_ai.response.finish_reasons"]) == ["stop", "stop"]


def test_every_choice_of_an_interleaved_stream_is_assembled(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    client = _client(server)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, n=3, stream=True)
    indexes = [chunk.choices[0].index for chunk in stream]
    assert indexes[:3] == [0, 1, 2], "the server interleaves the choices"
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say it", n=2, stream=True).close()
    row = instrumented.by_name("chat gpt-4o-mini")
    assert json.loads(row["output"]) == [ANSWER, ANSWER + " 1", ANSWER + " 2"]
    messages = json.loads(row["attributes"]["gen_ai.output.messages"])
    assert [m["finish_reason"] for m in messages] == ["stop", "stop", "stop"] and len(messages) == 3
    assert (row["input_tokens"], row["output_tokens"]) == (4, 5)


def test_legacy_completions_with_n_2_keep_both_texts(server: OpenAIServer, instrumented: CapturedSpans) -> None:
    _client(server).completions.create(model="gpt-3.5-turbo-instruct", prompt="Say it", n=2)
    row = instrumented.by_name("text_completion gpt-3.5-turbo-instruct")
    assert json.loads(row["output"]) == [ANSWER, ANSWER + " 1"]
