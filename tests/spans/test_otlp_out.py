"""tracehouse's spans also reach another OTLP backend: a real loopback HTTP server decoding OTLP protobuf."""

from __future__ import annotations

import gzip
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import run_python

trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


class OtlpBackend(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint on loopback that keeps every decoded request and its headers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def spans(self) -> dict[str, tuple[Any, Any]]:
        """Every span received, by name, with the resource it came under."""
        out = {}
        for _, _, request in self.requests:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out[span.name] = (span, resource_spans.resource)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: OtlpBackend

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, request))
        answer = trace_service.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def backend() -> Iterator[OtlpBackend]:
    server = OtlpBackend()
    yield server
    server.shutdown()
    server.server_close()


def _attributes(items: Any) -> dict[str, Any]:
    out = {}
    for item in items:
        kind = item.value.WhichOneof("value")
        out[item.key] = getattr(item.value, kind) if kind else None
    return out


APP = """
import tracehouse as th
from opentelemetry import trace
th.configure(data_dir=DATA, project="out"ARGS)

@th.trace(kind="chain")
def pipeline():
    with th.span("generate", kind="llm") as span:
        span.set_usage(model="gpt-4o-mini", input_tokens=7, output_tokens=3)
        with trace.get_tracer("some.library").start_as_current_span("http.get"):
            pass
    return "ok"

pipeline()
th.flush()
print(th.query("SELECT count() AS n FROM spans")["n"][0])
"""


OTEL_VARIABLES = (
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER",
)  # fmt: skip


def _run_app(tmp_path: Path, env: dict[str, str], args: str = "", prefix: str = "") -> Any:
    code = prefix + APP.replace("DATA", repr(str(tmp_path / "data"))).replace("ARGS", args)
    result = run_python(textwrap.dedent(code), env={**dict.fromkeys(OTEL_VARIABLES, ""), **env})
    assert result.returncode == 0, result.stderr
    return result


def test_the_standard_variables_send_every_span_with_the_apps_resource(tmp_path: Path, backend: OtlpBackend) -> None:
    result = _run_app(tmp_path, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": backend.url, "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret",
        "OTEL_SERVICE_NAME": "checkout", "OTEL_RESOURCE_ATTRIBUTES": "team=ml,deployment.environment=prod",
    })  # fmt: skip
    assert result.stdout.strip() == "3", "the spool and the store still get every span"
    paths = {path for path, _, _ in backend.requests}
    assert paths == {"/v1/traces"} and all(h["x-api-key"] == "s3cret" for _, h, _ in backend.requests)
    received = backend.spans()
    assert set(received) == {"pipeline", "generate", "http.get"}
    generate, resource = received["generate"]
    resource_attributes = _attributes(resource.attributes)
    assert resource_attributes["service.name"] == "checkout" and resource_attributes["team"] == "ml"
    assert resource_attributes["deployment.environment"] == "prod"
    assert generate.kind == generate.SPAN_KIND_CLIENT and received["pipeline"][0].kind == generate.SPAN_KIND_INTERNAL
    assert _attributes(generate.attributes)["gen_ai.usage.input_tokens"] == 7
    assert generate.parent_span_id == received["pipeline"][0].span_id
    assert received["http.get"][0].parent_span_id == generate.span_id
    assert {s.trace_id for s, _ in received.values()} == {generate.trace_id}
    assert _attributes(received["http.get"][1].attributes)["service.name"] == "checkout"


def test_configure_otlp_endpoint_sends_even_beside_the_apps_provider_and_the_variables_do_not(
    tmp_path: Path, backend: OtlpBackend
) -> None:
    other = OtlpBackend()
    try:
        app_provider = textwrap.dedent("""
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "shop"})))
        """)
        _run_app(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": other.url}, f", otlp_endpoint={backend.url!r}", app_provider)
        assert other.requests == [], "the app's own exporters read the variables: tracehouse does not send twice"
    finally:
        other.shutdown()
        other.server_close()
    received = backend.spans()
    assert set(received) == {"pipeline", "generate", "http.get"}
    assert {_attributes(r.attributes)["service.name"] for _, r in received.values()} == {"shop"}


def test_otel_traces_exporter_none_switches_the_variables_off(tmp_path: Path, backend: OtlpBackend) -> None:
    _run_app(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": backend.url, "OTEL_TRACES_EXPORTER": "none"})
    assert backend.requests == []


def test_grpc_without_its_exporter_package_says_what_to_install(tmp_path: Path, backend: OtlpBackend) -> None:
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the gRPC exporter is installed here")
    result = _run_app(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": backend.url, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert result.stderr.count("pip install opentelemetry-exporter-otlp-proto-grpc") == 1, result.stderr
    assert backend.requests == []


def test_the_variables_stop_when_the_app_sets_its_provider_later(tmp_path: Path, backend: OtlpBackend) -> None:
    code = textwrap.dedent(f"""
        import tracehouse as th
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        th.configure(data_dir={str(tmp_path / "data")!r})
        with th.span("before"):
            pass
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # its own exporters would read the same variables
        with th.span("after"):
            pass
        assert [s.name for s in exporter.get_finished_spans()] == ["after"]
        print("OK")
    """)
    result = run_python(code, env={**dict.fromkeys(OTEL_VARIABLES, ""), "OTEL_EXPORTER_OTLP_ENDPOINT": backend.url})
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr
    assert set(backend.spans()) == {"before"}, "sent once: before the join by tracehouse, after it by the app"
