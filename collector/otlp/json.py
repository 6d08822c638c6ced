"""Decode an OTLP/HTTP JSON `ExportTraceServiceRequest` into span records.

Accepts the OTLP JSON encoding (lowerCamelCase fields, hex ids, enums as numbers or names, 64-bit
integers as strings or numbers) and tolerates protobuf's generic JSON mapping (snake_case fields,
base64 ids). A body in another charset than UTF-8 is transcoded first.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
from typing import Any, Callable, Optional

import orjson

from tracehouse.collector.otlp.common import (
    _FUTURE_SLACK_NS,
    _MAX_TIME_NS,
    _SPAN_KIND_NAMES,
    _SPAN_KINDS,
    _STATUS_NAMES,
    _STATUSES,
    DecodedSpans,
    OtlpError,
    _bad_times,
    _project,
    _SpanError,
)
from tracehouse.collector.otlp.conventions import normalise_span

_UTF8_CHARSETS = frozenset(("utf-8", "utf8", "us-ascii", "ascii"))


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
            scope = _json_object(scope_spans, "scope", "scope", "scopeSpans")
            scope_name = _field(scope, "name", "name") or ""
            scope_version = _field(scope, "version", "version") or ""
            if not isinstance(scope_name, str) or not isinstance(scope_version, str):
                raise OtlpError(400, "malformed OTLP JSON: scope name and version must be strings")
            for span in _json_list(scope_spans, "spans", "spans", "scopeSpans"):
                if not isinstance(span, dict):
                    raise OtlpError(400, "malformed OTLP JSON: spans items must be objects")
                try:
                    record = _json_span(span, project, scope_name, resource, max_ns)
                    _json_span_context(record, span, scope_version)
                    records.append(normalise_span(record))
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
        "attributes": _json_attributes(span.get("attributes")),  # normalise_span maps them
        "events": events,
        "span_kind": _SPAN_KINDS[kind] if 0 <= kind <= 5 else "INTERNAL",
        "scope": scope,
        "resource": resource,
    }


def _json_span_context(record: dict[str, Any], span: dict[str, Any], scope_version: str) -> None:
    """The record's scope version, trace state and links (each only when set, as in `record_to_dict`)."""
    if scope_version:
        record["scope_version"] = scope_version
    trace_state = _json_trace_state(_field(span, "traceState", "trace_state"), "traceState")
    if trace_state:
        record["trace_state"] = trace_state
    raw_links = _field(span, "links", "links") or []
    if not isinstance(raw_links, list):
        raise _SpanError("links must be an array")
    links = []
    for link in raw_links:
        if not isinstance(link, dict):
            raise _SpanError("links must be objects")
        links.append(
            {
                "trace_id": _json_id(_field(link, "traceId", "trace_id"), 16, "link trace_id", allow_empty=True),
                "span_id": _json_id(_field(link, "spanId", "span_id"), 8, "link span_id", allow_empty=True),
                "trace_state": _json_trace_state(_field(link, "traceState", "trace_state"), "link traceState"),
                "attributes": _json_attributes(link.get("attributes")),
            }
        )
    if links:
        record["links"] = links


def _json_trace_state(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _SpanError(f"{what} must be a string")
    return value


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
