"""Reports: saved pages of markdown notes and panels (`collector/ui/reports_store.py` reads and writes them).

`reports` holds one row per saved version of a report (ReplacingMergeTree on `version`), so an edit
is a new row and `FINAL` reads the latest; a delete is a version with `deleted = 1`. A materialized
view copies every version into `report_versions`, which nothing collapses: the history stays
readable after the merges have dropped the old rows of `reports`.
"""

from __future__ import annotations

_COLUMNS = """
    project LowCardinality(String),
    report_id String,
    title String,
    description String,
    blocks String CODEC(ZSTD(3)),
    author String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted UInt8,
    version UInt64"""

REPORTS_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "reports_0001_reports",
        [
            f"CREATE TABLE IF NOT EXISTS {{db}}.reports ({_COLUMNS}\n) ENGINE = ReplacingMergeTree(version) "
            "ORDER BY (project, report_id)",
            f"CREATE TABLE IF NOT EXISTS {{db}}.report_versions ({_COLUMNS}\n) ENGINE = ReplacingMergeTree "
            "ORDER BY (project, report_id, version)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.report_versions_mv TO {db}.report_versions AS "
            "SELECT * FROM {db}.reports",
        ],
    ),
]

__all__ = ["REPORTS_MIGRATIONS"]
