"""OpenTelemetry-native: our spans are OTel spans, other OTel spans land in the store, providers are joined."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import run_python
from opentelemetry import trace as otel_trace

import tracehouse as th
from tracehouse.testing import capture_spans


def test_otel_instrumentation_span_nests_under_trace_and_lands_in_the_store(th_env: th.Settings) -> None:
    tracer = otel_trace.get_tracer("some.instrumentation")

    @th.trace
    def outer() -> str:
        with tracer.start_as_current_span("http.request", attributes={"http.method": "GET"}) as child:
            child.set_attribute("gen_ai.request.model", "gpt-4o")
            child.set_attribute("gen_ai.usage.input_tokens", 10)
            child.set_attribute("gen_ai.usage.output_tokens", 5)
            inner()
        return "done"

    @th.trace
    def inner() -> None:
        return None

    with capture_spans() as spans:
        outer()
    assert spans.tree(fields=("name", "scope_name")) == [
        {
            "name": "outer",
            "scope_name": "tracehouse",
            "children": [
                {
                    "name": "http.request",
                    "scope_name": "some.instrumentation",
                    "children": [{"name": "inner", "scope_name": "tracehouse", "children": []}],
                }
            ],
        }
    ]
    frame = th.query(
        "SELECT name, model, input_tokens, output_tokens, cost_usd, attributes['http.method'] AS method "
        "FROM spans WHERE name = 'http.request'"
    )
    row = frame.iloc[0]
    assert (row["model"], row["input_tokens"], row["output_tokens"], row["method"]) == ("gpt-4o", 10, 5, "GET")
    assert abs(row["cost_usd"] - (10 * 2.5 + 5 * 10.0) / 1e6) < 1e-12  # priced at ingest from the table
    ids = th.query("SELECT name, trace_id FROM spans")
    assert ids["trace_id"].nunique() == 1


def test_trace_span_context_is_a_valid_otel_context(th_env: th.Settings) -> None:
    with th.span("step") as span:
        current = otel_trace.get_current_span()
        assert current is span
        context = current.get_span_context()
        assert context.is_valid
        assert format(context.trace_id, "032x") == span.trace_id_hex
        assert format(context.span_id, "016x") == span.span_id_hex
        assert span.is_recording()
    assert not span.is_recording()


def test_a_user_tracer_provider_is_joined_not_replaced(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        import tracehouse as th
        from tracehouse.testing import capture_spans
        th.configure(data_dir={str(tmp_path / "data")!r}, project="joined")

        @th.trace(kind="llm")
        def call():
            th.current_span().set_usage(model="gpt-4o-mini", input_tokens=3, output_tokens=4)
            with trace.get_tracer("user").start_as_current_span("user-span"):
                pass
            return "ok"

        with capture_spans() as spans:
            call()
        assert trace.get_tracer_provider() is provider, "the user's provider was replaced"
        theirs = {{s.name: s for s in exporter.get_finished_spans()}}
        assert set(theirs) == {{"call", "user-span"}}, theirs
        assert theirs["user-span"].parent.span_id == theirs["call"].context.span_id
        assert theirs["call"].attributes["gen_ai.usage.input_tokens"] == 3
        assert theirs["call"].attributes["openinference.span.kind"] == "LLM"
        assert sorted(spans.names()) == ["call", "user-span"], spans.names()
        print("OK")
        """
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_without_a_user_provider_tracehouse_installs_one(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import tracehouse as th
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        th.configure(data_dir={str(tmp_path / "data")!r})

        @th.trace
        def f():
            return 1

        f()
        assert isinstance(trace.get_tracer_provider(), TracerProvider)
        print("OK")
        """
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
