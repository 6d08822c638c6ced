"""Grafana's ClickHouse plugin in OTel mode, on what a real `tracehouse serve` stored from OTLP.

The SQL below is what grafana/clickhouse-datasource's `src/data/sqlGenerator.ts` generates for its
OTel column map (`src/otel.ts`, version 1.2.9, the one that matches our `otel_logs`): the trace
search, the trace-by-id query with and without the `otel_traces_trace_id_ts` lookup it uses when
that table exists (`hasTraceTimestampTable`), the logs search and a trace's logs. `$__fromTime` /
`$__toTime` are expanded as the plugin's backend does (`pkg/macros`: `toDateTime(<unix seconds>)`).
The same spans go in over OTLP/HTTP protobuf, OTLP/HTTP JSON and OTLP/gRPC, with links, trace
states, a scope version and all three status codes, and come back as sent.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import grpc
import orjson
import pytest
import yaml
from conftest import REPO
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from servers import Collector, free_port

import tracehouse as th
from tracehouse.collector.otlp.decode import decode_traces
from tracehouse.collector.store.rows.spans import SPAN_COLUMNS, span_columns
from tracehouse.reads.reading import get_store

DB = "tracehouse"  # `tracehouse serve`'s database
LINKED_TRACE, LINKED_SPAN = "ab" * 16, "cd" * 8
INPUT_MESSAGES = '[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]'
OUTPUT_MESSAGES = '[{"role":"assistant","parts":[{"type":"text","content":"Sunny."}]}]'

# --- the plugin's SQL -------------------------------------------------------------------------------------------

_TIME_RANGE = "( Timestamp >= $__fromTime AND Timestamp <= $__toTime )"
TRACE_SEARCH = (
    'SELECT "TraceId" as traceID, "ServiceName" as serviceName, "SpanName" as operationName, '
    f'"Timestamp" as startTime, multiply("Duration", 0.000001) as duration FROM "{DB}"."otel_traces" '
    f"WHERE {_TIME_RANGE} AND ( ParentSpanId = '' ) AND ( Duration > 0 ) ORDER BY Timestamp DESC, Duration DESC "
    "LIMIT 1000"
)
_TRACE_COLUMNS = (
    '"TraceId" as traceID, "SpanId" as spanID, "ParentSpanId" as parentSpanID, "ServiceName" as serviceName, '
    '"SpanName" as operationName, multiply(toUnixTimestamp64Nano("Timestamp"), 0.000001) as startTime, '
    'multiply("Duration", 0.000001) as duration, '
    """arrayMap(key -> map('key', key, 'value',"SpanAttributes"[key]), mapKeys("SpanAttributes")) as tags, """
    """arrayMap(key -> map('key', key, 'value',"ResourceAttributes"[key]), mapKeys("ResourceAttributes")) """
    "as serviceTags, "
    """if("StatusCode" IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) as statusCode, """
    "arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)), "
    "arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))"
    "::Tuple(name String, timestamp String, fields Array(Map(String, String))), "
    '"Events".Name, "Events".Timestamp, "Events".Attributes) AS logs, '
    "arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID, "
    "arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes)))"
    "::Tuple(traceID String, spanID String, tags Array(Map(String, String))), "
    '"Links".TraceId, "Links".SpanId, "Links".Attributes) AS references, '
    '"SpanKind" as kind, "StatusMessage" as statusMessage, '
    # the two instrumentation hints are not in the OTel map; a data source maps them to these columns
    '"ScopeName" as instrumentationLibraryName, "ScopeVersion" as instrumentationLibraryVersion, '
    '"TraceState" as traceState'
)
LOGS_COLUMNS = (
    'Timestamp as "timestamp", Body as "body", SeverityText as "level", TraceId as "traceID", '
    "ResourceAttributes, ScopeAttributes, LogAttributes"
)
LOGS_SEARCH = (
    f'SELECT {LOGS_COLUMNS} FROM "{DB}"."otel_logs" WHERE ( TimestampTime >= $__fromTime AND TimestampTime <= '
    "$__toTime ) ORDER BY (TimestampTime, timestamp) DESC LIMIT 1000"
)


def trace_by_id(trace_id: str, lookup: bool = True) -> str:
    """The trace-by-id query; `lookup`: narrowed through `otel_traces_trace_id_ts`, as when it exists."""
    if not lookup:
        return f'SELECT {_TRACE_COLUMNS} FROM "{DB}"."otel_traces" WHERE traceID = \'{trace_id}\''
    table = f'"{DB}"."otel_traces_trace_id_ts"'
    return (
        f"WITH '{trace_id}' as __gf_trace_id, (SELECT min(Start) FROM {table} WHERE TraceId = __gf_trace_id) "
        f"as __gf_trace_start, (SELECT max(End) + 1 FROM {table} WHERE TraceId = __gf_trace_id) as __gf_trace_end "
        f'SELECT {_TRACE_COLUMNS} FROM "{DB}"."otel_traces" WHERE traceID = __gf_trace_id AND '
        '"Timestamp" >= __gf_trace_start AND "Timestamp" <= __gf_trace_end'
    )


def trace_logs(trace_id: str) -> str:
    return f'SELECT {LOGS_COLUMNS} FROM "{DB}"."otel_logs" WHERE ( traceID = \'{trace_id}\' ) ORDER BY timestamp ASC'


def expand(sql: str, seconds: int = 600) -> str:
    """The plugin backend's time macros over the last `seconds`."""
    now = int(time.time())
    return sql.replace("$__fromTime", f"toDateTime({now - seconds})").replace("$__toTime", f"toDateTime({now + 5})")


# --- spans as an OpenTelemetry SDK makes them ----------------------------------------------------------------


class _VendorState(Sampler):
    """Samples everything; a root gets a vendor's trace state, which its children inherit."""

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None, *args: Any,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        parent = trace.get_current_span(parent_context).get_span_context()
        state = parent.trace_state if parent.is_valid else TraceState([("vendor", "v1")])
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        return "vendor-state"


def _request(transport: str) -> ExportTraceServiceRequest:
    """One trace (request > chat, tool) with a link, trace state, scope version and Ok/Error/Unset statuses."""
    exporter = InMemorySpanExporter()
    resource = Resource.create({"service.name": "grafana-app", "tracehouse.project": "grafana"})
    provider = TracerProvider(resource=resource, sampler=_VendorState())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("grafana.scope", "4.5.6")
    linked = SpanContext(int(LINKED_TRACE, 16), int(LINKED_SPAN, 16), True, TraceFlags(1))
    with tracer.start_as_current_span(f"{transport} request", kind=SpanKind.SERVER) as root:
        root.set_status(Status(StatusCode.OK))
        chat_attributes = {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": INPUT_MESSAGES,
            "gen_ai.output.messages": OUTPUT_MESSAGES, "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4,
        }  # fmt: skip
        links = [Link(linked, {"link.kind": "retry", "attempt": 2})]
        with tracer.start_as_current_span(
            "chat", kind=SpanKind.CLIENT, links=links, attributes=chat_attributes
        ) as chat:
            chat.add_event("gen_ai.choice", {"index": 0})
            chat.set_status(Status(StatusCode.ERROR, "rate limited"))
        with tracer.start_as_current_span("tool", attributes={"input.value": "2+2", "output.value": "4"}):
            pass
    provider.shutdown()
    request = encode_spans(exporter.get_finished_spans())
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for link in span.links:  # the stock encoder leaves a link's trace state out
                    link.trace_state = "linked=yes"
    return request


def _hex_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP JSON as the spec writes it: ids in hex (MessageToDict writes base64)."""
    document = MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for item in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return orjson.dumps(document)


def _post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collector, dict[str, str]]]:
    """A collector fed one trace over each transport; the trace id of each."""
    grpc_port = free_port()
    collector = Collector(tmp_path_factory.mktemp("grafana"), free_port(), "--grpc-port", str(grpc_port))
    collector.start()
    trace_ids = {}
    for transport in ("protobuf", "json", "grpc"):
        request = _request(transport)
        trace_ids[transport] = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
        if transport == "protobuf":
            assert _post(collector.url + "/v1/traces", request.SerializeToString(), "application/x-protobuf") == 200
        elif transport == "json":
            assert _post(collector.url + "/v1/traces", _hex_json(request), "application/json") == 200
        else:
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                TraceServiceStub(channel).Export(request, timeout=30)
    yield collector, trace_ids
    assert collector.stop() == 0


def _rows(collector: Collector, sql: str) -> list[dict[str, Any]]:
    """The rows of `sql` as Grafana reads them: column name -> value."""
    request = urllib.request.Request(
        collector.url + "/api/v1/query", data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            found = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{error.code}: {error.read().decode()}\n{sql}") from None
    return [dict(zip(found["columns"], row, strict=True)) for row in found["rows"]]


def _tags(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {pair["key"]: pair["value"] for pair in pairs}


# --- the plugin's queries ----------------------------------------------------------------------------------------


def test_the_plugin_finds_the_trace_id_lookup_table(served: tuple[Collector, dict[str, str]]) -> None:
    collector, _ = served
    tables = {row["name"] for row in _rows(collector, f'SHOW TABLES FROM "{DB}"')}
    assert {"otel_traces", "otel_traces_trace_id_ts", "otel_logs"} <= tables
    columns = {row["name"]: row["type"] for row in _rows(collector, f'DESC TABLE "{DB}"."otel_traces_trace_id_ts"')}
    assert columns["TraceId"] == "String" and columns["Start"].startswith("DateTime(")
    assert columns["End"].startswith("DateTime(")


def test_trace_search_lists_each_transport_s_root_span(served: tuple[Collector, dict[str, str]]) -> None:
    collector, trace_ids = served
    found = {row["operationName"]: row for row in _rows(collector, expand(TRACE_SEARCH))}
    for transport, trace_id in trace_ids.items():
        row = found[f"{transport} request"]
        assert row["traceID"] == trace_id and row["serviceName"] == "grafana-app" and row["duration"] > 0
    assert "chat" not in found and "tool" not in found  # roots only (ParentSpanId = '')


@pytest.mark.parametrize("transport", ["protobuf", "json", "grpc"])
def test_trace_by_id_comes_back_as_sent(served: tuple[Collector, dict[str, str]], transport: str) -> None:
    collector, trace_ids = served
    trace_id = trace_ids[transport]
    rows = _rows(collector, trace_by_id(trace_id))
    assert sorted(map(str, rows)) == sorted(map(str, _rows(collector, trace_by_id(trace_id, lookup=False))))
    spans = {row["operationName"]: row for row in rows}
    assert set(spans) == {f"{transport} request", "chat", "tool"}
    root, chat, tool = spans[f"{transport} request"], spans["chat"], spans["tool"]
    assert chat["parentSpanID"] == tool["parentSpanID"] == root["spanID"] and root["parentSpanID"] == ""
    assert {row["traceState"] for row in rows} == {"vendor=v1"}
    assert {(row["instrumentationLibraryName"], row["instrumentationLibraryVersion"]) for row in rows} == {
        ("grafana.scope", "4.5.6")
    }
    assert (root["kind"], chat["kind"], tool["kind"]) == ("Server", "Client", "Internal")
    assert (chat["statusCode"], chat["statusMessage"]) == (2, "rate limited")
    assert root["statusCode"] == tool["statusCode"] == 0
    assert [(link["traceID"], link["spanID"], _tags(link["tags"])) for link in chat["references"]] == [
        (LINKED_TRACE, LINKED_SPAN, {"link.kind": "retry", "attempt": "2"})
    ]
    assert root["references"] == [] and tool["references"] == []
    assert [(log["name"], log["fields"]) for log in chat["logs"]] == [
        ("gen_ai.choice", [{"key": "index", "value": "0"}])
    ]
    tags = _tags(chat["tags"])
    assert tags["gen_ai.input.messages"] == INPUT_MESSAGES and tags["gen_ai.output.messages"] == OUTPUT_MESSAGES
    assert (tags["gen_ai.request.model"], tags["gen_ai.usage.input_tokens"], tags["gen_ai.usage.output_tokens"]) == (
        "gpt-4o", "10", "4",
    )  # fmt: skip
    assert float(tags["tracehouse.cost_usd"]) > 0 and tags["tracehouse.span.kind"] == "chat"
    assert (_tags(tool["tags"])["input.value"], _tags(tool["tags"])["output.value"]) == ("2+2", "4")
    assert _tags(root["serviceTags"])["service.name"] == "grafana-app"


def test_status_codes_and_link_trace_states_are_the_exporter_s(served: tuple[Collector, dict[str, str]]) -> None:
    collector, trace_ids = served
    for transport, trace_id in trace_ids.items():
        rows = _rows(
            collector,
            'SELECT SpanName, StatusCode, "Links.TraceState" AS states, "Links.TraceId" AS ids '
            f'FROM "{DB}"."otel_traces" WHERE TraceId = \'{trace_id}\'',
        )
        found = {row["SpanName"]: (row["StatusCode"], row["states"], row["ids"]) for row in rows}
        assert found == {
            f"{transport} request": ("Ok", [], []),
            "chat": ("Error", ["linked=yes"], [LINKED_TRACE]),
            "tool": ("Unset", [], []),
        }
    # `status` keeps its two values for everything else that reads it (UI, error filters)
    assert _rows(collector, "SELECT DISTINCT status, status_code FROM spans ORDER BY status_code") == [
        {"status": "error", "status_code": "error"},
        {"status": "ok", "status_code": "ok"},
        {"status": "ok", "status_code": "unset"},
    ]


def test_the_logs_queries_read_otel_logs(served: tuple[Collector, dict[str, str]]) -> None:
    collector, trace_ids = served
    trace_id = trace_ids["protobuf"]
    record = {
        "timeUnixNano": str(time.time_ns()), "severityText": "WARN", "severityNumber": 13, "traceId": trace_id,
        "spanId": "0102030405060708", "body": {"stringValue": "retrying the model call"},
        "attributes": [{"key": "attempt", "value": {"intValue": "2"}}],
    }  # fmt: skip
    scope_logs = [{"scope": {"name": "app"}, "logRecords": [record]}]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "grafana-app"}}]}
    body = orjson.dumps({"resourceLogs": [{"resource": resource, "scopeLogs": scope_logs}]})
    assert _post(collector.url + "/v1/logs", body, "application/json") == 200
    for sql in (expand(LOGS_SEARCH), trace_logs(trace_id)):
        rows = _rows(collector, sql)
        assert len(rows) == 1, sql
        row = rows[0]
        assert (row["body"], row["level"], row["traceID"]) == ("retrying the model call", "WARN", trace_id)
        assert row["LogAttributes"] == {"attempt": "2"} and row["ResourceAttributes"]["service.name"] == "grafana-app"


# --- tracehouse's own spans, and rows stored before these columns -----------------------------------------------


def test_tracehouse_s_own_spans_carry_scope_version_trace_state_links_and_status(th_env: th.Settings) -> None:
    remote = SpanContext(0xA1, 0xB2, True, TraceFlags(1), TraceState([("vendor", "v1")]))
    linked = SpanContext(int(LINKED_TRACE, 16), int(LINKED_SPAN, 16), True, TraceFlags(1), TraceState([("l", "1")]))
    with trace.use_span(trace.NonRecordingSpan(remote)), th.span("agent", kind="agent") as agent:
        agent.set_status(Status(StatusCode.OK))
        with th.span("call", kind="llm") as call:
            call.add_link(linked, {"why": "retry"})
            call.set_input("question")
            call.set_output("answer")
            call.set_usage(model="gpt-4o", input_tokens=3, output_tokens=2)
        try:
            with th.span("tool", kind="tool"):
                raise ValueError("no")
        except ValueError:
            pass
    th.flush()
    rows = th.query(
        "SELECT SpanName, StatusCode, ScopeName, ScopeVersion, TraceState, `Links.TraceId`, `Links.SpanId`, "
        "`Links.TraceState`, `Links.Attributes`, SpanAttributes FROM otel_traces"
    ).to_dict("records")
    spans = {row["SpanName"]: row for row in rows}
    assert {name: row["StatusCode"] for name, row in spans.items()} == {"agent": "Ok", "call": "Unset", "tool": "Error"}
    assert {(row["ScopeName"], row["ScopeVersion"], row["TraceState"]) for row in rows} == {
        ("tracehouse", th.__version__, "vendor=v1")
    }
    call = spans["call"]
    links = [list(call[f"Links.{field}"]) for field in ("TraceId", "SpanId", "TraceState", "Attributes")]
    assert links == [[LINKED_TRACE], [LINKED_SPAN], ["l=1"], [{"why": "retry"}]]
    attributes = call["SpanAttributes"]
    assert (attributes["input.value"], attributes["output.value"], attributes["tracehouse.input.size"]) == (
        "question", "answer", "8",
    )  # fmt: skip
    assert attributes["gen_ai.usage.input_tokens"] == "3" and float(attributes["tracehouse.cost_usd"]) > 0
    assert "input.value" not in spans["agent"]["SpanAttributes"]  # no content, no content key


def test_rows_stored_before_keep_their_meaning(th_env: th.Settings) -> None:
    """Rows written without the new columns (before the migration): status ok/error, content under the
    default keys, no links."""
    now = time.time_ns()
    records = [
        {"type": "span", "project": "test", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
         "start_ns": now, "end_ns": now + 1000, "status": status, "span_kind": "INTERNAL", "scope": "old",
         "attributes": {"gen_ai.prompt": "p", "gen_ai.completion": "c", "retrieval.documents": "[1]"}}
        for n, (name, status) in enumerate((("old-ok", "ok"), ("old-error", "error"), ("old-unset", "unset")), 1)
    ]  # fmt: skip
    columns, rejected = span_columns(records)
    assert rejected == []
    old = SPAN_COLUMNS[: SPAN_COLUMNS.index("status_code")]
    get_store().insert("spans", {name: columns[name] for name in old})
    rows = th.query(
        "SELECT SpanName, StatusCode, TraceState, ScopeVersion, `Links.TraceId`, SpanAttributes FROM otel_traces"
    ).to_dict("records")
    spans = {row["SpanName"]: row for row in rows}
    assert {name: row["StatusCode"] for name, row in spans.items()} == {
        "old-ok": "Ok", "old-error": "Error", "old-unset": "Ok",
    }  # fmt: skip
    for row in rows:
        assert (row["TraceState"], row["ScopeVersion"], list(row["Links.TraceId"])) == ("", "", [])
        attributes = row["SpanAttributes"]
        assert (attributes["input.value"], attributes["output.value"], attributes["gen_ai.retrieval.documents"]) == (
            "p", "c", "[1]",
        )  # fmt: skip


def test_the_readme_s_collector_config_sends_to_our_ports_with_the_key() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Feeding tracehouse from an OpenTelemetry Collector", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    config = yaml.safe_load(block)
    grpc_exporter, http_exporter = config["exporters"]["otlp/tracehouse"], config["exporters"]["otlphttp/tracehouse"]
    assert grpc_exporter["endpoint"].endswith(":4317") and grpc_exporter["tls"]["insecure"] is True
    assert http_exporter["endpoint"].endswith(":4318")
    for exporter in (grpc_exporter, http_exporter):
        assert exporter["headers"]["authorization"].startswith("Bearer ")
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "logs", "metrics"}
    assert all(pipeline["receivers"] == ["otlp"] for pipeline in pipelines.values())
    assert set(readme.split("\n## Grafana\n", 1)[1].split("\n## ", 1)[0].split("`")) >= {
        "otel_traces", "otel_traces_trace_id_ts", "otel_logs", "_trace_id_ts",
    }  # fmt: skip


def test_a_malformed_link_or_trace_state_refuses_its_span_only() -> None:
    good = _request("edge")
    body = _hex_json(good)
    document = orjson.loads(body)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["links"] = [{"traceId": "abc", "spanId": LINKED_SPAN}]
    spans[1]["traceState"] = 7
    decoded = decode_traces(orjson.dumps(document), "application/json", None, "default")
    assert decoded.rejected == 2 and len(decoded.records) == 1
    assert any("link trace_id" in error for error in decoded.errors)
    assert any("traceState must be a string" in error for error in decoded.errors)
    good.resource_spans[0].scope_spans[0].spans[0].links[0].trace_id = b"\x01\x02\x03"
    decoded = decode_traces(good.SerializeToString(), "application/x-protobuf", None, "default")
    assert decoded.rejected == 1 and len(decoded.records) == 2
    assert any("link trace_id/span_id" in error for error in decoded.errors)
