"""Tables of OTLP logs and metrics, in the OpenTelemetry Collector ClickHouse exporter's shapes.

`otel_logs`, `otel_metrics_gauge`, `otel_metrics_sum` and `otel_metrics_histogram` have the
exporter's columns (so its users' queries and Grafana's ClickHouse plugin in OTel mode read them)
plus our `project` column, which leads the sort key as in every other table. The exporter's
`TimestampTime`/day partitioning becomes a month partition: a resent backlog of old data never
touches more partitions than one insert may.
"""

from __future__ import annotations

# as in migrations.py: a resent batch (same insert_deduplication_token) is dropped, parts are fsync'd
_DEDUP = "non_replicated_deduplication_window = 10000, fsync_after_insert = 1, fsync_part_directory = 1"
_MAP = "Map(LowCardinality(String), String) CODEC(ZSTD(1))"
_METRIC_HEAD = f"""
    project LowCardinality(String),
    ResourceAttributes {_MAP},
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes {_MAP},
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes {_MAP},
    StartTimeUnix DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),"""
_EXEMPLARS = """
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9, 'UTC'),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),"""
_METRIC_TAIL = f"""
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toYYYYMM(TimeUnix)
ORDER BY (project, ServiceName, MetricName, toStartOfHour(TimeUnix), TimeUnix)
SETTINGS {_DEDUP}
"""


def _metric_table(name: str, columns: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {{db}}.{name} ({_METRIC_HEAD}{columns}{_EXEMPLARS}{_METRIC_TAIL}"


OTEL_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "otel_0001_logs",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.otel_logs (
                project LowCardinality(String),
                Timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
                TimestampTime DateTime('UTC') DEFAULT toDateTime(Timestamp),
                TraceId String CODEC(ZSTD(1)),
                SpanId String CODEC(ZSTD(1)),
                TraceFlags UInt8,
                SeverityText LowCardinality(String) CODEC(ZSTD(1)),
                SeverityNumber UInt8,
                ServiceName LowCardinality(String) CODEC(ZSTD(1)),
                Body String CODEC(ZSTD(3)),
                ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
                ResourceAttributes {_MAP},
                ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
                ScopeName String CODEC(ZSTD(1)),
                ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
                ScopeAttributes {_MAP},
                LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
                EventName LowCardinality(String) CODEC(ZSTD(1)),
                INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(TimestampTime)
            ORDER BY (project, ServiceName, TimestampTime, Timestamp)
            SETTINGS {_DEDUP}
            """,
        ],
    ),
    (
        "otel_0002_metrics",
        [
            _metric_table(
                "otel_metrics_gauge", "\n    Value Float64 CODEC(ZSTD(1)),\n    Flags UInt32 CODEC(ZSTD(1)),"
            ),
            _metric_table(
                "otel_metrics_sum",
                "\n    Value Float64 CODEC(ZSTD(1)),\n    Flags UInt32 CODEC(ZSTD(1)),"
                "\n    AggregationTemporality Int32 CODEC(ZSTD(1)),\n    IsMonotonic Bool CODEC(Delta, ZSTD(1)),",
            ),
            _metric_table(
                "otel_metrics_histogram",
                "\n    Count UInt64 CODEC(Delta, ZSTD(1)),\n    Sum Float64 CODEC(ZSTD(1)),"
                "\n    BucketCounts Array(UInt64) CODEC(ZSTD(1)),\n    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),"
                "\n    Flags UInt32 CODEC(ZSTD(1)),\n    Min Float64 CODEC(ZSTD(1)),\n    Max Float64 CODEC(ZSTD(1)),"
                "\n    AggregationTemporality Int32 CODEC(ZSTD(1)),",
            ),
        ],
    ),
]

__all__ = ["OTEL_MIGRATIONS"]
