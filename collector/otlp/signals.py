"""What the OTLP logs and metrics decoders share: reading a request (protobuf or JSON) into
opentelemetry-proto's message, and OTLP values in the OTel Collector ClickHouse exporter's shape.

Logs and metrics come in far smaller volumes than spans, so they are read with the official
message classes (the spans' private fast schema is not needed). OTLP JSON differs from protobuf's
generic JSON mapping in its ids (hex, not base64): they are turned into base64 before
`json_format.ParseDict` reads the request.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
from typing import Any, Callable, TypeVar

import orjson

from tracehouse.collector.otlp.common import _MIN_TIME_NS, DecodedSpans, OtlpError
from tracehouse.collector.otlp.decode import _JSON_TYPES, _PROTOBUF_TYPES, _decompress, _parse_content_type

M = TypeVar("M")
_ID_KEYS = frozenset(("traceId", "spanId", "trace_id", "span_id"))


def read_request(
    body: bytes, content_type: str, content_encoding: Any, max_bytes: int, message_class: Callable[[], M]
) -> M:
    """`body` (protobuf or OTLP JSON, maybe gzip'd) as a `message_class` message; OtlpError when unreadable."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    media_type, charset = _parse_content_type(content_type)
    if media_type not in _PROTOBUF_TYPES and media_type not in _JSON_TYPES:
        raise OtlpError(
            415, f"unsupported content type {content_type!r}: use application/x-protobuf or application/json"
        )
    data = _decompress(bytes(body), content_encoding, max_bytes)
    message = message_class()
    if media_type in _PROTOBUF_TYPES:
        try:
            message.ParseFromString(data)  # type: ignore[attr-defined]
        except (DecodeError, RuntimeError, ValueError) as error:
            raise OtlpError(400, f"malformed protobuf: {error}")
        return message
    try:
        text = data.decode(charset or "utf-8")
    except (LookupError, UnicodeError) as error:
        raise OtlpError(400 if isinstance(error, UnicodeError) else 415, f"body is not readable as {charset}: {error}")
    if not text.strip():
        return message
    try:
        document = orjson.loads(text.lstrip(codecs.BOM_UTF8.decode()))
        json_format.ParseDict(_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (orjson.JSONDecodeError, json_format.ParseError, TypeError, ValueError, RecursionError) as error:
        raise OtlpError(400, f"malformed OTLP JSON: {str(error)[:500]}")
    return message


def _ids_to_base64(value: Any) -> Any:
    """OTLP JSON's hex trace and span ids as base64 (what protobuf's JSON mapping reads)."""
    if isinstance(value, dict):
        return {k: _hex_id(v) if k in _ID_KEYS else _ids_to_base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ids_to_base64(v) for v in value]
    return value


def _hex_id(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        try:  # already base64 (protobuf's generic mapping)
            base64.b64decode(value, validate=True)
            return value
        except binascii.Error:
            raise OtlpError(400, f"malformed OTLP JSON: id {value[:40]!r} is neither hex nor base64")


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as a Python value (bytes as base64 text; unset as None)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def as_text(value: Any) -> str:
    """A Python value as the exporter writes it in a String column: text as it is, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def attribute_map(key_values: Any) -> dict[str, str]:
    """Repeated KeyValue as the exporter's Map(String, String)."""
    return {kv.key: as_text(any_value(kv.value)) for kv in key_values}


def project_of(resource: dict[str, str], default_project: str) -> str:
    """A resource's `tracehouse.project`, else the default."""
    return resource.get("tracehouse.project") or default_project


def hex_id(raw: bytes, size: int, what: str) -> str:
    """A trace (16) or span (8) id as lowercase hex, "" when absent; ValueError when malformed."""
    if not raw or raw == bytes(size):
        return ""
    if len(raw) != size:
        raise ValueError(f"{what} is {len(raw)} bytes, not {size}")
    return raw.hex()


def refuse(out: DecodedSpans, what: str, reason: str) -> None:
    """Count one refused log record or data point, keeping a short reason (at most MAX_ERRORS)."""
    from tracehouse.collector.otlp.common import MAX_ERRORS

    out.rejected += 1
    if len(out.errors) < MAX_ERRORS:
        out.errors.append(f"{what[:120]}: {reason}")


def bad_time(time_ns: int, max_ns: int) -> str:
    """Why a timestamp is refused ("" when fine)."""
    if time_ns < _MIN_TIME_NS:
        return f"time {time_ns} ns is missing or before the year 2000"
    if time_ns > max_ns:
        return f"time {time_ns} ns is more than a day in the future"
    return ""


__all__ = ["any_value", "as_text", "attribute_map", "bad_time", "hex_id", "project_of", "read_request", "refuse"]
