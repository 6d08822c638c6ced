"""Decode OTLP/HTTP trace requests (protobuf or JSON) into spool-shaped span records.

The collector's `POST /v1/traces` hands the raw body here and gets back the records it will
store (the same dict shape as `exporters._records.record_to_dict`), plus the spans it refused one
by one (for OTLP `partial_success`). A payload that cannot be read at all raises `OtlpError`
carrying the HTTP status to answer with.

On the way in, the attributes of the ecosystems we accept are brought to one shape, so that
`_span_rows.span_row` puts them in the same columns as tracehouse's own:

- OpenTelemetry GenAI conventions: kept as they are.
- OpenInference: flattened `retrieval.documents.N.document.*` become one JSON list under
  `gen_ai.retrieval.documents` (documents as {"text", "id", "score", "metadata"}, what
  `Span.set_context` writes; a reranker's `reranker.output_documents.N.*` when there are none,
  its input documents under `reranker.input_documents`); flattened `llm.input_messages.N.message.*` /
  `llm.output_messages.N.message.*` become `gen_ai.input.messages` / `gen_ai.output.messages`
  (when `input.value` / `output.value` are absent; dropped as duplicates when present).
- OpenLLMetry (Traceloop): flattened `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` become
  `gen_ai.input.messages` / `gen_ai.output.messages`; `traceloop.span.kind` and
  `llm.request.type` give `tracehouse.span.kind`.

The flattened keys are removed once folded; every other attribute is kept.

Attribute values: string, int, float, bool, lists of them; an OTLP kvlist becomes a dict and
bytes become base64 text. Malformed values reject their span, not the request.

Speed: protobuf is parsed with a wire-compatible private schema (see below) and read field by
field (no `MessageToDict`), ids become hex with `bytes.hex()`, and the attribute folding runs only
for spans that carry one of the flattened prefixes. The records of one resource share one
`resource` dict: treat records as read-only.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import math
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Callable, Optional

import orjson

from tracehouse import _semconv as sc
from tracehouse._errors import TracehouseError

__all__ = ["DecodedSpans", "OtlpError", "decode_traces"]

MAX_ERRORS = 20
_PROJECT_KEY = "tracehouse.project"
_MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
_MAX_TIME_NS = 2**63 - 1
_FUTURE_SLACK_NS = 86_400 * 10**9  # one day ahead of the collector's clock
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_SPAN_KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # by OTLP number
_SPAN_KIND_NAMES = {f"SPAN_KIND_{name}": number for number, name in enumerate(_SPAN_KINDS)}
_SPAN_KIND_NAMES["SPAN_KIND_UNSPECIFIED"] = 0
_STATUSES = ("unset", "ok", "error")  # by OTLP number
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_PROTOBUF_TYPES = frozenset(("application/x-protobuf", "application/protobuf"))
_JSON_TYPES = frozenset(("application/json",))
_unpack_double = struct.Struct("<d").unpack_from
_UTF8_CHARSETS = frozenset(("utf-8", "utf8", "us-ascii", "ascii"))


class OtlpError(TracehouseError):
    """A payload the collector must refuse as a whole; `status` is the HTTP status to answer with.

    400: malformed protobuf or JSON; 413: too large (after decompression); 415: unsupported
    content type or content encoding.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DecodedSpans:
    """The span records of one request, and the spans refused individually."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)  # one short reason per rejected span, at most MAX_ERRORS

    def reject(self, name: Any, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"span {str(name)[:100]!r}: {reason}")


class _SpanError(ValueError):
    """One span cannot be accepted (the others can)."""


def decode_traces(
    body: bytes,
    content_type: str,
    content_encoding: Optional[str],
    default_project: str,
    max_bytes: int = 64 * 1024 * 1024,
) -> DecodedSpans:
    """Decode one OTLP/HTTP `ExportTraceServiceRequest` body into span records.

    `content_type` is the request's Content-Type (parameters such as charset allowed),
    `content_encoding` its Content-Encoding (gzip, identity or None). The project of a span is its
    resource's `tracehouse.project` attribute, else `default_project`. Raises OtlpError for a
    payload refused as a whole; spans with bad ids or absurd timestamps are counted in `rejected`.
    """
    media_type, charset = _parse_content_type(content_type)
    is_protobuf = media_type in _PROTOBUF_TYPES
    if not is_protobuf and media_type not in _JSON_TYPES:
        raise OtlpError(
            415, f"unsupported content type {content_type!r}: use application/x-protobuf or application/json"
        )
    data = _decompress(body if isinstance(body, bytes) else bytes(body), content_encoding, max_bytes)
    out = DecodedSpans()
    now_ns = time.time_ns()
    if is_protobuf:
        _decode_protobuf(data, default_project, now_ns, out)
    else:
        _decode_json(data, charset, default_project, now_ns, out)
    return out


# -- transport ---------------------------------------------------------------------------------


def _parse_content_type(content_type: Optional[str]) -> tuple[str, str]:
    media_type, _, params = (content_type or "").partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media_type.strip().lower(), charset


def _decompress(body: bytes, content_encoding: Optional[str], max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise OtlpError(413, f"request body of {len(body)} bytes exceeds the limit of {max_bytes} bytes")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise OtlpError(415, f"unsupported content encoding {content_encoding!r}: use gzip or identity")
    return _gunzip(body, max_bytes)


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress every gzip member of `body`, never holding more than max_bytes + 1 bytes of output."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while rest:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = decompressor.decompress(rest, max_bytes - size + 1)
        except zlib.error as error:
            raise OtlpError(400, f"malformed gzip body: {error}")
        size += len(chunk)
        if size > max_bytes or decompressor.unconsumed_tail:
            raise OtlpError(413, f"decompressed request body exceeds the limit of {max_bytes} bytes")
        if not decompressor.eof:
            raise OtlpError(400, "malformed gzip body: truncated")
        parts.append(chunk)
        rest = decompressor.unused_data
    return b"".join(parts)


# -- protobuf ----------------------------------------------------------------------------------
#
# The request is parsed with a private schema that is wire-compatible with opentelemetry-proto's
# ExportTraceServiceRequest, with two differences that make it several times faster to read from
# Python: `repeated KeyValue attributes` is read as `map<string, bytes>` (a map entry is a message
# with key = 1 and value = 2, exactly KeyValue's layout), so a span's attributes come out of the C
# parser in one pass, and each value stays the raw bytes of its AnyValue, decoded below (strings,
# ints, doubles and bools inline; the rare arrays, kvlists and bytes through the official AnyValue).
# Fields we do not store (links, trace_state, flags, dropped counts, schema urls) are skipped.


# message -> (field, number, type): "*T" is `repeated T`, "attributes" is `map<string, bytes>`
_LITE_SCHEMA: dict[str, tuple[tuple[str, int, str], ...]] = {
    "Request": (("resource_spans", 1, "*ResourceSpans"),),
    "ResourceSpans": (("resource", 1, "Resource"), ("scope_spans", 2, "*ScopeSpans")),
    "Resource": (("attributes", 1, "attributes"),),
    "ScopeSpans": (("scope", 1, "Scope"), ("spans", 2, "*Span")),
    "Scope": (("name", 1, "string"),),
    "Span": (
        ("trace_id", 1, "bytes"), ("span_id", 2, "bytes"), ("parent_span_id", 4, "bytes"), ("name", 5, "string"),
        ("kind", 6, "int32"), ("start_time_unix_nano", 7, "fixed64"), ("end_time_unix_nano", 8, "fixed64"),
        ("attributes", 9, "attributes"), ("events", 11, "*Event"), ("status", 15, "Status"),
    ),
    "Event": (("time_unix_nano", 1, "fixed64"), ("name", 2, "string"), ("attributes", 3, "attributes")),
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
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                start_ns = span.start_time_unix_nano
                end_ns = span.end_time_unix_nano
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
                    out.reject(span.name, "trace_id must be 16 bytes, not all zero")
                    continue
                if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
                    out.reject(span.name, "span_id must be 8 bytes, not all zero")
                    continue
                if parent and len(parent) != 8:
                    out.reject(span.name, "parent_span_id must be empty or 8 bytes")
                    continue
                if start_ns < _MIN_TIME_NS or end_ns < start_ns or end_ns > max_ns:
                    out.reject(span.name, _bad_times(start_ns, end_ns, max_ns))
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
                        "attributes": _normalise(attributes),
                        "events": events,
                        "span_kind": _SPAN_KINDS[kind] if 0 <= kind <= 5 else "INTERNAL",
                        "scope": scope,
                        "resource": resource,
                    }
                )


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


# -- JSON --------------------------------------------------------------------------------------


def _decode_json(data: bytes, charset: str, default_project: str, now_ns: int, out: DecodedSpans) -> None:
    if charset and charset not in _UTF8_CHARSETS:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise OtlpError(415, f"unsupported charset {charset!r}")
        try:
            data = data.decode(charset).encode("utf-8")
        except UnicodeError as error:
            raise OtlpError(400, f"body is not valid {charset}: {error}")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if not data.strip():
        return
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise OtlpError(400, f"malformed JSON: {error}")
    if not isinstance(request, dict):
        raise OtlpError(400, "malformed OTLP JSON: the request must be an object")
    max_ns = min(now_ns + _FUTURE_SLACK_NS, _MAX_TIME_NS)
    records = out.records
    for resource_spans in _json_list(request, "resourceSpans", "resource_spans", "request"):
        if not isinstance(resource_spans, dict):
            raise OtlpError(400, "malformed OTLP JSON: resourceSpans items must be objects")
        resource_obj = _json_object(resource_spans, "resource", "resource", "resourceSpans")
        try:
            resource = _json_attributes(_field(resource_obj, "attributes", "attributes"))
        except (_SpanError, RecursionError) as error:
            raise OtlpError(400, f"malformed OTLP JSON: resource attributes: {error or type(error).__name__}")
        project = _project(resource, default_project)
        for scope_spans in _json_list(resource_spans, "scopeSpans", "scope_spans", "resourceSpans"):
            if not isinstance(scope_spans, dict):
                raise OtlpError(400, "malformed OTLP JSON: scopeSpans items must be objects")
            scope_name = _field(_json_object(scope_spans, "scope", "scope", "scopeSpans"), "name", "name") or ""
            if not isinstance(scope_name, str):
                raise OtlpError(400, "malformed OTLP JSON: scope name must be a string")
            for span in _json_list(scope_spans, "spans", "spans", "scopeSpans"):
                if not isinstance(span, dict):
                    raise OtlpError(400, "malformed OTLP JSON: spans items must be objects")
                try:
                    records.append(_json_span(span, project, scope_name, resource, max_ns))
                except _SpanError as error:
                    out.reject(span.get("name"), str(error))
                except RecursionError:
                    out.reject(span.get("name"), "attribute values nested too deeply")


def _json_span(span: dict[str, Any], project: str, scope: str, resource: dict[str, Any], max_ns: int) -> dict[str, Any]:
    name = span.get("name") or ""
    if not isinstance(name, str):
        raise _SpanError("name must be a string")
    trace_id = _json_id(_field(span, "traceId", "trace_id"), 16, "trace_id")
    span_id = _json_id(_field(span, "spanId", "span_id"), 8, "span_id")
    parent = _json_id(_field(span, "parentSpanId", "parent_span_id"), 8, "parent_span_id", allow_empty=True)
    start_ns = _json_uint(_field(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end_ns = _json_uint(_field(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    reason = _bad_times(start_ns, end_ns, max_ns)
    if reason:
        raise _SpanError(reason)
    status = _field(span, "status", "status") or {}
    if not isinstance(status, dict):
        raise _SpanError("status must be an object")
    code = _json_enum(status.get("code"), _STATUS_NAMES, "status code")
    message = status.get("message") or ""
    if not isinstance(message, str):
        raise _SpanError("status message must be a string")
    kind = _json_enum(span.get("kind"), _SPAN_KIND_NAMES, "kind")
    events = []
    raw_events = _field(span, "events", "events") or []
    if not isinstance(raw_events, list):
        raise _SpanError("events must be an array")
    for event in raw_events:
        if not isinstance(event, dict):
            raise _SpanError("events must be objects")
        event_name = event.get("name") or ""
        if not isinstance(event_name, str):
            raise _SpanError("event name must be a string")
        events.append(
            {
                "name": event_name,
                "time_ns": _json_uint(_field(event, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
                "attributes": _json_attributes(event.get("attributes")),
            }
        )
    return {
        "type": "span",
        "project": project,
        "name": name,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "status": _STATUSES[code] if 0 <= code <= 2 else "unset",
        "status_message": message,
        "attributes": _normalise(_json_attributes(span.get("attributes"))),
        "events": events,
        "span_kind": _SPAN_KINDS[kind] if 0 <= kind <= 5 else "INTERNAL",
        "scope": scope,
        "resource": resource,
    }


def _field(obj: Optional[dict[str, Any]], camel: str, snake: str) -> Any:
    if not obj:
        return None
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _field(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(400, f"malformed OTLP JSON: {where}.{camel} must be an array")
    return value


def _json_object(obj: dict[str, Any], camel: str, snake: str, where: str) -> Optional[dict[str, Any]]:
    value = _field(obj, camel, snake)
    if value is not None and not isinstance(value, dict):
        raise OtlpError(400, f"malformed OTLP JSON: {where}.{camel} must be an object")
    return value


def _json_id(value: Any, size: int, what: str, allow_empty: bool = False) -> str:
    """An id as lowercase hex ("" when empty or all zero): hex per the OTLP spec, base64 tolerated."""
    if value is None or value == "":
        if allow_empty:
            return ""
        raise _SpanError(f"{what} missing")
    if not isinstance(value, str):
        raise _SpanError(f"{what} must be a hex string")
    try:
        if len(value) == 2 * size:
            raw = bytes.fromhex(value)
        else:  # protobuf's generic JSON mapping (MessageToJson) writes bytes as base64
            raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raise _SpanError(f"{what} is not hex: {value[:40]!r}")
    if len(raw) != size:
        raise _SpanError(f"{what} must be {size} bytes, got {len(raw)}")
    if raw == bytes(size):
        if allow_empty:
            return ""
        raise _SpanError(f"{what} must not be all zero")
    return raw.hex()


def _json_uint(value: Any, what: str) -> int:
    """A uint64 (a time in ns): a decimal string or a JSON number; missing is 0."""
    return 0 if value is None else _json_integer(value, what, 0, 2**64)


def _json_integer(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            raise _SpanError(f"{what} is not an integer: {value[:40]!r}")
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise _SpanError(f"{what} is not an integer: {value!r}")
    if not low <= number < high:
        raise _SpanError(f"{what} out of range")
    return number


def _json_enum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in names:
        return names[value]
    raise _SpanError(f"unknown {what} {value!r}")


def _json_attributes(key_values: Any) -> dict[str, Any]:
    if not key_values:
        return {}
    if type(key_values) is not list:
        raise _SpanError("attributes must be an array of {key, value}")
    out: dict[str, Any] = {}
    for kv in key_values:
        if type(kv) is not dict:
            raise _SpanError("attributes must be an array of {key, value}")
        key = kv.get("key")
        if type(key) is not str:
            raise _SpanError("attribute key must be a string")
        value = kv.get("value")
        if type(value) is dict and len(value) == 1:  # the common case: an AnyValue with one variant
            ((variant, item),) = value.items()
            if variant == "stringValue" and type(item) is str:
                out[key] = item
                continue
            decoder = _JSON_VALUE_DECODERS.get(variant)
            decoded = decoder(item) if decoder is not None and item is not None else None
        else:
            decoded = _json_value(value)
        if decoded is not None:
            out[key] = decoded
    return out


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _SpanError(f"attribute value must be an AnyValue object, got {type(value).__name__}")
    for key, item in value.items():
        decoder = _JSON_VALUE_DECODERS.get(key)
        if decoder is not None and item is not None:
            return decoder(item)
    return None


def _json_string(item: Any) -> str:
    if not isinstance(item, str):
        raise _SpanError("stringValue must be a string")
    return item


def _json_int(item: Any) -> int:
    return _json_integer(item, "intValue", -(2**63), 2**63)


def _json_double(item: Any) -> float:
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return float(item)
    if isinstance(item, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(item)
        if special is not None:
            return special
        try:
            return float(item)
        except ValueError:
            pass
    raise _SpanError(f"doubleValue is not a number: {item!r}")


def _json_bool(item: Any) -> bool:
    if not isinstance(item, bool):
        raise _SpanError("boolValue must be true or false")
    return item


def _json_array(item: Any) -> list[Any]:
    values = item.get("values") if isinstance(item, dict) else None
    if values is None:
        return []
    if not isinstance(values, list):
        raise _SpanError("arrayValue.values must be an array")
    return [_json_value(v) for v in values]


def _json_kvlist(item: Any) -> dict[str, Any]:
    values = item.get("values") if isinstance(item, dict) else None
    return _json_attributes(values)


def _json_bytes(item: Any) -> str:
    if not isinstance(item, str):
        raise _SpanError("bytesValue must be a base64 string")
    try:
        raw = base64.b64decode(item.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        raise _SpanError("bytesValue is not base64")
    return base64.b64encode(raw).decode("ascii")


_JSON_VALUE_DECODERS: dict[str, Callable[[Any], Any]] = {
    "stringValue": _json_string,
    "string_value": _json_string,
    "intValue": _json_int,
    "int_value": _json_int,
    "doubleValue": _json_double,
    "double_value": _json_double,
    "boolValue": _json_bool,
    "bool_value": _json_bool,
    "arrayValue": _json_array,
    "array_value": _json_array,
    "kvlistValue": _json_kvlist,
    "kvlist_value": _json_kvlist,
    "bytesValue": _json_bytes,
    "bytes_value": _json_bytes,
}


# -- shared ------------------------------------------------------------------------------------


def _project(resource: dict[str, Any], default_project: str) -> str:
    project = resource.get(_PROJECT_KEY)
    return project if isinstance(project, str) and project else default_project


def _bad_times(start_ns: int, end_ns: int, max_ns: int) -> str:
    """Why a span's start/end times are refused ("" when they are fine)."""
    if start_ns < _MIN_TIME_NS:
        return f"start time {start_ns} ns is missing or before the year 2000"
    if end_ns < start_ns:
        return f"end time {end_ns} ns is before the start time {start_ns} ns"
    if end_ns > max_ns:
        return f"end time {end_ns} ns is more than a day in the future"
    return ""


# -- attribute folding (OpenInference, OpenLLMetry) ---------------------------------------------

_DOCUMENTS = "retrieval.documents."
_RERANKER_OUTPUT = "reranker.output_documents."
_RERANKER_INPUT = "reranker.input_documents."
_OI_INPUT_MESSAGES = "llm.input_messages."
_OI_OUTPUT_MESSAGES = "llm.output_messages."
_TL_PROMPT = "gen_ai.prompt."
_TL_COMPLETION = "gen_ai.completion."
_FOLD_PREFIXES = (
    _DOCUMENTS,
    _RERANKER_OUTPUT,
    _RERANKER_INPUT,
    _OI_INPUT_MESSAGES,
    _OI_OUTPUT_MESSAGES,
    _TL_PROMPT,
    _TL_COMPLETION,
)
_INPUT_MESSAGES = "gen_ai.input.messages"
_OUTPUT_MESSAGES = "gen_ai.output.messages"
_TRACELOOP_KIND = "traceloop.span.kind"
_TRACELOOP_REQUEST_TYPE = "llm.request.type"
_TRACELOOP_TO_KIND = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
_REQUEST_TYPE_TO_KIND = {"chat": "chat", "completion": "llm", "embedding": "embedding", "rerank": "reranker"}
_DOCUMENT_FIELDS = {"content": "text"}
_DOCUMENT_PREFIXES = frozenset((_DOCUMENTS, _RERANKER_INPUT, _RERANKER_OUTPUT))
# prefix (with its dot), item index, item field (OpenInference's `document.` / `message.` level dropped)
_FLATTENED = re.compile(
    r"((?:retrieval\.documents|reranker\.(?:input|output)_documents|llm\.(?:input|output)_messages"
    r"|gen_ai\.(?:prompt|completion))\.)([0-9]+)\.(?:document\.|message\.)?(.+)",
    re.DOTALL,
)


def _normalise(attributes: dict[str, Any]) -> dict[str, Any]:
    """Fold the flattened OpenInference / OpenLLMetry keys of a span; map Traceloop kinds (in place)."""
    if any(map(str.startswith, attributes, repeat(_FOLD_PREFIXES))):
        _fold(attributes)
    if (_TRACELOOP_KIND in attributes or _TRACELOOP_REQUEST_TYPE in attributes) and sc.KIND not in attributes:
        kind = _TRACELOOP_TO_KIND.get(str(attributes.get(_TRACELOOP_KIND)))
        if kind is None and sc.OPENINFERENCE_KIND not in attributes and sc.OPERATION not in attributes:
            kind = _REQUEST_TYPE_TO_KIND.get(str(attributes.get(_TRACELOOP_REQUEST_TYPE)))
        if kind is not None:
            attributes[sc.KIND] = kind
    return attributes


def _fold(attributes: dict[str, Any]) -> None:
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for key in [k for k in attributes if k.startswith(_FOLD_PREFIXES)]:
        match = _FLATTENED.fullmatch(key)
        if match is None:
            continue  # not a flattened list item (e.g. `gen_ai.prompt.template`): leave it alone
        prefix, index, rest = match.groups()
        if prefix in _DOCUMENT_PREFIXES:
            rest = _DOCUMENT_FIELDS.get(rest, rest)
        groups.setdefault(prefix, {}).setdefault(int(index), {})[rest] = attributes.pop(key)

    if _RERANKER_OUTPUT in groups and _DOCUMENTS not in groups and sc.RETRIEVAL_DOCUMENTS not in attributes:
        groups[_DOCUMENTS] = groups.pop(_RERANKER_OUTPUT)  # a reranker's context is what it kept
    for prefix, target in (
        (_DOCUMENTS, sc.RETRIEVAL_DOCUMENTS),
        (_RERANKER_OUTPUT, "reranker.output_documents"),
        (_RERANKER_INPUT, "reranker.input_documents"),
    ):
        if prefix in groups and target not in attributes:
            attributes[target] = _json_text([_document(d) for d in _items(groups[prefix])])
    for target, source, preferred in (
        (_INPUT_MESSAGES, (_OI_INPUT_MESSAGES, _TL_PROMPT), sc.INPUT_VALUE),
        (_OUTPUT_MESSAGES, (_OI_OUTPUT_MESSAGES, _TL_COMPLETION), sc.OUTPUT_VALUE),
    ):
        found = [groups[prefix] for prefix in source if prefix in groups]
        if found and target not in attributes and preferred not in attributes:
            # `input.value` / `output.value` already carry the content: the flattened copy is dropped
            attributes[target] = _json_text([_message(m) for m in _items(found[0])])


def _items(indexed: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [_unflatten(indexed[i]) for i in sorted(indexed)]


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.0.b": 1, "c": 2} -> {"a": [{"b": 1}], "c": 2} (numeric parts become list positions)."""
    if "." not in "".join(flat):
        return flat
    root: dict[str, Any] = {}
    for key, value in sorted(flat.items(), key=lambda item: item[0].count(".")):  # shallow keys first
        node = root
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # `a` holds a value and `a.b` another: keep `b` flat
                parts = [*parts[:depth], ".".join(parts[depth:])]
                break
            node = child
        node[parts[-1]] = value
    unflattened: dict[str, Any] = _lists(root)
    return unflattened


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdecimal() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _document(document: dict[str, Any]) -> dict[str, Any]:
    """A document as tracehouse writes them: text, id, score, metadata (parsed when it is JSON) first."""
    out: dict[str, Any] = {key: document[key] for key in ("text", "id", "score", "metadata") if key in document}
    metadata = out.get("metadata")
    if isinstance(metadata, str) and metadata.startswith("{"):
        try:
            out["metadata"] = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            pass
    for key, value in document.items():
        out.setdefault(key, value)
    return out


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message with role and content first; OpenInference multi-part `contents` give the text."""
    out: dict[str, Any] = {"role": message.get("role", ""), "content": message.get("content")}
    if out["content"] is None:
        parts = message.get("contents")
        texts = [
            p["message_content"].get("text")
            for p in parts or ()
            if isinstance(p, dict) and isinstance(p.get("message_content"), dict)
        ]
        texts = [t for t in texts if isinstance(t, str)]
        out["content"] = "\n".join(texts) if texts else ""
    for key, value in message.items():
        if key not in out:
            out[key] = value
    return out


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=repr).decode("utf-8")
