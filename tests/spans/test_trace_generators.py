"""`@th.trace` on generators and async generators: the span covers the whole iteration.

Every test asserts on finished spans captured as rows of the `spans` table (`tracehouse.testing`);
where a shape matters the whole normalised tree is compared at once.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterator

import pytest
from conftest import assert_no_current_span

import tracehouse as th
from tracehouse.testing import CapturedSpans

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
