"""`@th.trace`, `th.span()` and `th.current_span()`: what a user of the decorator can rely on.

Every test asserts on finished spans captured as rows of the `spans` table (`tracehouse.testing`);
where a shape matters the whole normalised tree is compared at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Iterator

import pytest
from conftest import assert_no_current_span

import tracehouse as th
from tracehouse.testing import CapturedSpans

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
    assert json.loads(row["input"]) == {"q": "hi", "k": 2}
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
    assert [json.loads(row["input"]) for row in spans] == [
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

    assert [(row["name"], row["kind"], json.loads(row["input"]), row["output"]) for row in spans] == [
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
