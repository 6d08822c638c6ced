"""OTLP/HTTP decoding (collector/otlp/decode.py): real payloads from the stock encoder, no server needed."""

from __future__ import annotations

import base64
import gzip
import time
from typing import Any, Callable, Optional

import orjson
import pytest
from google.protobuf.json_format import MessageToDict, MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracehouse.collector.otlp import decode as _otlp
from tracehouse.collector.otlp.decode import DecodedSpans, OtlpError, decode_traces
from tracehouse.collector.store.rows.spans import span_columns, span_row
from tracehouse.exporters._otel import readable_to_record
from tracehouse.exporters._records import record_to_dict

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


# -- helpers -----------------------------------------------------------------------------------


def _finished_spans(
    build: Callable[[Any], None], resource: Optional[dict[str, Any]] = None
) -> tuple[ReadableSpan, ...]:
    """Spans finished by a real SDK TracerProvider while `build(tracer)` runs."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", **(resource or {})}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("test.scope", "1.2.3"))
    provider.shutdown()
    return exporter.get_finished_spans()


def _with_attributes(
    *attribute_sets: dict[str, Any], resource: Optional[dict[str, Any]] = None
) -> tuple[ReadableSpan, ...]:
    def build(tracer: Any) -> None:
        for index, attributes in enumerate(attribute_sets):
            with tracer.start_as_current_span(f"span-{index}", attributes=attributes):
                pass

    return _finished_spans(build, resource)


def _protobuf(spans: Any) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def _hex_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP JSON as the spec writes it: MessageToDict, with ids turned from base64 into hex."""
    document = MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(document)


def _decode(body: bytes, content_type: str = PROTOBUF, encoding: Optional[str] = None, **options: Any) -> DecodedSpans:
    return decode_traces(body, content_type, encoding, options.pop("project", "default"), **options)


def _expected(span: ReadableSpan, project: str = "default") -> dict[str, Any]:
    """What the in-process path makes of the same SDK span (sequences as lists, as OTLP carries them)."""
    record = readable_to_record(span, project)
    assert record is not None
    expected = record_to_dict(record)
    expected["attributes"] = _lists(expected["attributes"])
    expected["resource"] = _lists(expected["resource"])
    for event in expected["events"]:
        event["attributes"] = _lists(event["attributes"])
    return expected


def _lists(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in attributes.items()}


def _by_name(decoded: DecodedSpans) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in decoded.records}


def _json_span(**fields: Any) -> dict[str, Any]:
    now = time.time_ns()
    span = {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "name": "hand-written",
        "startTimeUnixNano": str(now - 2_000_000),
        "endTimeUnixNano": str(now),
    }
    span.update(fields)
    return span


def _json_request(*spans: dict[str, Any], resource: Optional[list[dict[str, Any]]] = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or []},
                    "scopeSpans": [{"scope": {"name": "hand"}, "spans": list(spans)}],
                }
            ]
        }
    )


def _sample_spans() -> tuple[ReadableSpan, ...]:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
            root.set_attributes(
                {
                    "http.method": "GET",
                    "http.status_code": 200,
                    "negative": -7,
                    "big": 2**62,
                    "ratio": 0.25,
                    "flag": False,
                    "tags": ["a", "b"],
                    "counts": [1, 2, 3],
                    "scores": [0.5, 1.5],
                    "bits": [True, False],
                    "long": "x" * 500,
                    "unicode": "héllo ✓ 日本",
                }
            )
            root.add_event("cache.miss", {"key": "k1", "size": 3}, timestamp=time.time_ns())
            root.add_event("plain")
            root.set_status(Status(StatusCode.OK))
            for kind in (SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
                with tracer.start_as_current_span(f"child-{kind.name}", kind=kind) as child:
                    if kind is SpanKind.CLIENT:
                        child.set_status(Status(StatusCode.ERROR, "boom"))

    return _finished_spans(build, {"deployment.environment": "test", "host.cores": 8})


# -- round trips -------------------------------------------------------------------------------


def test_protobuf_round_trip_matches_the_in_process_record() -> None:
    spans = _sample_spans()
    decoded = _decode(_protobuf(spans))
    assert (decoded.rejected, decoded.errors) == (0, [])
    assert decoded.records == [_expected(span) for span in spans]
    root = _by_name(decoded)["root"]
    assert set(root) == set(_expected(spans[0]))  # exactly the spool record's keys
    assert root["span_kind"] == "SERVER" and root["status"] == "ok" and root["parent_span_id"] == ""
    assert root["attributes"]["negative"] == -7 and root["attributes"]["big"] == 2**62
    assert root["attributes"]["unicode"] == "héllo ✓ 日本" and len(root["attributes"]["long"]) == 500
    assert [event["name"] for event in root["events"]] == ["cache.miss", "plain"]
    assert root["scope"] == "test.scope" and root["resource"]["service.name"] == "svc"
    kinds = {record["name"]: record["span_kind"] for record in decoded.records}
    assert kinds["child-CLIENT"] == "CLIENT" and kinds["child-CONSUMER"] == "CONSUMER"
    client = _by_name(decoded)["child-CLIENT"]
    assert (client["status"], client["status_message"]) == ("error", "boom")
    assert client["parent_span_id"] == root["span_id"] and client["trace_id"] == root["trace_id"]


def test_json_round_trip_with_spec_hex_ids_equals_protobuf() -> None:
    spans = _sample_spans()
    request = encode_spans(spans)
    from_json = _decode(_hex_json(request), JSON)
    assert from_json.rejected == 0
    assert from_json.records == _decode(_protobuf(spans)).records


def test_json_from_message_to_json_with_base64_ids_and_enum_names_is_accepted() -> None:
    spans = _sample_spans()
    body = MessageToJson(encode_spans(spans)).encode()
    assert b'"SPAN_KIND_SERVER"' in body  # enum names, ids in base64: protobuf's generic JSON mapping
    decoded = _decode(body, JSON)
    assert decoded.rejected == 0
    assert decoded.records == [_expected(span) for span in spans]


def test_hand_written_otlp_json_with_every_any_value_variant() -> None:
    span = _json_span(
        parentSpanId="0102030405060708",
        kind=3,
        status={"code": 2, "message": "bad gateway"},
        attributes=[
            {"key": "s", "value": {"stringValue": "text"}},
            {"key": "i_str", "value": {"intValue": "-42"}},
            {"key": "i_num", "value": {"intValue": 42}},
            {"key": "d", "value": {"doubleValue": 2.5}},
            {"key": "d_str", "value": {"doubleValue": "Infinity"}},
            {"key": "b", "value": {"boolValue": True}},
            {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "1"}]}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"boolValue": False}}]}}},
            {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
            {"key": "empty", "value": {}},
        ],
        events=[
            {
                "timeUnixNano": "1700000000000000000",
                "name": "ev",
                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
            }
        ],
    )
    resource = [{"key": "service.name", "value": {"stringValue": "hand-svc"}}]
    decoded = _decode(_json_request(span, resource=resource), "application/json; charset=utf-8")
    assert decoded.rejected == 0, decoded.errors
    (record,) = decoded.records
    assert record["trace_id"] == "5b8efff798038103d269b633813fc60c"  # case-insensitive hex, stored lowercase
    assert record["span_id"] == "eee19b7ec3c1b174" and record["parent_span_id"] == "0102030405060708"
    assert (record["span_kind"], record["status"], record["status_message"]) == ("CLIENT", "error", "bad gateway")
    assert record["attributes"] == {
        "s": "text",
        "i_str": -42,
        "i_num": 42,
        "d": 2.5,
        "d_str": float("inf"),
        "b": True,
        "arr": ["x", 1],
        "kv": {"inner": False},
        "raw": "AAE=",
    }
    assert record["events"] == [{"name": "ev", "time_ns": 1_700_000_000_000_000_000, "attributes": {"n": 3}}]
    assert (record["scope"], record["resource"], record["project"]) == ("hand", {"service.name": "hand-svc"}, "default")


def test_json_accepts_snake_case_field_names() -> None:
    now = time.time_ns()
    body = orjson.dumps(
        {
            "resource_spans": [
                {
                    "resource": {"attributes": [{"key": "tracehouse.project", "value": {"string_value": "snake"}}]},
                    "scope_spans": [
                        {
                            "scope": {"name": "s"},
                            "spans": [
                                {
                                    "trace_id": "0af7651916cd43dd8448eb211c80319c",
                                    "span_id": "b7ad6b7169203331",
                                    "parent_span_id": "",
                                    "name": "snake",
                                    "start_time_unix_nano": now - 10,
                                    "end_time_unix_nano": now,
                                    "attributes": [{"key": "n", "value": {"int_value": "5"}}],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
    (record,) = _decode(body, JSON).records
    assert (record["project"], record["trace_id"], record["attributes"]) == (
        "snake",
        "0af7651916cd43dd8448eb211c80319c",
        {"n": 5},
    )


def test_protobuf_any_values_the_sdk_cannot_make_decode_like_json() -> None:
    """kvlists, bytes, nested arrays, negative and extreme ints, empty values: protobuf and JSON agree."""
    request = encode_spans(_with_attributes({"seed": 1}))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    del span.attributes[:]
    values = {
        "kv": AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1))])),
        "bytes": AnyValue(bytes_value=b"\xff\x00binary"),
        "nested": AnyValue(
            array_value=ArrayValue(values=[AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=1.5)]))])
        ),
        "min": AnyValue(int_value=-(2**63)),
        "max": AnyValue(int_value=2**63 - 1),
        "zero": AnyValue(int_value=0),
        "empty_string": AnyValue(string_value=""),
        "long": AnyValue(string_value="y" * 100_000),
        "empty": AnyValue(),
        "empty_array": AnyValue(array_value=ArrayValue()),
    }
    span.attributes.extend(KeyValue(key=key, value=value) for key, value in values.items())
    (from_protobuf,) = _decode(request.SerializeToString()).records
    (from_json,) = _decode(_hex_json(request), JSON).records
    assert from_protobuf == from_json
    assert from_protobuf["attributes"] == {
        "kv": {"a": 1},
        "bytes": base64.b64encode(b"\xff\x00binary").decode(),
        "nested": [[1.5]],
        "min": -(2**63),
        "max": 2**63 - 1,
        "zero": 0,
        "empty_string": "",
        "long": "y" * 100_000,
        "empty_array": [],
    }


def test_lite_protobuf_schema_has_the_field_numbers_of_opentelemetry_proto() -> None:
    official = {
        "Request": ExportTraceServiceRequest.DESCRIPTOR,
        "ResourceSpans": trace_pb2.ResourceSpans.DESCRIPTOR,
        "Resource": trace_pb2.ResourceSpans.DESCRIPTOR.fields_by_name["resource"].message_type,
        "ScopeSpans": trace_pb2.ScopeSpans.DESCRIPTOR,
        "Scope": trace_pb2.ScopeSpans.DESCRIPTOR.fields_by_name["scope"].message_type,
        "Span": trace_pb2.Span.DESCRIPTOR,
        "Event": trace_pb2.Span.Event.DESCRIPTOR,
        "Link": trace_pb2.Span.Link.DESCRIPTOR,
        "Status": trace_pb2.Status.DESCRIPTOR,
    }
    for message, fields in _otlp._LITE_SCHEMA.items():
        for name, number, _ in fields:
            assert official[message].fields_by_name[name].number == number, (message, name)


def test_records_pass_span_columns_without_rejections() -> None:
    records = _decode(_protobuf(_sample_spans())).records
    columns, rejected = span_columns(records)
    assert rejected == [] and len(columns["span_id"]) == len(records) == 5


# -- transport: encodings, content types, sizes ------------------------------------------------


def test_gzip_bodies_protobuf_and_json() -> None:
    spans = _sample_spans()
    body = _protobuf(spans)
    expected = _decode(body).records
    assert _decode(gzip.compress(body), encoding="gzip").records == expected
    assert _decode(gzip.compress(body), encoding=" GZIP ").records == expected
    halves = gzip.compress(body[:100]) + gzip.compress(body[100:])  # a multi-member gzip stream
    assert _decode(halves, encoding="gzip").records == expected
    assert _decode(gzip.compress(_hex_json(encode_spans(spans))), JSON, "gzip").records == expected
    assert _decode(body, encoding="identity").records == expected


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8", 'application/json; charset="utf-8"'],
)
def test_json_content_type_parameters_are_allowed(content_type: str) -> None:
    assert len(_decode(_json_request(_json_span()), content_type).records) == 1


def test_protobuf_content_type_parameters_and_other_charsets() -> None:
    body = _protobuf(_sample_spans())
    assert len(_decode(body, "application/x-protobuf; charset=binary").records) == 5
    latin1 = _json_request(_json_span(name="café")).decode().encode("latin-1")
    assert _decode(latin1, "application/json; charset=iso-8859-1").records[0]["name"] == "café"
    with pytest.raises(OtlpError) as error:
        _decode(latin1, "application/json; charset=no-such-charset")
    assert error.value.status == 415


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON, "application/json; charset=utf-8"])
def test_empty_body_is_a_valid_empty_request(content_type: str) -> None:
    for body in (b"", gzip.compress(b"")):
        decoded = _decode(body, content_type, "gzip" if body else None)
        assert (decoded.records, decoded.rejected, decoded.errors) == ([], 0, [])
    assert _decode(b"{}", JSON).records == []
    assert _decode(b'{"resourceSpans": []}', JSON).records == []


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff\xff", b"\x0a\x05abc", b"not a protobuf message at all", b"\x0a\x80\x80\x80\x80\x80\x80"],
)
def test_malformed_protobuf_is_400(body: bytes) -> None:
    with pytest.raises(OtlpError) as error:
        _decode(body)
    assert error.value.status == 400 and "protobuf" in str(error.value)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b'{"resourceSpans": {}}',
        b'{"resourceSpans": [1]}',
        b'{"resourceSpans": [{"scopeSpans": "x"}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}',
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": 1}]}}]}',
        b"\xff\xfe{}",
    ],
)
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(OtlpError) as error:
        _decode(body, JSON)
    assert error.value.status == 400


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "application/xml", "multipart/form-data", "application/grpc"]
)
def test_unsupported_content_type_is_415(content_type: str) -> None:
    with pytest.raises(OtlpError) as error:
        _decode(b"{}", content_type)
    assert error.value.status == 415


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br", "compress"])
def test_unsupported_content_encoding_is_415(encoding: str) -> None:
    with pytest.raises(OtlpError) as error:
        _decode(gzip.compress(b""), encoding=encoding)
    assert error.value.status == 415


def test_gzip_bomb_and_oversized_bodies_are_413() -> None:
    bomb = gzip.compress(b"\x00" * (20 * 1024 * 1024))  # ~20 KB that inflates to 20 MB
    assert len(bomb) < 100_000
    with pytest.raises(OtlpError) as error:
        _decode(bomb, encoding="gzip", max_bytes=1024 * 1024)
    assert error.value.status == 413
    many_members = gzip.compress(b"\x00" * 600_000) * 2  # each member under the limit, together over it
    with pytest.raises(OtlpError) as error:
        _decode(many_members, encoding="gzip", max_bytes=1024 * 1024)
    assert error.value.status == 413
    body = _protobuf(_sample_spans())
    with pytest.raises(OtlpError) as error:
        _decode(body, max_bytes=len(body) - 1)
    assert error.value.status == 413
    assert len(_decode(body, max_bytes=len(body)).records) == 5  # the limit itself is allowed
    assert len(_decode(gzip.compress(body), encoding="gzip", max_bytes=len(body)).records) == 5


@pytest.mark.parametrize("body", [b"\x1f\x8b not really gzip", b"plain text", gzip.compress(b"x" * 1000)[:-12]])
def test_malformed_or_truncated_gzip_is_400(body: bytes) -> None:
    with pytest.raises(OtlpError) as error:
        _decode(body, encoding="gzip")
    assert error.value.status == 400


# -- per-span validation -----------------------------------------------------------------------


def test_bad_spans_are_rejected_one_by_one_in_protobuf() -> None:
    spans = _with_attributes(*({"i": i} for i in range(9)))
    request = encode_spans(spans)
    protobuf_spans = request.resource_spans[0].scope_spans[0].spans
    now = time.time_ns()
    protobuf_spans[1].trace_id = bytes(16)
    protobuf_spans[2].span_id = bytes(8)
    protobuf_spans[3].trace_id = b"\x01" * 8
    protobuf_spans[4].parent_span_id = b"\x01\x02\x03"
    protobuf_spans[5].end_time_unix_nano = protobuf_spans[5].start_time_unix_nano - 1
    protobuf_spans[6].start_time_unix_nano, protobuf_spans[6].end_time_unix_nano = 10**9, 2 * 10**9  # 1970
    protobuf_spans[7].end_time_unix_nano = now + 2 * 86_400 * 10**9  # two days ahead
    protobuf_spans[8].parent_span_id = bytes(8)  # an all-zero parent means "root", not an error
    decoded = _decode(request.SerializeToString())
    assert sorted(record["name"] for record in decoded.records) == ["span-0", "span-8"]
    assert _by_name(decoded)["span-8"]["parent_span_id"] == ""
    assert decoded.rejected == 7 and len(decoded.errors) == 7
    reasons = "\n".join(decoded.errors)
    for needle in ("trace_id", "span_id", "parent_span_id", "before the start", "year 2000", "future"):
        assert needle in reasons
    assert decoded.errors[0].startswith("span 'span-1': ")


def test_bad_spans_are_rejected_one_by_one_in_json() -> None:
    now = time.time_ns()
    good = _json_span(name="good")
    bad = [
        _json_span(name="zero-trace", traceId="0" * 32),
        _json_span(name="zero-span", spanId="0" * 16),
        _json_span(name="short-trace", traceId="abcd"),
        _json_span(name="not-hex", spanId="zzzzzzzzzzzzzzzz"),
        _json_span(name="no-span-id", spanId=None),
        _json_span(name="bad-parent", parentSpanId="0102"),
        _json_span(name="backwards", startTimeUnixNano=str(now), endTimeUnixNano=str(now - 1)),
        _json_span(name="epoch", startTimeUnixNano="1000", endTimeUnixNano="2000"),
        _json_span(name="future", endTimeUnixNano=str(now + 3 * 86_400 * 10**9)),
        _json_span(name="overflow", endTimeUnixNano=str(2**64)),
        _json_span(name="no-times", startTimeUnixNano=None, endTimeUnixNano=None),
        _json_span(name="bad-time", startTimeUnixNano="soon"),
        _json_span(name="bad-kind", kind="SPAN_KIND_SIDEWAYS"),
        _json_span(name="bad-attributes", attributes={"a": 1}),
        _json_span(name="bad-value", attributes=[{"key": "a", "value": {"intValue": "one"}}]),
        _json_span(name="bad-status", status="ok"),
    ]
    decoded = _decode(_json_request(bad[0], good, *bad[1:]), JSON)
    assert [record["name"] for record in decoded.records] == ["good"]
    assert decoded.rejected == len(bad) and len(decoded.errors) == len(bad)
    assert all(error.startswith("span '") for error in decoded.errors)


def test_rejection_reasons_are_capped() -> None:
    spans = [_json_span(name=f"bad-{i}", traceId="0" * 32) for i in range(50)]
    decoded = _decode(_json_request(*spans, _json_span(name="good")), JSON)
    assert decoded.rejected == 50 and len(decoded.errors) == _otlp.MAX_ERRORS
    assert [record["name"] for record in decoded.records] == ["good"]


def test_malformed_attribute_value_in_protobuf_rejects_only_its_span() -> None:
    request = encode_spans(_with_attributes({"a": "value-of-a"}, {"b": "value-of-b"}))
    spans = request.resource_spans[0].scope_spans[0].spans
    body = request.SerializeToString()
    good_value = spans[1].attributes[0].value.SerializeToString()
    corrupt = good_value[:1] + b"\x7f" + good_value[2:]  # a string length pointing past the value
    decoded = _decode(body.replace(good_value, corrupt))
    assert [record["name"] for record in decoded.records] == ["span-0"]
    assert decoded.rejected == 1 and "malformed attribute value" in decoded.errors[0]


# -- projects ----------------------------------------------------------------------------------


def test_project_comes_from_the_tracehouse_project_resource_attribute() -> None:
    tagged = encode_spans(_with_attributes({"n": 1}, resource={"tracehouse.project": "team-a"}))
    untagged = encode_spans(_with_attributes({"n": 2}))
    request = ExportTraceServiceRequest()
    request.resource_spans.extend([*tagged.resource_spans, *untagged.resource_spans])
    for body, content_type in ((request.SerializeToString(), PROTOBUF), (_hex_json(request), JSON)):
        decoded = decode_traces(body, content_type, None, "fallback")
        assert [record["project"] for record in decoded.records] == ["team-a", "fallback"]
        assert decoded.records[0]["resource"]["tracehouse.project"] == "team-a"
        assert [span_row(record)["project"] for record in decoded.records] == ["team-a", "fallback"]


# -- attribute mapping: GenAI, OpenInference, OpenLLMetry land in the same columns --------------

QUESTION = "What is the capital of France?"
INPUT_MESSAGES = [{"role": "user", "content": QUESTION}]
OUTPUT_MESSAGES = [{"role": "assistant", "content": "Paris"}]

GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.input.messages": orjson.dumps(INPUT_MESSAGES).decode(),
    "gen_ai.output.messages": orjson.dumps(OUTPUT_MESSAGES).decode(),
}
OPENINFERENCE = {
    "openinference.span.kind": "LLM",
    "llm.provider": "openai",
    "llm.model_name": "gpt-4o",
    "llm.token_count.prompt": 12,
    "llm.token_count.completion": 3,
    "llm.token_count.total": 15,
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": QUESTION,
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Paris",
}
OPENLLMETRY = {
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.prompt_tokens": 12,
    "gen_ai.usage.completion_tokens": 3,
    "llm.usage.total_tokens": 15,
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": QUESTION,
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Paris",
}
COLUMNS = ("input", "output", "model", "provider", "input_tokens", "output_tokens", "total_tokens", "cost_usd")


def _rows(*attribute_sets: dict[str, Any], content_type: str = PROTOBUF) -> list[dict[str, Any]]:
    request = encode_spans(_with_attributes(*attribute_sets))
    body = request.SerializeToString() if content_type == PROTOBUF else _hex_json(request)
    decoded = _decode(body, content_type)
    assert decoded.rejected == 0, decoded.errors
    return [span_row(record) for record in decoded.records]


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_genai_openinference_and_openllmetry_land_in_the_same_columns(content_type: str) -> None:
    genai, openinference, openllmetry = _rows(GENAI, OPENINFERENCE, OPENLLMETRY, content_type=content_type)
    expected = {
        "input": orjson.dumps(INPUT_MESSAGES).decode(),
        "output": orjson.dumps(OUTPUT_MESSAGES).decode(),
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 12,
        "output_tokens": 3,
        "total_tokens": 15,
    }
    for row in (genai, openinference, openllmetry):
        assert {column: row[column] for column in expected} == expected
        assert row["cost_usd"] == genai["cost_usd"] and row["cost_usd"] > 0
        assert not [key for key in row["attributes"] if ".0." in key]  # flattened keys are folded away
        assert "gen_ai.input.messages" not in row["attributes"]  # content lives in its column only
    assert (genai["kind"], openinference["kind"], openllmetry["kind"]) == ("chat", "llm", "chat")


def test_openinference_values_documents_and_kinds() -> None:
    llm, retriever, reranker, chain = _rows(
        {
            **OPENINFERENCE,
            "input.value": '{"messages": "raw request"}',
            "output.value": "Paris",
            "input.mime_type": "application/json",
        },
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": QUESTION,
            "retrieval.documents.0.document.content": "Paris is the capital of France.",
            "retrieval.documents.0.document.id": "doc-1",
            "retrieval.documents.0.document.score": 0.9,
            "retrieval.documents.0.document.metadata": '{"source": "wiki"}',
            "retrieval.documents.1.document.content": "France is in Europe.",
            "retrieval.documents.1.document.id": "doc-2",
            "retrieval.documents.1.document.score": 0.4,
        },
        {
            "openinference.span.kind": "RERANKER",
            "reranker.query": QUESTION,
            "reranker.input_documents.0.document.content": "a",
            "reranker.input_documents.1.document.content": "b",
            "reranker.output_documents.0.document.content": "b",
            "reranker.output_documents.0.document.score": 0.7,
        },
        {"openinference.span.kind": "CHAIN", "input.value": "q", "output.value": "a", "session.id": "s-1"},
    )
    # input.value / output.value win; the flattened messages they duplicate are dropped, not kept as attributes
    assert (llm["input"], llm["output"], llm["kind"]) == ('{"messages": "raw request"}', "Paris", "llm")
    assert not [key for key in llm["attributes"] if "messages" in key]
    assert llm["attributes"]["llm.token_count.prompt"] == "12"  # the original attributes stay
    assert orjson.loads(retriever["context"]) == [
        {"text": "Paris is the capital of France.", "id": "doc-1", "score": 0.9, "metadata": {"source": "wiki"}},
        {"text": "France is in Europe.", "id": "doc-2", "score": 0.4},
    ]
    assert (retriever["kind"], retriever["input"]) == ("retriever", QUESTION)
    assert not [key for key in retriever["attributes"] if key.startswith("retrieval.")]
    assert reranker["kind"] == "reranker"
    assert orjson.loads(reranker["context"]) == [{"text": "b", "score": 0.7}]
    assert orjson.loads(reranker["attributes"]["reranker.input_documents"]) == [{"text": "a"}, {"text": "b"}]
    assert (chain["kind"], chain["input"], chain["output"], chain["session_id"]) == ("chain", "q", "a", "s-1")


def test_openinference_multipart_and_tool_call_messages_are_kept() -> None:
    (row,) = _rows(
        {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.contents.0.message_content.type": "text",
            "llm.input_messages.0.message.contents.0.message_content.text": "look at this",
            "llm.input_messages.1.message.role": "system",
            "llm.input_messages.1.message.content": "be brief",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": "x"}',
        }
    )
    messages = orjson.loads(row["input"])
    assert [(m["role"], m["content"]) for m in messages] == [("user", "look at this"), ("system", "be brief")]
    assert messages[0]["contents"] == [{"message_content": {"type": "text", "text": "look at this"}}]
    (output,) = orjson.loads(row["output"])
    assert output["tool_calls"] == [{"tool_call": {"function": {"name": "search", "arguments": '{"q": "x"}'}}}]


def test_openllmetry_messages_kinds_and_usage() -> None:
    llm, workflow, task, agent, tool = _rows(
        {
            **OPENLLMETRY,
            "gen_ai.prompt.1.role": "assistant",
            "gen_ai.prompt.1.content": "Earlier answer",
            "gen_ai.completion.0.finish_reason": "stop",
        },
        {"traceloop.span.kind": "workflow", "traceloop.entity.name": "pipeline", "traceloop.entity.input": '{"q": 1}'},
        {"traceloop.span.kind": "task", "traceloop.entity.output": '{"a": 2}'},
        {"traceloop.span.kind": "agent"},
        {"traceloop.span.kind": "tool"},
    )
    assert orjson.loads(llm["input"]) == [*INPUT_MESSAGES, {"role": "assistant", "content": "Earlier answer"}]
    assert orjson.loads(llm["output"]) == [{"role": "assistant", "content": "Paris", "finish_reason": "stop"}]
    assert (llm["provider"], llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == ("openai", 12, 3, 15)
    assert not [key for key in llm["attributes"] if key.startswith(("gen_ai.prompt.", "gen_ai.completion."))]
    assert [row["kind"] for row in (llm, workflow, task, agent, tool)] == ["chat", "chain", "chain", "agent", "tool"]
    assert (workflow["input"], task["output"]) == ('{"q": 1}', '{"a": 2}')


def test_genai_attributes_are_kept_as_they_are() -> None:
    (record,) = _decode(_protobuf(_with_attributes(GENAI))).records
    assert record["attributes"] == GENAI
    (row,) = _rows({**GENAI, "gen_ai.operation.name": "embeddings", "gen_ai.retrieval.documents": '[{"text": "t"}]'})
    assert (row["kind"], row["context"]) == ("embedding", '[{"text": "t"}]')


def test_folding_leaves_lookalike_keys_alone_and_does_not_override_explicit_values() -> None:
    (row,) = _rows(
        {
            "gen_ai.prompt.template": "Hello {name}",  # not an indexed item
            "gen_ai.input.messages": '[{"role": "user", "content": "explicit"}]',
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "flattened copy",
            "tracehouse.span.kind": "agent",
            "traceloop.span.kind": "task",
        }
    )
    assert row["input"] == '[{"role": "user", "content": "explicit"}]'
    assert row["attributes"]["gen_ai.prompt.template"] == "Hello {name}"
    assert "gen_ai.prompt.0.content" not in row["attributes"]
    assert row["kind"] == "agent"
