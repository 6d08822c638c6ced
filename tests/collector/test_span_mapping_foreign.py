"""Foreign conventions, one attribute at a time: OTLP/JSON spans shaped as Langfuse, Logfire, OpenInference,
OpenLLMetry and LangChain send them go through the real decoder (`collector/otlp/conventions*.py`) and
the span mapping, and land in tracehouse's columns. (tests/integrations/test_foreign_*.py drive the
real packages end to end.)"""

from __future__ import annotations

import itertools
import json
from typing import Any, Optional

import orjson
import pytest

import tracehouse as th
from tracehouse.collector.otlp.decode import decode_traces
from tracehouse.collector.store.rows.span_sql import check_and_insert_json
from tracehouse.collector.store.rows.spans import SPAN_COLUMNS, span_columns, span_row
from tracehouse.reads.reading import get_store

_ids = itertools.count(1)
_START = 1_780_000_000_000_000_000
_END = _START + 2_000_000_000  # a span of two seconds


def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any(v) for v in value]}}
    return {"stringValue": value}


def _records(attributes: dict[str, Any], name: str = "op", scope: str = "s", events: Any = (),
             start: int = _START, end: int = _END, status: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    n = next(_ids)
    span = {
        "traceId": format(n, "032x"), "spanId": format(n, "016x"), "name": name, "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "status": {"code": status},
        "attributes": [{"key": k, "value": _any(v)} for k, v in attributes.items()],
        "events": [{"name": e, "timeUnixNano": str(t), "attributes": []} for e, t in events],
    }  # fmt: skip
    body = {
        "resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": scope}, "spans": [span]}]}]
    }
    decoded = decode_traces(orjson.dumps(body), "application/json", None, "foreign")
    assert not decoded.rejected
    return list(decoded.records)


def _row(attributes: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    (record,) = _records(attributes, **kwargs)
    return span_row(record)


def _json(text: str) -> Any:
    return json.loads(text)


# --- Langfuse -----------------------------------------------------------------------------------

_MESSAGES = json.dumps([{"role": "user", "content": "How often?"}])


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"input": 10, "output": 3, "total": 13}, (10, 3, 13)),
        ({"input": 10, "output": 3}, (10, 3, 13)),
        ({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9, "prompt_tokens_details": {"cached_tokens": 2}},
         (4, 5, 9)),
        ({"input_tokens": 7, "output_tokens": 1}, (7, 1, 8)),
        ({"input": 3}, (3, None, 3)),
    ],
)  # fmt: skip
def test_langfuse_generation_usage(usage: dict[str, Any], expected: tuple[Any, ...]) -> None:
    row = _row({
        "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini",
        "langfuse.observation.input": _MESSAGES, "langfuse.observation.usage_details": json.dumps(usage),
        "langfuse.observation.output": json.dumps({"role": "assistant", "content": "Every 90 days."}),
    })  # fmt: skip
    assert row["kind"] == "chat" and row["model"] == "gpt-4o-mini"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == expected
    assert row["cost_usd"] > 0  # the price table prices the tokens
    assert _json(row["input"]) == [{"role": "user", "content": "How often?"}] and row["output"] == "Every 90 days."
    assert (
        "langfuse.observation.input" not in row["attributes"] and "langfuse.observation.output" not in row["attributes"]
    )
    if "prompt_tokens_details" in usage:
        assert row["attributes"]["gen_ai.usage.cache_read.input_tokens"] == "2"


@pytest.mark.parametrize(
    "cost, expected", [({"total": 0.5}, 0.5), ({"input": 0.1, "output": 0.2}, 0.3), ({"input": 0, "output": 0}, 0.0)]
)
def test_langfuse_cost_details_win_over_the_price_table(cost: dict[str, float], expected: float) -> None:
    row = _row({
        "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
        "langfuse.observation.usage_details": '{"input": 1000, "output": 1000}',
        "langfuse.observation.cost_details": json.dumps(cost),
    })  # fmt: skip
    assert row["cost_usd"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "observation, expected",
    [("generation", "llm"), ("embedding", "embedding"), ("agent", "agent"), ("tool", "tool"), ("chain", "chain"),
     ("retriever", "retriever"), ("evaluator", "chain"), ("guardrail", "chain"), ("span", "function"),
     ("event", "function"), ("something-new", "function")],
)  # fmt: skip
def test_langfuse_observation_types_are_kinds(observation: str, expected: str) -> None:
    row = _row({"langfuse.observation.type": observation, "langfuse.observation.input": "plain text"})
    assert row["kind"] == expected and row["input"] == "plain text"


def test_langfuse_completion_start_time_is_the_time_to_first_token() -> None:
    row = _row({"langfuse.observation.type": "generation", "langfuse.observation.completion_start_time":
                '"2026-05-28T20:26:40.250000Z"'}, start=1_780_000_000_000_000_000)  # fmt: skip
    assert row["time_to_first_token_ms"] == pytest.approx(250.0)
    offset = _row({"langfuse.observation.type": "generation",
                   "langfuse.observation.completion_start_time": "2026-05-28T22:26:40.5+02:00"})  # fmt: skip
    assert offset["time_to_first_token_ms"] == pytest.approx(500.0)


def test_langfuse_error_level_is_an_error() -> None:
    row = _row({"langfuse.observation.type": "span", "langfuse.observation.level": "ERROR",
                "langfuse.observation.status_message": "blocked by policy"})  # fmt: skip
    assert row["status"] == "error" and row["status_message"] == "blocked by policy"
    assert _row({"langfuse.observation.type": "span", "langfuse.observation.level": "WARNING"})["status"] == "ok"


def test_a_generation_whose_output_calls_tools_keeps_the_message() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "lookup"}}]}
    row = _row({"langfuse.observation.type": "generation", "langfuse.observation.output": json.dumps(message)})
    assert _json(row["output"]) == message


@pytest.mark.parametrize(
    "hostile",
    [
        {"langfuse.observation.usage_details": "{not json"},
        {"langfuse.observation.usage_details": '{"input": -5, "output": true, "total": "12"}'},
        {"langfuse.observation.usage_details": '[1, 2, 3]'},
        {"langfuse.observation.cost_details": '{"total": -1, "input": "a lot"}'},
        {"langfuse.observation.completion_start_time": '"yesterday"'},
        {"langfuse.observation.completion_start_time": '"2020-01-01T00:00:00Z"'},  # before the span started
        {"langfuse.observation.completion_start_time": '"2099-01-01T00:00:00Z"'},  # after it ended
        {"langfuse.observation.completion_start_time": '"99999-01-01T00:00:00Z"'},
        {"langfuse.observation.completion_start_time": 12345},
        {"langfuse.observation.model.name": 42},
    ],
)  # fmt: skip
def test_langfuse_values_that_are_not_what_they_claim_are_ignored(hostile: dict[str, Any]) -> None:
    row = _row({"langfuse.observation.type": "generation", **hostile})
    assert row["input_tokens"] is None and row["output_tokens"] is None and row["cost_usd"] is None
    assert row["time_to_first_token_ms"] is None and row["model"] == ""
    assert set(hostile) <= set(row["attributes"])  # kept as they came


# --- OpenInference ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, expected",
    [("LLM", "llm"), ("CHAIN", "chain"), ("TOOL", "tool"), ("RETRIEVER", "retriever"), ("RERANKER", "reranker"),
     ("EMBEDDING", "embedding"), ("AGENT", "agent"), ("GUARDRAIL", "chain"), ("EVALUATOR", "chain"),
     ("PROMPT", "chain"), ("DECISION", "chain"), ("UNKNOWN", "function")],
)  # fmt: skip
def test_every_openinference_kind(kind: str, expected: str) -> None:
    row = _row({"openinference.span.kind": kind})
    assert row["kind"] == expected and row["attributes"]["openinference.span.kind"] == kind


def test_an_openinference_embedding_has_its_model_and_price() -> None:
    row = _row({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
                "llm.token_count.prompt": 1000, "llm.token_count.total": 1000})  # fmt: skip
    assert row["kind"] == "embedding" and row["model"] == "text-embedding-3-small"
    assert row["cost_usd"] == pytest.approx(1000 * 0.02 / 1e6)
    named = _row({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "m1", "llm.model_name": "m2"})
    assert named["model"] == "m2"  # a model the span names as such wins


@pytest.mark.parametrize(
    "costs, expected",
    [({"llm.cost.total": 0.25}, 0.25), ({"llm.cost.prompt": 0.1, "llm.cost.completion": 0.05}, 0.15),
     ({"llm.cost.total": "0.5"}, 0.5), ({"llm.cost.total": -3.0}, None)],
)  # fmt: skip
def test_openinference_cost_attributes(costs: dict[str, Any], expected: Optional[float]) -> None:
    row = _row({"openinference.span.kind": "LLM", "llm.model_name": "no-price-model", **costs})
    assert row["cost_usd"] == (pytest.approx(expected) if expected is not None else None)


# --- LangChain (through OpenInference and OpenLLMetry) ------------------------------------------


def _constructor(name: str, **kwargs: Any) -> dict[str, Any]:
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", name], "kwargs": kwargs}


def test_an_openinference_chat_model_span_holds_messages_not_constructors() -> None:
    call = {"name": "lookup", "args": {"key": "rotation"}, "id": "c1"}
    messages = [_constructor("SystemMessage", content="Be brief.", type="system"),
                _constructor("HumanMessage", content="How often?", type="human"),
                _constructor("AIMessage", content="", type="ai", tool_calls=[call]),
                _constructor("ToolMessage", content="90 days", type="tool", tool_call_id="c1")]  # fmt: skip
    generation = {"text": "Every 90 days.", "message": _constructor("AIMessage", content="Every 90 days.", type="ai")}
    row = _row({
        "openinference.span.kind": "LLM", "input.value": json.dumps({"messages": [messages]}),
        "output.value": json.dumps({"generations": [[generation]], "llm_output": None}),
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
    })  # fmt: skip
    assert _json(row["input"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How often?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": {"key": "rotation"}}}]},
        {"role": "tool", "content": "90 days", "tool_call_id": "c1"},
    ]  # fmt: skip
    assert row["output"] == "Every 90 days."
    assert not any(key.startswith("llm.input_messages.") for key in row["attributes"])


def test_generations_that_call_tools_or_are_several() -> None:
    calling = {
        "text": "",
        "message": _constructor("AIMessageChunk", content="", tool_calls=[{"name": "f", "args": {}}]),
    }
    row = _row({"openinference.span.kind": "LLM", "output.value": json.dumps({"generations": [[calling]]})})
    assert _json(row["output"]) == [{"id": None, "type": "function", "function": {"name": "f", "arguments": {}}}]
    several = {"generations": [[{"text": "one"}, {"text": "two"}]]}
    assert _json(_row({"openinference.span.kind": "LLM", "output.value": json.dumps(several)})["output"]) == [
        "one",
        "two",
    ]


def test_openllmetry_entity_wrappers_are_unwrapped() -> None:
    value = {"outputs": {"lc": 1, "type": "constructor", "id": ["langchain", "prompts", "chat", "ChatPromptValue"],
                         "kwargs": {"messages": [_constructor("HumanMessage", content="hi", type="human")]}},
             "kwargs": {"tags": []}}  # fmt: skip
    row = _row({"traceloop.span.kind": "task", "traceloop.entity.output": json.dumps(value),
                "traceloop.entity.input": json.dumps({"inputs": {"q": "hi"}, "tags": [], "metadata": {}})})  # fmt: skip
    assert row["kind"] == "chain" and _json(row["input"]) == {"q": "hi"}
    assert _json(row["output"]) == {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "value",
    [
        '{"constructor": broken json',
        '{"inputs": 1, "unexpected": 2}',
        '"constructor"',
        '{"lc": 2, "type": "constructor"}',
    ],
)
def test_values_that_only_look_like_langchain_are_left_alone(value: str) -> None:
    row = _row({"openinference.span.kind": "CHAIN", "input.value": value, "traceloop.entity.output": value})
    assert row["input"] == value and row["output"] == value


# --- Logfire ------------------------------------------------------------------------------------

_LF_CHAT = {
    "logfire.msg_template": "Chat Completion with {request_data[model]!r}",
    "logfire.msg": "Chat Completion with 'gpt-4o-mini'", "logfire.span_type": "span",
    "request_data": '{"model":"gpt-4o-mini"}', "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.input.messages": '[{"role":"user","parts":[]}]',
}  # fmt: skip
_TEMPLATE = _LF_CHAT["logfire.msg_template"]


def test_a_logfire_call_is_named_by_its_operation_and_model() -> None:
    row = _row({**_LF_CHAT, "gen_ai.response.id": "r1", "gen_ai.usage.input_tokens": 4,
                "gen_ai.usage.output_tokens": 5}, name=_TEMPLATE, scope="logfire.openai")  # fmt: skip
    assert row["name"] == "chat gpt-4o-mini" and row["kind"] == "chat" and row["model"] == "gpt-4o-mini"
    assert row["attributes"]["logfire.msg_template"] == _TEMPLATE
    user = _row({"logfire.msg_template": "answer {q}", "logfire.msg": "answer keys"}, name="answer {q}")
    assert user["name"] == "answer keys" and user["kind"] == "function"
    renamed = _row({"logfire.msg_template": "answer {q}", "logfire.msg": "answer keys"}, name="my-span")
    assert renamed["name"] == "my-span"  # a span named on purpose keeps its name


def test_a_logfire_stream_is_one_call() -> None:
    request = _row(_LF_CHAT, name=_TEMPLATE, scope="logfire.openai", end=_START + 300_000_000)
    assert request["name"] == "Chat Completion with 'gpt-4o-mini'" and request["kind"] == "function"
    assert request["model"] == "" and request["attributes"]["request_data"] == '{"model":"gpt-4o-mini"}'
    log = {
        **_LF_CHAT, "logfire.span_type": "log", "logfire.level_num": 9, "duration": 1.5,
        "logfire.msg_template": "streaming response from {request_data[model]!r} took {duration:.2f}s",
        "gen_ai.output.messages": '[{"role":null,"parts":[{"type":"text","content":"Every 90 days."}]}]',
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.output_tokens": 5,
    }  # fmt: skip
    streamed = _row(log, name=log["logfire.msg_template"], scope="logfire.openai", start=_END, end=_END)
    assert streamed["name"] == "chat gpt-4o-mini" and streamed["kind"] == "chat" and streamed["total_tokens"] == 9
    assert streamed["duration_ms"] == pytest.approx(1500.0) and streamed["status"] == "ok"
    assert _json(streamed["output"])[0]["role"] == "assistant"
    failed = _row({**log, "logfire.level_num": 17, "logfire.msg": "streaming response failed"},
                  name=log["logfire.msg_template"], start=_END, end=_END)  # fmt: skip
    assert failed["status"] == "error" and failed["status_message"] == "streaming response failed"


@pytest.mark.parametrize("duration", [-1.0, 0.0, 1e12, "1.5", True])
def test_a_logfire_stream_log_with_a_duration_that_cannot_be_keeps_its_time(duration: Any) -> None:
    log = {**_LF_CHAT, "logfire.span_type": "log", "duration": duration,
           "logfire.msg_template": "streaming response from {request_data[model]!r} took {duration:.2f}s"}  # fmt: skip
    assert _row(log, start=_END, end=_END)["duration_ms"] == 0.0


def test_a_logfire_request_that_answered_or_failed_is_a_call() -> None:
    for extra, status in (({"gen_ai.response.id": "r1"}, 0), ({}, 2)):
        row = _row({**_LF_CHAT, **extra}, name=_TEMPLATE, scope="logfire.openai", status=status)
        assert row["kind"] == "chat" and row["model"] == "gpt-4o-mini" and row["name"] == "chat gpt-4o-mini"
    semconv_v1 = {**_LF_CHAT, "request_data": '{"model":"gpt-4o-mini","stream":true}', "gen_ai.response.id": "r1"}
    assert _row(semconv_v1, name=_TEMPLATE, scope="logfire.openai")["kind"] == "function"  # its request says so
    other_scope = _row(_LF_CHAT, name=_TEMPLATE, scope="pydantic-ai")
    assert other_scope["kind"] == "chat"  # only Logfire's own LLM integrations split a stream in two


# --- streams: time to first token, chunk events -------------------------------------------------


@pytest.mark.parametrize("key", ["gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token"])
def test_a_time_to_first_token_in_seconds(key: str) -> None:
    assert _row({key: 0.125})["time_to_first_token_ms"] == pytest.approx(125.0)
    own = _row({key: 0.125, "tracehouse.time_to_first_token_ms": 40.0})
    assert own["time_to_first_token_ms"] == 40.0  # tracehouse's own is never overwritten
    assert _row({key: -1.0})["time_to_first_token_ms"] is None


def test_openllmetry_chunk_events_fold_into_one_at_the_first_chunk() -> None:
    chunks = [("gen_ai.content.completion.chunk", _START + ms * 1_000_000) for ms in (80, 90, 95, 99)]
    events = [("gen_ai.request", _START + 1_000_000), *chunks, ("done", _START + 100_000_000)]
    row = _row({"gen_ai.operation.name": "chat"}, events=events)
    assert row["event_names"] == ["gen_ai.request", "gen_ai.content.completion.chunk", "done"]
    assert row["event_attributes"][1] == {"chunks": "4", "last_chunk_time_unix_nano": str(_START + 99_000_000)}
    assert row["event_times"][1] == _START + 80_000_000
    assert row["time_to_first_token_ms"] == pytest.approx(80.0)


def test_openinference_first_token_event() -> None:
    row = _row({"openinference.span.kind": "LLM"}, events=[("First Token Stream Event", _START + 42_000_000)])
    assert row["time_to_first_token_ms"] == pytest.approx(42.0) and row["event_names"] == ["First Token Stream Event"]
    late = _row({"openinference.span.kind": "LLM"}, events=[("First Token Stream Event", _END + 1)])
    assert late["time_to_first_token_ms"] is None  # after the call ended: not its first token


def test_langchain_values_nested_past_recursion_are_kept_as_sent() -> None:
    deep = '{"lc": 1, "type": "constructor", "kwargs": {"content": ' + "[" * 1000 + "]" * 1000 + "}}"
    wrapped = '{"inputs": ' + "[" * 1000 + "]" * 1000 + "}"
    records = _records({"openinference.span.kind": "LLM", "input.value": deep, "traceloop.entity.input": wrapped})
    assert records[0]["attributes"]["input.value"] == deep
    assert records[0]["attributes"]["traceloop.entity.input"] == wrapped


# --- both mappings ------------------------------------------------------------------------------


def test_both_span_mappings_agree_on_foreign_records(th_env: th.Settings) -> None:
    records = [
        *_records({"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
                   "langfuse.observation.usage_details": '{"input": 10, "output": 3}',
                   "langfuse.observation.completion_start_time": '"2026-05-28T20:26:40.250000Z"'}),
        *_records({"openinference.span.kind": "PROMPT"}),
        *_records({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
                   "llm.token_count.prompt": 3}),
        *_records({**_LF_CHAT}, name=_TEMPLATE, scope="logfire.openai"),
        *_records({"gen_ai.operation.name": "chat"}, events=[("gen_ai.content.completion.chunk", _START + 5)] * 3),
    ]  # fmt: skip
    columns, rejected = span_columns(records)
    assert not rejected
    python = {values[2]: values for values in zip(*columns.values(), strict=True)}
    store = get_store()
    store.command("TRUNCATE TABLE spans")
    check_and_insert_json(store, orjson.dumps(records), token=None)
    select = ", ".join(
        "arrayMap(t -> toUnixTimestamp64Nano(t), event_times)" if c == "event_times"
        else f"toUnixTimestamp64Nano({c})" if c in ("start_time", "end_time") else c
        for c in SPAN_COLUMNS
    )  # fmt: skip
    _, rows = store.query_rows(f"SELECT {select} FROM spans")
    by_id = {row[2]: row for row in rows}
    assert set(by_id) == set(python)
    for span_id, values in python.items():
        stored = dict(zip(SPAN_COLUMNS, by_id[span_id], strict=True))
        expected = dict(zip(SPAN_COLUMNS, values, strict=True))
        for column in ("kind", "model", "input_tokens", "output_tokens", "total_tokens", "time_to_first_token_ms",
                       "name", "event_names"):  # fmt: skip
            assert stored[column] == expected[column], (column, stored[column], expected[column])
        assert stored["cost_usd"] == pytest.approx(expected["cost_usd"])
