"""`th.span()`, span methods, misuse, disabled tracing and OpenTelemetry interplay.

Every test asserts on finished spans captured as rows of the `spans` table (`tracehouse.testing`);
where a shape matters the whole normalised tree is compared at once.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from conftest import assert_no_current_span, reconfigure, run_python
from opentelemetry import trace as otel_trace

import tracehouse as th
from tracehouse.testing import CapturedSpans, capture_spans


@th.trace(name="leaf", kind="tool")
def leaf(i: int) -> int:
    return i * 2


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
    assert json.loads(row["input"]) == {"q": "what is chDB?"}
    assert row["output"] == '["doc-1"]'
    assert json.loads(row["context"]) == [
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


def test_trace_inside_otel_span_in_a_fresh_process(tmp_path: Path) -> None:
    result = run_python(
        textwrap.dedent(
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
        """
        ),
        env={"TRACEHOUSE_DIR": str(tmp_path / "sub-data")},
        timeout=60,
        clean=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        {"name": "otel-root", "children": [{"name": "work", "children": []}]}
    ]
