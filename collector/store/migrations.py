"""The store's schema as named migrations, applied in order and recorded in `collector/store/migrations.py`.

Never edit a released migration: add a new one. `{db}` is the database name.
"""

from __future__ import annotations

from tracehouse.collector.store.migrations_grafana import GRAFANA_MIGRATIONS
from tracehouse.collector.store.migrations_otel import OTEL_MIGRATIONS
from tracehouse.collector.store.migrations_reports import REPORTS_MIGRATIONS
from tracehouse.collector.store.usage import MIGRATIONS as _usage_migrations
from tracehouse.collector.store.usage_roots import MIGRATIONS as _root_migrations
from tracehouse.collector.store.usage_siblings import MIGRATIONS as _sibling_migrations

# Resent batches carry the same insert_deduplication_token and are dropped; parts are fsync'd so a
# batch the store acknowledged survives a crash (the spool is trimmed only after that).
_DEDUP = "non_replicated_deduplication_window = 10000, fsync_after_insert = 1, fsync_part_directory = 1"

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_spans",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.spans (
                project LowCardinality(String),
                trace_id String,
                span_id String,
                parent_span_id String,
                name LowCardinality(String),
                kind LowCardinality(String),
                span_kind LowCardinality(String),
                service_name LowCardinality(String),
                scope_name LowCardinality(String),
                start_time DateTime64(9, 'UTC'),
                end_time DateTime64(9, 'UTC'),
                duration_ms Float64,
                status LowCardinality(String),
                status_message String,
                input String CODEC(ZSTD(3)),
                input_size UInt64,
                input_preview String,
                output String CODEC(ZSTD(3)),
                output_size UInt64,
                output_preview String,
                context String CODEC(ZSTD(3)),
                model LowCardinality(String),
                provider LowCardinality(String),
                input_tokens Nullable(UInt64),
                output_tokens Nullable(UInt64),
                total_tokens Nullable(UInt64),
                cost_usd Nullable(Float64),
                time_to_first_token_ms Nullable(Float64),
                attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
                resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
                event_times Array(DateTime64(9, 'UTC')),
                event_names Array(LowCardinality(String)),
                event_attributes Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
                run_id String,
                session_id String,
                user_id String,
                INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
                INDEX idx_run_id run_id TYPE bloom_filter(0.01) GRANULARITY 1
            ) ENGINE = MergeTree
            PARTITION BY toDate(start_time)
            ORDER BY (project, toStartOfHour(start_time), name, start_time)
            SETTINGS {_DEDUP}
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.trace_times (
                project LowCardinality(String),
                trace_id String,
                start_time SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
                end_time SimpleAggregateFunction(max, DateTime64(9, 'UTC'))
            ) ENGINE = AggregatingMergeTree
            ORDER BY (project, trace_id)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trace_times_mv TO {db}.trace_times AS
            SELECT project, trace_id, min(start_time) AS start_time, max(end_time) AS end_time
            FROM {db}.spans GROUP BY project, trace_id
            """,
        ],
    ),
    (
        "0002_otel_traces_view",
        [
            """
            CREATE VIEW IF NOT EXISTS {db}.otel_traces AS
            SELECT
                start_time AS Timestamp,
                trace_id AS TraceId,
                span_id AS SpanId,
                parent_span_id AS ParentSpanId,
                '' AS TraceState,
                name AS SpanName,
                multiIf(span_kind = 'SERVER', 'Server', span_kind = 'CLIENT', 'Client', span_kind = 'PRODUCER', 'Producer',
                        span_kind = 'CONSUMER', 'Consumer', 'Internal') AS SpanKind,
                service_name AS ServiceName,
                resource_attributes AS ResourceAttributes,
                scope_name AS ScopeName,
                '' AS ScopeVersion,
                mapUpdate(attributes, map('tracehouse.project', toString(project), 'tracehouse.span.kind', toString(kind),
                                          'gen_ai.request.model', toString(model))) AS SpanAttributes,
                toUInt64(greatest(0, dateDiff('nanosecond', start_time, end_time))) AS Duration,
                if(status = 'error', 'Error', 'Ok') AS StatusCode,
                status_message AS StatusMessage,
                event_times AS `Events.Timestamp`,
                event_names AS `Events.Name`,
                event_attributes AS `Events.Attributes`,
                CAST([], 'Array(String)') AS `Links.TraceId`,
                CAST([], 'Array(String)') AS `Links.SpanId`,
                CAST([], 'Array(String)') AS `Links.TraceState`,
                CAST([], 'Array(Map(LowCardinality(String), String))') AS `Links.Attributes`
            FROM {db}.spans
            """,
        ],
    ),
    (
        "0003_runs_metrics_scores",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.runs (
                project LowCardinality(String),
                run_id String,
                name String,
                state LowCardinality(String),
                config String CODEC(ZSTD(3)),
                summary String CODEC(ZSTD(3)),
                tags Array(String),
                `group` String,
                job_type LowCardinality(String),
                notes String,
                sweep_id String,
                created_at DateTime64(6, 'UTC'),
                updated_at DateTime64(6, 'UTC'),
                heartbeat_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project, run_id)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.metrics (
                project LowCardinality(String),
                run_id String,
                step Int64,
                key LowCardinality(String),
                value Float64,
                timestamp DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, run_id, key, step)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.scores (
                project LowCardinality(String),
                score_id String,
                target_type LowCardinality(String),
                trace_id String,
                span_id String,
                run_id String,
                name LowCardinality(String),
                value Float64,
                string_value String,
                comment String,
                source LowCardinality(String),
                created_at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, name, score_id)
            SETTINGS {_DEDUP}
            """,
        ],
    ),
    (
        "0004_api_keys",
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.api_keys (
                key_id String,
                name String,
                project String,
                admin Bool,
                secret_hash String,
                created_at DateTime64(3, 'UTC'),
                revoked Bool,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY key_id
            """,
        ],
    ),
    (
        "0005_run_values_files_artifacts",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.run_values (
                project LowCardinality(String),
                run_id String,
                step Int64,
                key LowCardinality(String),
                type LowCardinality(String),
                value String CODEC(ZSTD(3)),
                timestamp DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, run_id, key, step)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.run_tables (
                project LowCardinality(String),
                run_id String,
                key LowCardinality(String),
                step Int64,
                row_index UInt32,
                row String CODEC(ZSTD(3))
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, run_id, key, step, row_index)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.run_files (
                project LowCardinality(String),
                run_id String,
                path String,
                blob String,
                size UInt64,
                updated_at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (project, run_id, path)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.artifacts (
                project LowCardinality(String),
                name String,
                version UInt32,
                type LowCardinality(String),
                digest String,
                description String,
                metadata String CODEC(ZSTD(3)),
                size UInt64,
                file_count UInt64,
                run_id String,
                created_at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, name, version)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.artifact_files (
                project LowCardinality(String),
                artifact_digest String,
                path String,
                digest String,
                size UInt64,
                ref String
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, artifact_digest, path)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.artifact_aliases (
                project LowCardinality(String),
                name String,
                alias String,
                version UInt32,
                updated_at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (project, name, alias)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.artifact_usage (
                project LowCardinality(String),
                name String,
                version UInt32,
                direction LowCardinality(String),
                run_id String,
                at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, name, version, direction, run_id)
            SETTINGS {_DEDUP}
            """,
        ],
    ),
    (
        "0006_sweeps",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.sweeps (
                project LowCardinality(String),
                sweep_id String,
                name String,
                method LowCardinality(String),
                config String CODEC(ZSTD(3)),
                state LowCardinality(String),
                created_at DateTime64(6, 'UTC'),
                updated_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project, sweep_id)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.sweep_trials (
                project LowCardinality(String),
                sweep_id String,
                run_id String,
                trial_index UInt32,
                params String CODEC(ZSTD(3)),
                internal String,
                agent_id String,
                state LowCardinality(String),
                claimed_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project, sweep_id, run_id)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.sweep_agents (
                project LowCardinality(String),
                sweep_id String,
                agent_id String,
                host String,
                pid UInt32,
                started_at DateTime64(6, 'UTC'),
                heartbeat_at DateTime64(6, 'UTC'),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (project, sweep_id, agent_id)
            SETTINGS {_DEDUP}
            """,
        ],
    ),
    (
        "0007_datasets_and_example_scores",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.datasets (
                project LowCardinality(String),
                name String,
                version UInt32,
                digest String,
                rows UInt64,
                columns Array(String),
                created_at DateTime64(6, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, name, version)
            SETTINGS {_DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.dataset_rows (
                project LowCardinality(String),
                digest String,
                row_index UInt32,
                row String CODEC(ZSTD(3))
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, digest, row_index)
            SETTINGS {_DEDUP}
            """,
            "ALTER TABLE {db}.scores ADD COLUMN IF NOT EXISTS example String",
            "ALTER TABLE {db}.scores ADD COLUMN IF NOT EXISTS error String",
        ],
    ),
    (
        "0008_rejected",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {{db}}.rejected (
                at DateTime64(6, 'UTC') DEFAULT now64(6),
                project LowCardinality(String),
                table_name LowCardinality(String),
                reason String,
                row String CODEC(ZSTD(3)),
                batch String
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(at)
            ORDER BY (project, at)
            SETTINGS {_DEDUP}
            """,
        ],
    ),
    (
        # Each column stream of a part being written holds a compression buffer of this size; with the
        # spans table's ~60 streams, the default 1 MiB made one 20k-span insert peak at ~260 MB, 128 KiB
        # at ~100 MB (and inserts run faster); reads barely notice.
        "0009_spans_compress_blocks",
        ["ALTER TABLE {db}.spans MODIFY SETTING max_compress_block_size = 131072"],
    ),
    (
        "0010_runs_entity",  # W&B's entity: the run's namespace (`entity/project/run_id`)
        ["ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS entity LowCardinality(String) DEFAULT '' AFTER notes"],
    ),
    (
        # where a run's process lives: a running run whose process is known dead on the reading host is
        # crashed at once, not a heartbeat timeout later
        "0011_runs_host_pid",
        [
            "ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS host LowCardinality(String) DEFAULT '' AFTER entity",
            "ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS pid UInt32 DEFAULT 0 AFTER host",
        ],
    ),
]

MIGRATIONS += _usage_migrations  # the usage-once rule (collector/store/usage.py)
MIGRATIONS += _sibling_migrations  # ... for sibling spans (collector/store/usage_siblings.py)
MIGRATIONS += OTEL_MIGRATIONS  # OTLP logs and metrics (collector/store/migrations_otel.py)
MIGRATIONS += GRAFANA_MIGRATIONS  # Grafana OTel mode: otel_traces, otel_traces_trace_id_ts (migrations_grafana.py)
MIGRATIONS += REPORTS_MIGRATIONS  # saved report pages (collector/store/migrations_reports.py)
MIGRATIONS += [
    (
        # A part below this size is written compact (one file, not one per column stream): a 20k-span insert
        # measured 40% faster and ~10% smaller at its peak than as a wide part. Merges make wide parts of what
        # grows past it, which is what reads over many rows want.
        "0015_spans_compact_inserts",
        ["ALTER TABLE {db}.spans MODIFY SETTING min_bytes_for_wide_part = 134217728"],
    ),
]
MIGRATIONS += _root_migrations  # ... for root spans of two traces (collector/store/usage_roots.py)
