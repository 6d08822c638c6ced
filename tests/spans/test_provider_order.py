"""The app's TracerProvider and resource, whichever comes first; LLM spans are CLIENT spans."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import run_python

import tracehouse as th
from tracehouse.testing import CapturedSpans

APP_PROVIDER = """
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "shop", "deployment.environment": "prod"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
"""


def _run(parts: list[str], tmp_path: Path) -> str:
    header = f"import tracehouse as th\nth.configure(data_dir={str(tmp_path / 'data')!r}, project='order')\n"
    result = run_python(header + "".join(textwrap.dedent(part) for part in parts))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK"), result.stdout
    return result.stderr


def test_llm_spans_are_client_spans_and_the_rest_internal(spans: CapturedSpans) -> None:
    @th.trace(kind="chain")
    def pipeline() -> None:
        with th.span("generate", kind="llm"):
            pass
        with th.span("embed", kind="embedding"):
            pass
        with th.span("lookup", kind="retriever"):
            pass

    pipeline()
    kinds = {row["name"]: row["span_kind"] for row in spans}
    assert kinds == {"generate": "CLIENT", "embed": "CLIENT", "lookup": "INTERNAL", "pipeline": "INTERNAL"}


def test_an_app_provider_set_after_tracehouse_is_joined_not_refused(tmp_path: Path) -> None:
    stderr = _run([
        """
        from opentelemetry import trace
        from tracehouse.testing import capture_spans

        early_tracer = trace.get_tracer("early.instrumentation")  # taken before the app's provider exists

        @th.trace(kind="llm")
        def first():
            return 1

        first()  # tracehouse's first span: tracehouse installs the global provider
        """,
        APP_PROVIDER,
        """
        trace.set_tracer_provider(provider)
        assert trace.get_tracer_provider() is provider, "the app's provider was refused"

        @th.trace(kind="llm")
        def call():
            with early_tracer.start_as_current_span("early-span"):
                with trace.get_tracer("late.instrumentation").start_as_current_span("late-span"):
                    pass

        with capture_spans() as spans:
            call()
        theirs = {s.name: s for s in exporter.get_finished_spans()}
        assert set(theirs) == {"call", "early-span", "late-span"}, sorted(theirs)
        assert theirs["early-span"].parent.span_id == theirs["call"].context.span_id
        assert {s.resource.attributes["service.name"] for s in theirs.values()} == {"shop"}
        assert theirs["call"].kind == trace.SpanKind.CLIENT
        ours = {row["name"]: row for row in spans}
        assert sorted(ours) == ["call", "early-span", "late-span"], sorted(ours)
        assert ours["call"]["service_name"] == "shop", ours["call"]["resource_attributes"]
        assert ours["call"]["resource_attributes"]["deployment.environment"] == "prod"
        assert ours["late-span"]["service_name"] == "shop"
        print("OK")
        """,
    ], tmp_path)  # fmt: skip
    assert "Overriding of current TracerProvider is not allowed" not in stderr


def test_an_app_provider_tracehouse_cannot_join_gets_one_warning_naming_the_fix(tmp_path: Path) -> None:
    stderr = _run([
        """
        from opentelemetry import trace

        class OtherProvider(trace.NoOpTracerProvider):
            pass

        with th.span("first"):
            pass
        trace.set_tracer_provider(OtherProvider())
        assert not isinstance(trace.get_tracer_provider(), OtherProvider)
        print("OK")
        """,
    ], tmp_path)  # fmt: skip
    assert stderr.count("OpenTelemetry refused the TracerProvider your app set (OtherProvider)") == 1, stderr
    assert "set your TracerProvider before tracehouse's first span" in stderr


def test_an_app_provider_set_first_lends_its_resource(tmp_path: Path) -> None:
    code = APP_PROVIDER + textwrap.dedent("""
        trace.set_tracer_provider(provider)
        import tracehouse as th
        from tracehouse.testing import capture_spans
        th.configure(data_dir=DATA, project="first")
        with capture_spans() as spans:
            with th.span("step", kind="chat"):
                pass
        row = spans.by_name("step")
        assert row["service_name"] == "shop" and row["span_kind"] == "CLIENT"
        assert row["resource_attributes"]["deployment.environment"] == "prod"
        assert row["resource_attributes"]["telemetry.distro.name"] == "tracehouse"
        (span,) = exporter.get_finished_spans()
        assert span.resource.attributes["service.name"] == "shop"
        print("OK")
    """)
    code = code.replace("DATA", repr(str(tmp_path / "data")))
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


RESOURCE_PROBE = """
import tracehouse as th
from tracehouse.testing import capture_spans
th.configure(data_dir=DATA, ARGS)
with capture_spans() as spans:
    with th.span("step"):
        pass
row = spans.by_name("step")
print(row["service_name"], row["resource_attributes"].get("team", "-"))
"""


def _resource_of(tmp_path: Path, env: dict[str, str], args: str = "project='res'") -> str:
    code = RESOURCE_PROBE.replace("DATA", repr(str(tmp_path / "data"))).replace("ARGS", args)
    result = run_python(code, env={"OTEL_SERVICE_NAME": "", "OTEL_RESOURCE_ATTRIBUTES": "", **env})
    assert result.returncode == 0, result.stderr
    return str(result.stdout.strip())


def test_spans_take_the_resource_the_environment_names(tmp_path: Path) -> None:
    assert _resource_of(tmp_path, {}) == "tracehouse-app -", "nothing names the service"
    assert _resource_of(tmp_path, {"OTEL_SERVICE_NAME": "billing"}) == "billing -"
    attributes = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=search,team=ml"}
    assert _resource_of(tmp_path, attributes) == "search ml"
    assert _resource_of(tmp_path, {**attributes, "OTEL_SERVICE_NAME": "billing"}) == "billing ml"
    assert _resource_of(tmp_path, attributes, "service_name='given'") == "given ml", "configure() wins"
