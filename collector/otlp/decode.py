"""Decode OTLP/HTTP trace requests (protobuf or JSON) into spool-shaped span records.

The collector's `POST /v1/traces` hands the raw body here and gets back the records it will
store (the same dict shape as `exporters._records.record_to_dict`), plus the spans it refused one
by one (for OTLP `partial_success`). A payload that cannot be read at all raises `OtlpError`
carrying the HTTP status to answer with.

This module is the entry point: content type, content encoding and size limits, then one of

- `collector/otlp/protobuf.py`: the protobuf decoder and its private wire-compatible schema;
- `collector/otlp/json.py`: the OTLP JSON decoder;

which share `collector/otlp/common.py` (errors, `DecodedSpans`, per-span checks) and pass every span's
attributes through `collector/otlp/conventions.py`, which brings OpenInference and OpenLLMetry (Traceloop)
attributes to the OpenTelemetry GenAI shape tracehouse stores.

Attribute values: string, int, float, bool, lists of them; an OTLP kvlist becomes a dict and
bytes become base64 text. Malformed values reject their span, not the request.

The records of one resource share one `resource` dict: treat records as read-only.
"""

from __future__ import annotations

import time
import zlib
from typing import Optional

# MAX_ERRORS and _LITE_SCHEMA are re-exported: tests read them from this module
from tracehouse.collector.otlp.common import MAX_ERRORS as MAX_ERRORS
from tracehouse.collector.otlp.common import DecodedSpans, OtlpError
from tracehouse.collector.otlp.json import _decode_json
from tracehouse.collector.otlp.protobuf import _LITE_SCHEMA as _LITE_SCHEMA
from tracehouse.collector.otlp.protobuf import _decode_protobuf

__all__ = ["DecodedSpans", "OtlpError", "decode_traces"]

_PROTOBUF_TYPES = frozenset(("application/x-protobuf", "application/protobuf"))
_JSON_TYPES = frozenset(("application/json",))


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
