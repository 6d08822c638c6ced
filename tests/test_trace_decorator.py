"""`@th.trace`, `th.span()` and `th.current_span()`: what a user of the decorator can rely on.

Every test asserts on finished spans captured as rows of the `spans` table (`tracehouse.testing`);
where a shape matters the whole normalised tree is compared at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from conftest import reconfigure
from opentelemetry import trace as otel_trace

import tracehouse as th
from tracehouse.testing import CapturedSpans, capture_spans

REPO = Path(__file__).resolve().parent.parent


def loads(text: str) -> Any:
    return json.loads(text)


def assert_no_current_span() -> None:
    current = th.current_span()
    assert isinstance(current, th.NoopSpan)
    assert not current.is_recording()


# --- @th.trace on every kind of callable ---------------------------------------------------------


def test_trace_without_parentheses_records_input_output_and_default_name(spans: CapturedSpans) -> None:
    @th.trace
    def answer(q: str, k: int) -> str:
        return f"{q}:{k}"

    assert answer("hi", k=2) == "hi:2"

    assert spans.tree(fields=("name", "kind", "status", "input", "output")) == [
        {
            "name": "answer",  # the qualified name without the enclosing function's "<locals>."
            "kind": "function",
            "status": "ok",
            "input": '{"q":"hi","k":2}',
            "output": "hi:2",
            "children": [],
        }
    ]
    row = spans[0]
    assert loads(row["input"]) == {"q": "hi", "k": 2}
    assert row["input_size"] == len(row["input"].encode())
    assert row["output_size"] == len(b"hi:2")
    assert row["status_message"] == ""
    assert row["duration_ms"] >= 0
    assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16 and row["parent_span_id"] == ""


def test_trace_with_parentheses_and_options(spans: CapturedSpans) -> None:
    @th.trace(name="retrieve", kind="retriever", attributes={"team": "search", "top_k": 3, "flags": ["a", "b"]})
    def retrieve(q: str) -> list[str]:
        return ["doc-1", "doc-2"]

    @th.trace()
    def empty_parens(x: int) -> int:
        return x + 1

    assert retrieve("hi") == ["doc-1", "doc-2"]
    assert empty_parens(1) == 2

    assert spans.tree(fields=("name", "kind", "input", "output", "attributes")) == [
        {
            "name": "retrieve",
            "kind": "retriever",
            "input": '{"q":"hi"}',
            "output": '["doc-1","doc-2"]',
            "attributes": {"team": "search", "top_k": "3", "flags": '["a","b"]'},
            "children": [],
        },
        {
            "name": "empty_parens",
            "kind": "function",
            "input": '{"x":1}',
            "output": "2",
            "attributes": {},
            "children": [],
        },
    ]


def test_capture_input_and_output_can_be_switched_off(spans: CapturedSpans) -> None:
    @th.trace(name="secret", capture_input=False, capture_output=False)
    def secret(password: str) -> str:
        return password[::-1]

    assert secret("hunter2") == "2retnuh"
    row = spans.by_name("secret")
    assert (row["input"], row["input_size"], row["output"], row["output_size"]) == ("", 0, "", 0)
    assert "hunter2" not in json.dumps(row, default=str)


def test_input_binds_positional_keyword_var_positional_and_var_keyword(spans: CapturedSpans) -> None:
    @th.trace(name="f")
    def f(a: int, b: int = 5, *rest: int, flag: bool = False, **extra: Any) -> int:
        return a + b + sum(rest)

    assert f(1, 2, 3, 4, flag=True, colour="red") == 10
    assert f(7) == 12
    assert [loads(row["input"]) for row in spans] == [
        {"a": 1, "b": 2, "rest": [3, 4], "flag": True, "colour": "red"},
        {"a": 7},
    ]


def test_output_is_string_as_is_and_other_values_as_json(spans: CapturedSpans) -> None:
    @th.trace(name="ret")
    def ret(value: Any) -> Any:
        return value

    for value in ("plain text", {"a": [1, 2.5, None]}, None, 3, True, ("t", 1)):
        assert ret(value) == value
    assert [row["output"] for row in spans] == [
        "plain text",
        '{"a":[1,2.5,null]}',
        "null",
        "3",
        "true",
        '["t",1]',
    ]


def test_async_function(spans: CapturedSpans) -> None:
    @th.trace(name="fetch", kind="tool")
    async def fetch(url: str) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"status": 200}

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch("http://x")) == {"status": 200}
    assert spans.tree(fields=("name", "kind", "status", "input", "output")) == [
        {
            "name": "fetch",
            "kind": "tool",
            "status": "ok",
            "input": '{"url":"http://x"}',
            "output": '{"status":200}',
            "children": [],
        }
    ]


def test_wrapper_keeps_the_function_metadata() -> None:
    def plain(q: str, k: int = 2) -> str:
        """Docstring."""
        return q

    async def coro(q: str) -> str:
        return q

    def gen(n: int) -> Iterator[int]:
        yield n

    async def agen(n: int) -> AsyncIterator[int]:
        yield n

    traced = th.trace(plain)
    assert traced.__name__ == "plain" and traced.__doc__ == "Docstring." and traced.__wrapped__ is plain
    assert inspect.signature(traced) == inspect.signature(plain)
    assert inspect.iscoroutinefunction(th.trace(coro))
    assert inspect.isgeneratorfunction(th.trace(gen))
    assert inspect.isasyncgenfunction(th.trace(agen))


# --- generators ------------------------------------------------------------------------------------


def test_generator_span_covers_the_whole_iteration(spans: CapturedSpans) -> None:
    @th.trace(name="stream", kind="llm")
    def stream(prompt: str) -> Iterator[str]:
        with th.span("inside"):
            pass
        yield "Hel"
        assert len(spans) == 1  # only "inside" has ended: the generator's span is still open
        yield "lo"

    @th.trace(name="numbers")
    def numbers() -> Iterator[dict[str, int]]:
        yield {"n": 1}
        yield {"n": 2}

    gen = stream("hi")
    assert spans.names() == []  # nothing runs before the first next()
    assert list(gen) == ["Hel", "lo"]
    assert list(numbers()) == [{"n": 1}, {"n": 2}]

    assert spans.tree(fields=("name", "kind", "status", "input", "output")) == [
        {
            "name": "stream",
            "kind": "llm",
            "status": "ok",
            "input": '{"prompt":"hi"}',
            "output": "Hello",  # str chunks are joined
            "children": [
                {"name": "inside", "kind": "function", "status": "ok", "input": "", "output": "", "children": []}
            ],
        },
        {
            "name": "numbers",
            "kind": "function",
            "status": "ok",
            "input": "{}",
            "output": '[{"n":1},{"n":2}]',  # other items: a JSON list
            "children": [],
        },
    ]
    assert spans.by_name("stream")["attributes"] == {"tracehouse.yield_count": "2"}


def test_generator_span_ends_on_close_and_on_break(spans: CapturedSpans) -> None:
    closed: list[str] = []

    @th.trace(name="tokens")
    def tokens() -> Iterator[str]:
        try:
            yield "a"
            yield "b"
            yield "c"
        finally:
            closed.append("finally ran")

    gen = tokens()
    assert next(gen) == "a"
    assert spans.names() == []
    assert_no_current_span()  # a partially consumed generator does not leak its context
    gen.close()
    assert closed == ["finally ran"]
    assert spans.names() == ["tokens"]

    for item in tokens():
        if item == "b":
            break
    assert closed == ["finally ran", "finally ran"]
    assert_no_current_span()
    assert [(row["status"], row["output"]) for row in spans] == [("ok", "a"), ("ok", "ab")]


def test_generator_error_marks_the_span_and_propagates(spans: CapturedSpans) -> None:
    error = ValueError("bad chunk")

    @th.trace(name="faulty")
    def faulty() -> Iterator[int]:
        yield 1
        raise error

    got: list[int] = []
    with pytest.raises(ValueError) as info:
        for item in faulty():
            got.append(item)
    assert info.value is error
    assert got == [1]
    row = spans.by_name("faulty")
    assert (row["status"], row["status_message"]) == ("error", "ValueError: bad chunk")
    assert row["event_names"] == ["exception"]
    assert_no_current_span()


def test_generator_send_throw_and_return_value(spans: CapturedSpans) -> None:
    @th.trace(name="accumulate")
    def accumulate() -> Iterator[int]:
        total = 0
        while True:
            try:
                sent = yield total
            except KeyError:
                total = -1
                continue
            if sent is None:
                return total * 10
            total += sent

    gen = accumulate()
    assert next(gen) == 0
    assert gen.send(2) == 2
    assert gen.send(3) == 5
    assert gen.throw(KeyError("reset")) == -1  # the thrown exception reached the generator
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == -10

    def delegate() -> Iterator[int]:
        result = yield from accumulate()
        yield result

    assert list(delegate()) == [0, 0]

    assert [(row["name"], row["status"], row["output"]) for row in spans] == [
        ("accumulate", "ok", "[0,2,5,-1]"),
        ("accumulate", "ok", "[0]"),
    ]


def test_generator_throw_not_handled_marks_error(spans: CapturedSpans) -> None:
    @th.trace(name="g")
    def g() -> Iterator[int]:
        yield 1
        yield 2

    gen = g()
    next(gen)
    with pytest.raises(RuntimeError, match="stop now"):
        gen.throw(RuntimeError("stop now"))
    assert [(row["status"], row["status_message"]) for row in spans] == [("error", "RuntimeError: stop now")]


def test_generator_returning_without_yielding(spans: CapturedSpans) -> None:
    @th.trace(name="nothing")
    def nothing() -> Iterator[int]:
        return "early"  # type: ignore[return-value]
        yield 1  # pragma: no cover

    with pytest.raises(StopIteration) as stop:
        next(nothing())
    assert stop.value.value == "early"
    assert [(row["status"], row["output"]) for row in spans] == [("ok", "[]")]


def test_async_generator(spans: CapturedSpans) -> None:
    @th.trace(name="astream", kind="chat")
    async def astream(prompt: str) -> AsyncIterator[str]:
        for chunk in ("a", "b", "c"):
            await asyncio.sleep(0)
            with th.span("chunk"):
                pass
            yield chunk

    async def main() -> list[str]:
        return [chunk async for chunk in astream("p")]

    assert asyncio.run(main()) == ["a", "b", "c"]
    assert spans.tree(fields=("name", "kind", "output")) == [
        {
            "name": "astream",
            "kind": "chat",
            "output": "abc",
            "children": [{"name": "chunk", "kind": "function", "output": "", "children": []}] * 3,
        }
    ]


def test_async_generator_asend_athrow_aclose_and_error(spans: CapturedSpans) -> None:
    closed: list[bool] = []

    @th.trace(name="acc")
    async def acc() -> AsyncIterator[int]:
        total = 0
        try:
            while True:
                try:
                    sent = yield total
                except KeyError:
                    total = 100
                    continue
                total += sent or 0
        finally:
            closed.append(True)

    @th.trace(name="afail")
    async def afail() -> AsyncIterator[int]:
        yield 1
        raise ValueError("async boom")

    async def main() -> list[int]:
        gen = acc()
        got = [await gen.__anext__(), await gen.asend(2), await gen.asend(3), await gen.athrow(KeyError("k"))]
        assert spans.names() == []
        assert_no_current_span()
        await gen.aclose()
        failing = afail()
        got.append(await failing.__anext__())
        with pytest.raises(ValueError, match="async boom"):
            await failing.__anext__()
        return got

    assert asyncio.run(main()) == [0, 2, 5, 100, 1]
    assert closed == [True]
    assert [(row["name"], row["status"], row["output"], row["status_message"]) for row in spans] == [
        ("acc", "ok", "[0,2,5,100]", ""),
        ("afail", "error", "", "ValueError: async boom"),
    ]


# --- methods, static and class methods -------------------------------------------------------------


class Retriever:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @th.trace
    def search(self, q: str, k: int = 1) -> str:
        return f"{self.prefix}{q}{k}"

    @th.trace
    @staticmethod
    def static_above(q: str) -> str:
        return q.upper()

    @staticmethod
    @th.trace
    def static_below(q: str) -> str:
        return q.lower()

    @th.trace
    @classmethod
    def class_above(cls, q: str) -> str:
        return f"{cls.__name__}:{q}"

    @classmethod
    @th.trace(name="class_below", kind="tool")
    def class_below(cls, q: str) -> str:
        return f"{cls.__name__}/{q}"

    @th.trace
    def lines(self, n: int) -> Iterator[str]:
        for i in range(n):
            yield f"{self.prefix}{i}"

    @th.trace
    async def afetch(self, q: str) -> str:
        return self.prefix + q


def test_methods_static_and_class_methods_both_decorator_orders(spans: CapturedSpans) -> None:
    r = Retriever(">")
    assert r.search("hi", k=2) == ">hi2"
    assert Retriever.static_above("Ab") == "AB"
    assert r.static_above("Cd") == "CD"
    assert Retriever.static_below("Ab") == "ab"
    assert r.class_above("x") == "Retriever:x"
    assert Retriever.class_below("y") == "Retriever/y"
    assert list(r.lines(2)) == [">0", ">1"]
    assert asyncio.run(r.afetch("z")) == ">z"

    assert [(row["name"], row["kind"], loads(row["input"]), row["output"]) for row in spans] == [
        ("Retriever.search", "function", {"q": "hi", "k": 2}, ">hi2"),
        ("Retriever.static_above", "function", {"q": "Ab"}, "AB"),
        ("Retriever.static_above", "function", {"q": "Cd"}, "CD"),
        ("Retriever.static_below", "function", {"q": "Ab"}, "ab"),
        ("Retriever.class_above", "function", {"q": "x"}, "Retriever:x"),
        ("class_below", "tool", {"q": "y"}, "Retriever/y"),
        ("Retriever.lines", "function", {"n": 2}, ">0>1"),
        ("Retriever.afetch", "function", {"q": "z"}, ">z"),
    ]


# --- exceptions ----------------------------------------------------------------------------------


def test_exception_marks_error_adds_event_and_is_reraised_unchanged(spans: CapturedSpans) -> None:
    raised: list[BaseException] = []

    @th.trace(name="lookup")
    def lookup(key: str) -> Any:
        try:
            return {}[key]
        except KeyError as error:
            raised.append(error)
            raise

    with pytest.raises(KeyError) as info:
        lookup("x")
    assert info.value is raised[0]
    assert info.value.args == ("x",)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "lookup" in frames  # the user's frame is still in the traceback
    assert frames[-1] == "lookup"

    assert spans.tree(fields=("name", "status", "status_message", "event_names", "output")) == [
        {
            "name": "lookup",
            "status": "error",
            "status_message": "KeyError: 'x'",
            "event_names": ["exception"],
            "output": "",
            "children": [],
        }
    ]
    event = spans[0]["event_attributes"][0]
    assert event["exception.type"] == "KeyError"
    assert event["exception.message"] == "'x'"
    assert event["exception.stacktrace"].startswith("Traceback (most recent call last):")
    assert "in lookup" in event["exception.stacktrace"] and "KeyError: 'x'" in event["exception.stacktrace"]
    assert_no_current_span()


def test_async_exception_is_reraised_unchanged(spans: CapturedSpans) -> None:
    error = TimeoutError("slow model")

    @th.trace(name="call_model", kind="llm")
    async def call_model() -> str:
        await asyncio.sleep(0)
        raise error

    async def main() -> None:
        with pytest.raises(TimeoutError) as info:
            await call_model()
        assert info.value is error
        assert_no_current_span()

    asyncio.run(main())
    row = spans.by_name("call_model")
    assert (row["status"], row["status_message"]) == ("error", "TimeoutError: slow model")
    assert row["event_names"] == ["exception"]
    assert row["event_attributes"][0]["exception.type"] == "TimeoutError"


def test_exception_in_child_marks_only_the_spans_it_escapes(spans: CapturedSpans) -> None:
    @th.trace(name="child")
    def child() -> None:
        raise KeyError("x")

    @th.trace(name="parent")
    def parent() -> str:
        try:
            child()
        except KeyError:
            return "recovered"
        return "unreachable"

    assert parent() == "recovered"
    assert spans.tree(fields=("name", "status", "status_message", "output")) == [
        {
            "name": "parent",
            "status": "ok",
            "status_message": "",
            "output": "recovered",
            "children": [
                {"name": "child", "status": "error", "status_message": "KeyError: 'x'", "output": "", "children": []}
            ],
        }
    ]


# --- nesting and context -------------------------------------------------------------------------


@th.trace(name="leaf", kind="tool")
def leaf(i: int) -> int:
    return i * 2


@th.trace(name="middle", kind="chain")
def middle(n: int) -> list[int]:
    return [leaf(i) for i in range(n)]


@th.trace(name="top", kind="agent")
def top() -> int:
    return sum(middle(2))


def test_nested_calls_form_a_tree_in_one_trace(spans: CapturedSpans) -> None:
    assert top() == 2
    assert spans.tree(fields=("name", "kind", "output")) == [
        {
            "name": "top",
            "kind": "agent",
            "output": "2",
            "children": [
                {
                    "name": "middle",
                    "kind": "chain",
                    "output": "[0,2]",
                    "children": [
                        {"name": "leaf", "kind": "tool", "output": "0", "children": []},
                        {"name": "leaf", "kind": "tool", "output": "2", "children": []},
                    ],
                }
            ],
        }
    ]
    assert len({row["trace_id"] for row in spans}) == 1
    by_id = {row["span_id"]: row for row in spans}
    assert len(by_id) == 4
    for row in spans:
        if row["name"] != "top":
            assert by_id[row["parent_span_id"]]["trace_id"] == row["trace_id"]


def test_each_top_level_call_is_its_own_trace(spans: CapturedSpans) -> None:
    top()
    top()
    roots = [row for row in spans if row["name"] == "top"]
    assert len(roots) == 2
    assert roots[0]["trace_id"] != roots[1]["trace_id"]
    assert all(row["parent_span_id"] == "" for row in roots)
    assert len({row["trace_id"] for row in spans}) == 2
    assert_no_current_span()


def test_context_is_restored_after_calls_errors_and_spans(spans: CapturedSpans) -> None:
    @th.trace(name="fails")
    def fails() -> None:
        raise RuntimeError("no")

    assert_no_current_span()
    top()
    assert_no_current_span()
    with pytest.raises(RuntimeError):
        fails()
    assert_no_current_span()
    with pytest.raises(RuntimeError), th.span("block"):
        raise RuntimeError("in block")
    assert_no_current_span()
    with th.span("outer") as outer:
        leaf(1)
        assert th.current_span() is outer
    assert_no_current_span()
    assert spans.by_name("leaf")["parent_span_id"] != ""


def test_threads_with_a_copied_context_keep_the_parent(spans: CapturedSpans) -> None:
    @th.trace(name="fan_out")
    def fan_out() -> list[int]:
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(leaf, 10))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(contextvars.copy_context().run, leaf, i) for i in range(3)]
            return [f.result() for f in futures]

    assert fan_out() == [0, 2, 4]
    tree = spans.tree(fields=("name", "output"))
    assert len(tree) == 1 and tree[0]["name"] == "fan_out"
    assert sorted(child["output"] for child in tree[0]["children"]) == ["0", "2", "20", "4"]
    assert all(child["name"] == "leaf" and child["children"] == [] for child in tree[0]["children"])
    assert len({row["trace_id"] for row in spans}) == 1


def test_asyncio_tasks_keep_the_parent(spans: CapturedSpans) -> None:
    @th.trace(name="aleaf")
    async def aleaf(i: int) -> int:
        await asyncio.sleep(0.001 * (3 - i))  # finish in reverse order
        return i

    @th.trace(name="gather")
    async def gather() -> list[int]:
        first = await asyncio.gather(*(aleaf(i) for i in range(3)))
        task = asyncio.create_task(aleaf(9))
        return [*first, await task]

    assert asyncio.run(gather()) == [0, 1, 2, 9]
    tree = spans.tree(fields=("name", "output"))
    assert len(tree) == 1 and tree[0]["name"] == "gather"
    assert sorted(child["output"] for child in tree[0]["children"]) == ["0", "1", "2", "9"]
    assert len({row["trace_id"] for row in spans}) == 1


# --- th.span() --------------------------------------------------------------------------------------


def test_span_block_with_output_context_usage_and_attributes(spans: CapturedSpans) -> None:
    with th.span("retrieve", kind="retriever", input={"q": "what is chDB?"}, attributes={"index": "docs"}) as s:
        assert th.current_span() is s
        assert s.is_recording()
        s.set_output(["doc-1"])
        s.set_context(
            [
                "plain text",
                {"text": "chDB is in-process", "id": "d2", "score": 0.9, "metadata": {"source": "wiki"}},
            ]
        )
        s.set_usage(model="gpt-4o-mini", input_tokens=1000, output_tokens=500, provider="openai")
        s.set_attribute("rerank", True)
        s.set_attributes({"top_k": 2, "names": ["a", "b"], "nested": {"x": 1}})

    row = spans.by_name("retrieve")
    assert row["kind"] == "retriever" and row["status"] == "ok"
    assert loads(row["input"]) == {"q": "what is chDB?"}
    assert row["output"] == '["doc-1"]'
    assert loads(row["context"]) == [
        {"text": "plain text"},
        {"text": "chDB is in-process", "id": "d2", "score": 0.9, "metadata": {"source": "wiki"}},
    ]
    assert (row["model"], row["provider"]) == ("gpt-4o-mini", "openai")
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (1000, 500, 1500)
    assert row["cost_usd"] == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1_000_000)
    user_attributes = {"index": "docs", "rerank": "true", "top_k": "2", "names": '["a","b"]', "nested": '{"x":1}'}
    assert {key: row["attributes"].get(key) for key in user_attributes} == user_attributes
    assert not {"input.value", "output.value", "gen_ai.retrieval.documents"} & set(row["attributes"])
    assert_no_current_span()


def test_current_span_inside_a_traced_function(spans: CapturedSpans) -> None:
    @th.trace(name="generate", kind="llm")
    def generate(prompt: str) -> str:
        th.current_span().set_usage(model="gpt-4o-mini", input_tokens=10, output_tokens=2)
        return "ok"

    generate("p")
    row = spans.by_name("generate")
    assert (row["model"], row["input_tokens"], row["output_tokens"], row["total_tokens"]) == ("gpt-4o-mini", 10, 2, 12)
    assert row["cost_usd"] == pytest.approx((10 * 0.15 + 2 * 0.60) / 1_000_000)


def test_unknown_model_has_no_cost_and_set_model_price_overrides(spans: CapturedSpans) -> None:
    with th.span("unknown", kind="llm") as s:
        s.set_usage(model="acme-unpriced-model-xyz", input_tokens=100, output_tokens=100)
    th.set_model_price("acme-priced-model-test", input_per_million=1.0, output_per_million=2.0)
    with th.span("priced", kind="llm") as s:
        s.set_usage(model="acme-priced-model-test", input_tokens=1_000_000, output_tokens=500_000)
    th.set_model_price("gpt-4o-mini", 10.0, 20.0)
    try:
        with th.span("overridden", kind="llm") as s:
            s.set_usage(model="gpt-4o-mini", input_tokens=1000, output_tokens=500)
    finally:
        th.set_model_price("gpt-4o-mini", 0.15, 0.60)
    with th.span("explicit", kind="llm") as s:
        s.set_usage(model="acme-unpriced-model-xyz", input_tokens=1, cost_usd=0.5)
    with th.span("tokens-only", kind="llm") as s:
        s.set_usage(input_tokens=3, output_tokens=4)

    unknown = spans.by_name("unknown")
    assert unknown["cost_usd"] is None  # unknown is not free
    assert unknown["total_tokens"] == 200
    assert spans.by_name("priced")["cost_usd"] == pytest.approx(2.0)
    assert spans.by_name("overridden")["cost_usd"] == pytest.approx((1000 * 10.0 + 500 * 20.0) / 1_000_000)
    assert spans.by_name("explicit")["cost_usd"] == pytest.approx(0.5)
    tokens_only = spans.by_name("tokens-only")
    assert (tokens_only["model"], tokens_only["total_tokens"], tokens_only["cost_usd"]) == ("", 7, None)


def test_async_with_span_and_nesting_with_trace(spans: CapturedSpans) -> None:
    async def main() -> None:
        async with th.span("agent-step", kind="agent", input="plan") as s:
            assert th.current_span() is s
            s.set_output("done")
            await asyncio.sleep(0)
            leaf(3)
        assert_no_current_span()

    asyncio.run(main())
    assert spans.tree(fields=("name", "kind", "input", "output")) == [
        {
            "name": "agent-step",
            "kind": "agent",
            "input": "plan",
            "output": "done",
            "children": [{"name": "leaf", "kind": "tool", "input": '{"i":3}', "output": "6", "children": []}],
        }
    ]


def test_exception_inside_span_block_marks_error_and_propagates(spans: CapturedSpans) -> None:
    error = KeyError("x")
    with pytest.raises(KeyError) as info, th.span("block", kind="tool"):
        raise error
    assert info.value is error

    async def main() -> None:
        async with th.span("ablock"):
            raise ValueError("async block")

    with pytest.raises(ValueError, match="async block"):
        asyncio.run(main())
    assert [(row["name"], row["status"], row["status_message"], row["event_names"]) for row in spans] == [
        ("block", "error", "KeyError: 'x'", ["exception"]),
        ("ablock", "error", "ValueError: async block", ["exception"]),
    ]


# --- misuse ----------------------------------------------------------------------------------------


def test_misuse_raises_config_error_naming_the_option(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match="kind") as info:
        th.trace(kind="bogus")
    assert info.value.option == "kind"
    assert isinstance(info.value, ValueError)

    with pytest.raises(th.ConfigError) as info:
        th.span("")
    assert info.value.option == "name"

    with pytest.raises(th.ConfigError) as info:
        th.span("x", kind="bogus")
    assert info.value.option == "kind"

    with pytest.raises(th.ConfigError) as info:
        th.trace(attributes=["not", "a", "mapping"])  # type: ignore[arg-type]
    assert info.value.option == "attributes"

    with pytest.raises(th.ConfigError) as info:
        th.span("x", attributes={1: "non-string key"})  # type: ignore[dict-item]
    assert info.value.option == "attributes"

    with pytest.raises(th.ConfigError) as info:
        th.trace(name="")
    assert info.value.option == "name"

    with pytest.raises(th.ConfigError) as info:
        th.trace("not a function")  # type: ignore[call-overload]
    assert info.value.option == "trace"

    with th.span("usage") as s:
        for bad in ({"input_tokens": -1}, {"output_tokens": 1.5}, {"input_tokens": True}, {"cost_usd": -0.1}):
            with pytest.raises(th.ConfigError) as info:
                s.set_usage(model="gpt-4o-mini", **bad)
            assert info.value.option == next(iter(bad))


# --- disabled ---------------------------------------------------------------------------------------


def test_disabled_records_nothing_and_functions_behave_the_same(th_env: th.Settings) -> None:
    seen: list[Any] = []

    @th.trace(name="f")
    def f(x: int) -> int:
        seen.append(th.current_span())
        return x + 1

    @th.trace(name="afunc")
    async def afunc(x: int) -> int:
        return x * 3

    @th.trace(name="gen")
    def gen() -> Iterator[int]:
        got = yield 1
        yield got * 2
        return "ret"  # type: ignore[return-value]

    @th.trace(name="boom")
    def boom() -> None:
        raise KeyError("x")

    reconfigure(th_env, disabled=True)
    try:
        with capture_spans() as spans:
            assert f(1) == 2
            assert isinstance(seen[-1], th.NoopSpan)
            assert asyncio.run(afunc(2)) == 6
            g = gen()
            assert next(g) == 1
            assert g.send(5) == 10
            with pytest.raises(StopIteration) as stop:
                next(g)
            assert stop.value.value == "ret"
            with pytest.raises(KeyError):
                boom()
            with th.span("block", input="x") as s:
                assert isinstance(s, th.NoopSpan)
                assert th.current_span() is s
                assert s.set_output("y") is None
                assert s.set_input("y") is None
                assert s.set_context(["doc"]) is None
                assert s.set_usage(model="gpt-4o-mini", input_tokens=1, output_tokens=1) is None
                assert s.set_attribute("k", "v") is None
                assert s.set_attributes({"k": "v"}) is None
                assert s.add_event("e") is None
                assert s.record_exception(ValueError("v")) is None
                assert s.end() is None
                assert not s.is_recording()
                assert s.trace_id_hex == "" and s.span_id_hex == ""
            assert len(spans) == 0
    finally:
        reconfigure(th_env, disabled=False)

    with capture_spans() as spans:
        assert f(1) == 2
    assert isinstance(seen[-1], th.TraceSpan)
    assert spans.names() == ["f"]


def test_disabled_async_generator_behaves_the_same(th_env: th.Settings) -> None:
    @th.trace(name="agen")
    async def agen() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def main() -> list[int]:
        return [i async for i in agen()]

    reconfigure(th_env, disabled=True)
    try:
        with capture_spans() as spans:
            assert asyncio.run(main()) == [1, 2]
        assert len(spans) == 0
    finally:
        reconfigure(th_env, disabled=False)


def test_disabled_async_generator_forwards_asend_and_athrow(th_env: th.Settings) -> None:
    @th.trace(name="acc")
    async def acc() -> AsyncIterator[int]:
        total = 0
        while True:
            try:
                sent = yield total
            except KeyError:
                total = -1
                continue
            if sent is None:
                return
            total += sent

    async def main() -> list[int]:
        gen = acc()
        got = [await gen.__anext__(), await gen.asend(2), await gen.asend(3), await gen.athrow(KeyError("k"))]
        await gen.aclose()
        return got

    untraced = [0, 2, 5, -1]
    assert asyncio.run(main()) == untraced  # enabled: values reach the generator
    reconfigure(th_env, disabled=True)
    try:
        assert asyncio.run(main()) == untraced  # disabled must behave exactly the same
    finally:
        reconfigure(th_env, disabled=False)


# --- OpenTelemetry interplay -------------------------------------------------------------------------


def test_otel_span_inside_trace_is_its_child(spans: CapturedSpans) -> None:
    tracer = otel_trace.get_tracer("x")

    @th.trace(name="pipeline")
    def pipeline() -> str:
        with tracer.start_as_current_span("child") as child:
            child.set_attribute("custom", "yes")
            leaf(1)  # a traced function inside the OTel span nests under it
        return "ok"

    assert pipeline() == "ok"
    assert spans.tree(fields=("name", "kind")) == [
        {
            "name": "pipeline",
            "kind": "function",
            "children": [
                {"name": "child", "kind": "function", "children": [{"name": "leaf", "kind": "tool", "children": []}]}
            ],
        }
    ]
    parent, child_row = spans.by_name("pipeline"), spans.by_name("child")
    assert child_row["trace_id"] == parent["trace_id"]
    assert child_row["parent_span_id"] == parent["span_id"]
    assert child_row["scope_name"] == "x"
    assert child_row["attributes"]["custom"] == "yes"
    assert spans.by_name("leaf")["parent_span_id"] == child_row["span_id"]


def test_trace_inside_otel_span_is_its_child(spans: CapturedSpans) -> None:
    with th.span("warm-up"):  # the OTel provider is set up by the first tracehouse span of a process
        pass
    spans.clear()
    tracer = otel_trace.get_tracer("x")
    with tracer.start_as_current_span("otel-root") as root:
        assert isinstance(th.current_span(), th.ForeignSpan)
        assert leaf(4) == 8
    context = root.get_span_context()
    row = spans.by_name("leaf")
    assert row["trace_id"] == format(context.trace_id, "032x")
    assert row["parent_span_id"] == format(context.span_id, "016x")
    assert spans.tree(fields=("name",)) == [{"name": "otel-root", "children": [{"name": "leaf", "children": []}]}]


def _run_fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    env["TRACEHOUSE_DIR"] = str(tmp_path / "sub-data")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )


def test_trace_inside_otel_span_in_a_fresh_process(tmp_path: Path) -> None:
    result = _run_fresh_python(
        """
        import json
        import tracehouse as th
        from opentelemetry import trace
        from tracehouse.testing import capture_spans

        th.configure(project="fresh")

        @th.trace(name="work")
        def work():
            return 1

        with capture_spans() as spans:
            with trace.get_tracer("x").start_as_current_span("otel-root"):
                work()
        print(json.dumps(spans.tree(fields=("name",))))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        {"name": "otel-root", "children": [{"name": "work", "children": []}]}
    ]
