"""Decode OTLP `ExportMetricsServiceRequest`s (protobuf or JSON) into `otel_metrics_*` records.

Gauges, sums and histograms become one record per data point, in the OTel Collector ClickHouse
exporter's columns (`collector/store/rows/otel.py` writes them). Exponential histograms and
summaries are refused point by point, named in `partial_success`, so a sender knows what was not
kept. GenAI client metrics (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`) are
histograms: they land in `otel_metrics_histogram` beside the spans, for SQL.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from tracehouse.collector.otlp.common import _FUTURE_SLACK_NS, _MAX_TIME_NS, DecodedSpans
from tracehouse.collector.otlp.signals import attribute_map, bad_time, hex_id, project_of, read_request, refuse

_REFUSED_KINDS = {"exponential_histogram": "exponential histograms", "summary": "summaries"}


def _request_class() -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    return ExportMetricsServiceRequest()


def decode_metrics(
    body: bytes, content_type: str, content_encoding: Optional[str], default_project: str,
    max_bytes: int = 64 * 1024 * 1024,
) -> DecodedSpans:  # fmt: skip
    """An OTLP/HTTP metrics body as `otel_metric` records; OtlpError for a body refused as a whole."""
    request = read_request(body, content_type, content_encoding, max_bytes, _request_class)
    return metric_records(request, default_project)


def metric_records(request: Any, default_project: str) -> DecodedSpans:
    """An ExportMetricsServiceRequest message as `otel_metric` records (one per data point)."""
    out = DecodedSpans()
    max_ns = min(time.time_ns() + _FUTURE_SLACK_NS, _MAX_TIME_NS)
    for resource_metrics in request.resource_metrics:
        resource = attribute_map(resource_metrics.resource.attributes)
        head = {
            "type": "otel_metric", "project": project_of(resource, default_project),
            "ServiceName": resource.get("service.name", ""), "ResourceAttributes": resource,
            "ResourceSchemaUrl": resource_metrics.schema_url,
        }  # fmt: skip
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_head = {**head, "ScopeName": scope.name, "ScopeVersion": scope.version,
                          "ScopeAttributes": attribute_map(scope.attributes),
                          "ScopeDroppedAttrCount": scope.dropped_attributes_count,
                          "ScopeSchemaUrl": scope_metrics.schema_url}  # fmt: skip
            for metric in scope_metrics.metrics:
                _metric(metric, scope_head, max_ns, out)
    return out


def _metric(metric: Any, head: dict[str, Any], max_ns: int, out: DecodedSpans) -> None:
    kind = metric.WhichOneof("data")
    what = f"metric {metric.name!r}"
    if kind is None:
        return
    data = getattr(metric, kind)
    if kind in _REFUSED_KINDS:
        for _ in data.data_points:
            refuse(out, what, f"{_REFUSED_KINDS[kind]} are not stored (gauges, sums and histograms are)")
        return
    common = {**head, "table": kind, "MetricName": metric.name, "MetricDescription": metric.description,
              "MetricUnit": metric.unit}  # fmt: skip
    if kind == "sum":
        common["AggregationTemporality"] = int(data.aggregation_temporality)
        common["IsMonotonic"] = bool(data.is_monotonic)
    elif kind == "histogram":
        common["AggregationTemporality"] = int(data.aggregation_temporality)
    for point in data.data_points:
        reason = bad_time(point.time_unix_nano, max_ns)
        try:
            exemplars = [_exemplar(e) for e in point.exemplars]
        except ValueError as error:
            reason = str(error)
        if reason:
            refuse(out, what, reason)
            continue
        record = {**common, "Attributes": attribute_map(point.attributes), "StartTimeUnix": point.start_time_unix_nano,
                  "TimeUnix": point.time_unix_nano, "Flags": point.flags, "Exemplars": exemplars}  # fmt: skip
        if kind == "histogram":
            record.update(
                Count=point.count,
                Sum=point.sum,
                BucketCounts=list(point.bucket_counts),
                ExplicitBounds=list(point.explicit_bounds),
                Min=point.min,
                Max=point.max,
            )
        else:
            record["Value"] = _number(point)
        out.records.append(record)


def _number(point: Any) -> float:
    which = point.WhichOneof("value")
    return float(getattr(point, which)) if which else 0.0


def _exemplar(exemplar: Any) -> dict[str, Any]:
    return {
        "FilteredAttributes": attribute_map(exemplar.filtered_attributes), "TimeUnix": exemplar.time_unix_nano,
        "Value": _number(exemplar), "SpanId": hex_id(exemplar.span_id, 8, "exemplar span_id"),
        "TraceId": hex_id(exemplar.trace_id, 16, "exemplar trace_id"),
    }  # fmt: skip


__all__ = ["decode_metrics", "metric_records"]
