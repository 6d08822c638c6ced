"""OTLP log and metric records to the `otel_logs` and `otel_metrics_*` tables.

The OTLP decoders (`collector/otlp/logs.py`, `collector/otlp/metrics.py`) make records whose keys
are already the tables' column names: `{"type": "otel_log", "project", "Timestamp", "TraceId", ...}`
and `{"type": "otel_metric", "table": "gauge" | "sum" | "histogram", "project", "MetricName", ...}`.
They travel through the collector's write-ahead log like spans and are inserted here, one block per
table (deduplicated by the range's token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

OTEL_RECORD_TYPES = ("otel_log", "otel_metric")
LOG_COLUMNS = (
    "project", "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "LogAttributes", "EventName",
)  # fmt: skip
_METRIC_HEAD = (
    "project", "ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "MetricName", "MetricDescription", "MetricUnit",
    "Attributes", "StartTimeUnix", "TimeUnix",
)  # fmt: skip
_EXEMPLARS = ("FilteredAttributes", "TimeUnix", "Value", "SpanId", "TraceId")
METRIC_COLUMNS = {
    "gauge": (*_METRIC_HEAD, "Value", "Flags"),
    "sum": (*_METRIC_HEAD, "Value", "Flags", "AggregationTemporality", "IsMonotonic"),
    "histogram": (
        *_METRIC_HEAD, "Count", "Sum", "BucketCounts", "ExplicitBounds", "Flags", "Min", "Max",
        "AggregationTemporality",
    ),
}  # fmt: skip
METRIC_TABLES = {kind: f"otel_metrics_{kind}" for kind in METRIC_COLUMNS}
_DEFAULTS: dict[str, Any] = {"TraceFlags": 0, "SeverityNumber": 0, "ScopeDroppedAttrCount": 0, "Flags": 0,
                             "AggregationTemporality": 0, "IsMonotonic": False, "Count": 0}  # fmt: skip


def _default(name: str) -> Any:
    if name in _DEFAULTS:
        return _DEFAULTS[name]
    if name.endswith("Attributes"):
        return {}
    if name in ("BucketCounts", "ExplicitBounds"):
        return []
    if name in ("Timestamp", "StartTimeUnix", "TimeUnix", "Sum", "Min", "Max", "Value"):
        return 0
    return ""


def _columns(records: Iterable[dict[str, Any]], names: tuple[str, ...], exemplars: bool) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in names}
    if exemplars:
        columns.update({f"Exemplars.{name}": [] for name in _EXEMPLARS})
    for record in records:
        for name in names:
            value = record.get(name)
            columns[name].append(_default(name) if value is None else value)
        if exemplars:
            found = record.get("Exemplars") or []
            for name in _EXEMPLARS:
                columns[f"Exemplars.{name}"].append([e.get(name, _default(name)) for e in found])
    return columns


def write_otel_records(store: Store, records: list[dict[str, Any]], token: Optional[str]) -> tuple[int, list[str]]:
    """Insert log and metric records; (rows stored, one reason per refused row)."""
    from tracehouse.collector.store.isolate import store_isolating

    tables: list[tuple[str, dict[str, list[Any]]]] = []
    logs = [r for r in records if r.get("type") == "otel_log"]
    if logs:
        tables.append(("otel_logs", _columns(logs, LOG_COLUMNS, exemplars=False)))
    for kind, names in METRIC_COLUMNS.items():
        points = [r for r in records if r.get("type") == "otel_metric" and r.get("table") == kind]
        if points:
            tables.append((METRIC_TABLES[kind], _columns(points, names, exemplars=True)))
    refused: list[str] = []
    stored = 0
    for table, columns in tables:
        failed = store_isolating(store, table, columns, f"{token}/{table}" if token else None)
        stored += len(columns["project"]) - len(failed)
        refused.extend(f"{table} row: {reason}" for _, reason in failed)
    unknown = [r for r in records if r.get("type") == "otel_metric" and r.get("table") not in METRIC_COLUMNS]
    refused.extend(f"metric {str(r.get('MetricName'))[:100]!r}: unknown table {r.get('table')!r}" for r in unknown)
    return stored, refused


__all__ = ["LOG_COLUMNS", "METRIC_COLUMNS", "METRIC_TABLES", "OTEL_RECORD_TYPES", "write_otel_records"]
