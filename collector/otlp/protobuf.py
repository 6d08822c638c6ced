"""Decode a protobuf OTLP/HTTP `ExportTraceServiceRequest` into span records.

The request is parsed with a private schema that is wire-compatible with opentelemetry-proto's
ExportTraceServiceRequest, with two differences that make it several times faster to read from
Python: `repeated KeyValue attributes` is read as `map<string, bytes>` (a map entry is a message
with key = 1 and value = 2, exactly KeyValue's layout), so a span's attributes come out of the C
parser in one pass, and each value stays the raw bytes of its AnyValue, decoded below (strings,
ints, doubles and bools inline; the rare arrays, kvlists and bytes through the official AnyValue).
Fields we do not store (flags, dropped counts, schema urls, scope attributes) are skipped.

Speed: the request is read field by field (no `MessageToDict`) and ids become hex with
`bytes.hex()`. google.protobuf and opentelemetry-proto are imported on first use.
"""

from __future__ import annotations

import base64
import functools
import struct
from typing import Any, Optional

from tracehouse.collector.otlp.common import (
    _FUTURE_SLACK_NS,
    _MAX_TIME_NS,
    _MIN_TIME_NS,
    _SPAN_KINDS,
    _STATUSES,
    _ZERO_SPAN_ID,
    _ZERO_TRACE_ID,
    DecodedSpans,
    OtlpError,
    _bad_times,
    _project,
    _SpanError,
)
from tracehouse.collector.otlp.conventions import normalise_span

_unpack_double = struct.Struct("<d").unpack_from


# message -> (field, number, type): "*T" is `repeated T`, "attributes" is `map<string, bytes>`
_LITE_SCHEMA: dict[str, tuple[tuple[str, int, str], ...]] = {
    "Request": (("resource_spans", 1, "*ResourceSpans"),),
    "ResourceSpans": (("resource", 1, "Resource"), ("scope_spans", 2, "*ScopeSpans")),
    "Resource": (("attributes", 1, "attributes"),),
    "ScopeSpans": (("scope", 1, "Scope"), ("spans", 2, "*Span")),
    "Scope": (("name", 1, "string"), ("version", 2, "string")),
    "Span": (
        ("trace_id", 1, "bytes"), ("span_id", 2, "bytes"), ("trace_state", 3, "string"),
        ("parent_span_id", 4, "bytes"), ("name", 5, "string"), ("kind", 6, "int32"),
        ("start_time_unix_nano", 7, "fixed64"), ("end_time_unix_nano", 8, "fixed64"),
        ("attributes", 9, "attributes"), ("events", 11, "*Event"), ("links", 13, "*Link"), ("status", 15, "Status"),
    ),
    "Event": (("time_unix_nano", 1, "fixed64"), ("name", 2, "string"), ("attributes", 3, "attributes")),
    "Link": (
        ("trace_id", 1, "bytes"), ("span_id", 2, "bytes"), ("trace_state", 3, "string"),
        ("attributes", 4, "attributes"),
    ),
    "Status": (("message", 2, "string"), ("code", 3, "int32")),
}  # fmt: skip


@functools.cache
def _lite_request_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FieldDescriptorProto
    scalars = {"bytes": proto.TYPE_BYTES, "string": proto.TYPE_STRING, "int32": proto.TYPE_INT32}
    scalars["fixed64"] = proto.TYPE_FIXED64
    package = "tracehouse.otlp_lite"
    file_proto = descriptor_pb2.FileDescriptorProto(name="tracehouse/otlp_lite.proto", package=package, syntax="proto3")
    for message_name, fields in _LITE_SCHEMA.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, kind in fields:
            field = message.field.add(name=name, number=number, label=proto.LABEL_OPTIONAL)
            if kind in scalars:
                field.type = scalars[kind]
                continue
            if kind == "attributes":
                entry = message.nested_type.add(name="AttributesEntry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
                entry.field.add(name="value", number=2, type=proto.TYPE_BYTES, label=proto.LABEL_OPTIONAL)
                kind = f"*{message_name}.AttributesEntry"
            field.type = proto.TYPE_MESSAGE
            field.label = proto.LABEL_REPEATED if kind.startswith("*") else proto.LABEL_OPTIONAL
            field.type_name = f".{package}.{kind.lstrip('*')}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Request"))


def _decode_protobuf(data: bytes, default_project: str, now_ns: int, out: DecodedSpans) -> None:
    from google.protobuf.message import DecodeError

    request = _lite_request_class()()
    try:
        request.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError, RecursionError) as error:
        raise OtlpError(400, f"malformed protobuf ExportTraceServiceRequest: {error or type(error).__name__}")
    max_ns = min(now_ns + _FUTURE_SLACK_NS, _MAX_TIME_NS)
    records = out.records
    for resource_spans in request.resource_spans:
        try:
            resource = _pb_attributes(resource_spans.resource.attributes)
        except (_SpanError, RecursionError) as error:
            raise OtlpError(400, f"malformed protobuf resource attributes: {error}")
        project = _project(resource, default_project)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                start_ns = span.start_time_unix_nano
                end_ns = span.end_time_unix_nano
                reason = _bad_span(trace_id, span_id, parent, start_ns, end_ns, max_ns)
                if reason:
                    out.reject(span.name, reason)
                    continue
                try:
                    attributes = _pb_attributes(span.attributes)
                    events = (
                        [
                            {"name": e.name, "time_ns": e.time_unix_nano, "attributes": _pb_attributes(e.attributes)}
                            for e in span.events
                        ]
                        if span.events
                        else []
                    )
                    links = _pb_links(span.links) if span.links else None
                except (_SpanError, RecursionError) as error:
                    out.reject(span.name, str(error) or "attribute values nested too deeply")
                    continue
                status = span.status
                code = status.code
                kind = span.kind
                records.append(
                    {
                        "type": "span",
                        "project": project,
                        "name": span.name,
                        "trace_id": trace_id.hex(),
                        "span_id": span_id.hex(),
                        "parent_span_id": parent.hex() if parent and parent != _ZERO_SPAN_ID else "",
                        "start_ns": start_ns,
                        "end_ns": end_ns,
                        "status": _STATUSES[code] if 0 <= code <= 2 else "unset",
                        "status_message": status.message,
                        "attributes": attributes,  # normalise_span maps them
                        "events": events,
                        "span_kind": _SPAN_KINDS[kind] if 0 <= kind <= 5 else "INTERNAL",
                        "scope": scope,
                        "resource": resource,
                    }
                )
                if scope_version or links or span.trace_state:
                    _span_context(records[-1], scope_version, span.trace_state, links)
                normalise_span(records[-1])


def _bad_span(trace_id: bytes, span_id: bytes, parent: bytes, start_ns: int, end_ns: int, max_ns: int) -> str:
    """Why a span's ids or times are refused ("" when they are fine)."""
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return "trace_id must be 16 bytes, not all zero"
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return "span_id must be 8 bytes, not all zero"
    if parent and len(parent) != 8:
        return "parent_span_id must be empty or 8 bytes"
    if start_ns < _MIN_TIME_NS or end_ns < start_ns or end_ns > max_ns:
        return _bad_times(start_ns, end_ns, max_ns)
    return ""


def _span_context(record: dict[str, Any], scope_version: str, trace_state: str, links: Any) -> None:
    """The record's scope version, trace state and links (each only when set, as in `record_to_dict`)."""
    if scope_version:
        record["scope_version"] = scope_version
    if trace_state:
        record["trace_state"] = trace_state
    if links:
        record["links"] = links


def _pb_links(raw_links: Any) -> list[dict[str, Any]]:
    """Span links: ids as hex ("" when empty or all zero, as the exporter writes them), trace state, attributes."""
    links = []
    for link in raw_links:
        trace_id, span_id = link.trace_id, link.span_id
        if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
            raise _SpanError("link trace_id/span_id must be empty or 16/8 bytes")
        links.append(
            {
                "trace_id": trace_id.hex() if trace_id and trace_id != _ZERO_TRACE_ID else "",
                "span_id": span_id.hex() if span_id and span_id != _ZERO_SPAN_ID else "",
                "trace_state": link.trace_state,
                "attributes": _pb_attributes(link.attributes),
            }
        )
    return links


def _pb_attributes(raw_attributes: Any) -> dict[str, Any]:
    """Attributes from a `map<string, bytes>` of raw AnyValue messages (empty values dropped)."""
    attributes: dict[str, Any] = dict(raw_attributes)
    empty: Optional[list[str]] = None
    for key, raw in attributes.items():
        size = len(raw)
        if size > 1 and raw[0] == 0x0A and size == raw[1] + 2:  # inline: a string_value under 128 bytes
            attributes[key] = raw[2:].decode("utf-8", "replace")
            continue
        value = _pb_any(raw) if size else None
        if value is not None:
            attributes[key] = value
        elif empty is None:
            empty = [key]
        else:
            empty.append(key)
    if empty:
        for key in empty:
            del attributes[key]
    return attributes


def _pb_any(raw: bytes) -> Any:
    """One AnyValue from its wire bytes (None when empty)."""
    size = len(raw)
    if not size:
        return None
    tag = raw[0]
    if tag == 0x0A:  # string_value
        length, position = _varint(raw, 1)
        if position + length == size:
            return raw[position:].decode("utf-8", "replace")
    elif tag == 0x18:  # int_value (int64: negatives are 10-byte two's complement varints)
        if size == 2 and raw[1] < 0x80:
            return raw[1]
        number, position = _varint(raw, 1)
        if position == size:
            return number - (1 << 64) if number >= 1 << 63 else number
    elif tag == 0x21:  # double_value
        if size == 9:
            return _unpack_double(raw, 1)[0]
    elif tag == 0x10:  # bool_value
        if size == 2 and raw[1] < 0x80:
            return raw[1] != 0
    elif tag == 0x2A:  # array_value: ArrayValue { repeated AnyValue values = 1 }
        length, position = _varint(raw, 1)
        if position + length == size:
            values: list[Any] = []
            while position < size and raw[position] == 0x0A:
                length, start = _varint(raw, position + 1)
                position = start + length
                if start < 0 or position > size:
                    break
                values.append(_pb_any(raw[start:position]))
            if position == size:
                return values
    return _pb_any_slow(raw)


def _varint(raw: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    size = len(raw)
    while position < size and shift < 70:
        byte = raw[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
    return 0, -(1 << 62)  # truncated or too long: a position that never matches a real one


@functools.cache
def _any_value_class() -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    return AnyValue


def _pb_any_slow(raw: bytes) -> Any:
    """Kvlists, bytes (and any unusual encoding) through the official AnyValue message."""
    from google.protobuf.message import DecodeError

    try:
        value = _any_value_class().FromString(raw)
    except (DecodeError, ValueError, RuntimeError, RecursionError) as error:
        raise _SpanError(f"malformed attribute value: {error or type(error).__name__}")
    return _pb_value(value, value.WhichOneof("value"))


def _pb_value(value: Any, which: Optional[str]) -> Any:
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [_pb_value(v, v.WhichOneof("value")) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, kv.value.WhichOneof("value")) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None  # empty, or a dictionary reference (profiles only)
