"""Decode OTLP `ExportLogsServiceRequest`s (protobuf or JSON) into `otel_logs` records.

Every log record is kept (`collector/store/rows/otel.py` writes them); GenAI events among them
(`gen_ai.user.message`, `gen_ai.choice`, `gen_ai.client.inference.operation.details`, ...) are
folded into their span's input and output when the trace is read (`collector/otlp/genai_events.py`),
so it does not matter whether they arrive before or after the span.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from tracehouse.collector.otlp.common import _FUTURE_SLACK_NS, _MAX_TIME_NS, DecodedSpans
from tracehouse.collector.otlp.signals import (
    any_value,
    as_text,
    attribute_map,
    bad_time,
    hex_id,
    project_of,
    read_request,
    refuse,
)


def _request_class() -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    return ExportLogsServiceRequest()


def decode_logs(
    body: bytes, content_type: str, content_encoding: Optional[str], default_project: str,
    max_bytes: int = 64 * 1024 * 1024,
) -> DecodedSpans:  # fmt: skip
    """An OTLP/HTTP logs body as `otel_log` records; OtlpError for a body refused as a whole."""
    request = read_request(body, content_type, content_encoding, max_bytes, _request_class)
    return log_records(request, default_project)


def log_records(request: Any, default_project: str) -> DecodedSpans:
    """An ExportLogsServiceRequest message as `otel_log` records (bad records refused one by one)."""
    out = DecodedSpans()
    now_ns = time.time_ns()
    max_ns = min(now_ns + _FUTURE_SLACK_NS, _MAX_TIME_NS)
    for resource_logs in request.resource_logs:
        resource = attribute_map(resource_logs.resource.attributes)
        head = {
            "type": "otel_log", "project": project_of(resource, default_project),
            "ServiceName": resource.get("service.name", ""), "ResourceAttributes": resource,
            "ResourceSchemaUrl": resource_logs.schema_url,
        }  # fmt: skip
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_head = {**head, "ScopeName": scope.name, "ScopeVersion": scope.version,
                          "ScopeAttributes": attribute_map(scope.attributes),
                          "ScopeSchemaUrl": scope_logs.schema_url}  # fmt: skip
            for log in scope_logs.log_records:
                record = _log_record(log, scope_head, now_ns, max_ns, out)
                if record is not None:
                    out.records.append(record)
    return out


def _log_record(
    log: Any, head: dict[str, Any], now_ns: int, max_ns: int, out: DecodedSpans
) -> Optional[dict[str, Any]]:
    attributes = attribute_map(log.attributes)
    event_name = getattr(log, "event_name", "") or attributes.get("event.name", "")
    what = f"log record {event_name or log.severity_text or '(unnamed)'!r}"
    timestamp = log.time_unix_nano or log.observed_time_unix_nano or now_ns
    reason = bad_time(timestamp, max_ns)
    try:
        trace_id, span_id = hex_id(log.trace_id, 16, "trace_id"), hex_id(log.span_id, 8, "span_id")
    except ValueError as error:
        reason = str(error)
    if reason:
        refuse(out, what, reason)
        return None
    return {
        **head, "Timestamp": timestamp, "TraceId": trace_id, "SpanId": span_id, "TraceFlags": log.flags & 0xFF,
        "SeverityText": log.severity_text, "SeverityNumber": min(max(int(log.severity_number), 0), 255),
        "Body": as_text(any_value(log.body)), "LogAttributes": attributes, "EventName": event_name,
    }  # fmt: skip


__all__ = ["decode_logs", "log_records"]
