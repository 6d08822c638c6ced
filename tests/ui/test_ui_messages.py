"""Every message format the store folds reads as a conversation in the trace view."""

from __future__ import annotations

import orjson

from tracehouse.collector.otlp.conventions import _normalise
from tracehouse.collector.ui.messages import messages


def test_openai_chat_with_content_parts_and_tool_calls() -> None:
    value = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "found"},
    ]  # fmt: skip
    assert messages(orjson.dumps(value).decode()) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is\n[image_url]"},
        {"role": "assistant", "content": '→ search({"q": "x"})'},
        {"role": "tool", "content": "(result of call c1)\nfound"},
    ]


def test_genai_parts_format_input_and_output() -> None:
    inputs = [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1", "response": {"temp": 21}}]},
    ]
    outputs = [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [
                {"type": "text", "content": "Sunny."},
                {"type": "tool_call", "id": "t2", "name": "get_weather", "arguments": {"city": "Paris"}},
            ],
        }
    ]
    assert messages(orjson.dumps(inputs)) == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "tool", "content": '← result of t1: {"temp":21}'},
    ]
    assert messages(outputs) == [{"role": "assistant", "content": 'Sunny.\n→ get_weather({"city":"Paris"})'}]


def test_openinference_and_openllmetry_as_folded() -> None:
    attributes = _normalise({
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "hi there",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
    })  # fmt: skip
    assert messages(attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "hi there"}]
    assert messages(attributes["gen_ai.output.messages"]) == [{"role": "assistant", "content": "→ lookup({})"}]
    traceloop = _normalise(
        {
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "ping",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "pong",
        }
    )
    assert messages(traceloop["gen_ai.input.messages"]) == [{"role": "user", "content": "ping"}]
    assert messages(traceloop["gen_ai.output.messages"]) == [{"role": "assistant", "content": "pong"}]


def test_langchain_serialized_messages_and_batches() -> None:
    constructor = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", "HumanMessage"],
        "kwargs": {"content": "tell me a joke", "type": "human"},
    }
    ai = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", "AIMessage"],
        "kwargs": {"content": "", "tool_calls": [{"name": "joke_db", "args": {"topic": "cats"}, "id": "1"}]},
    }
    assert messages({"messages": [[constructor, ai]]}) == [
        {"role": "user", "content": "tell me a joke"},
        {"role": "assistant", "content": '→ joke_db({"topic":"cats"})'},
    ]
    assert messages([{"type": "human", "data": {"content": "hello"}}, {"type": "ai", "content": "hey"}]) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hey"},
    ]


def test_openai_choices_and_single_message() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "one"}},
                        {"index": 1, "message": {"role": "assistant", "content": "two"}}]}  # fmt: skip
    assert messages(body) == [{"role": "assistant", "content": "one"}, {"role": "assistant", "content": "two"}]
    assert messages({"role": "assistant", "content": "solo"}) == [{"role": "assistant", "content": "solo"}]


def test_values_that_are_not_conversations() -> None:
    for value in (None, "", "plain text", "[1, 2]", '{"query": "x"}', [], [{"text": "doc"}], "{broken", 42):
        assert messages(value) is None, value
