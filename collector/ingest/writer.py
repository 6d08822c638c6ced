"""Records in, rows out: the one path from records to the store's tables.

`write_records` maps span records to `spans` and run records to theirs (the embedded reader, the
spool ingest of `tracehouse serve` and the HTTP endpoints all use it); `write_body` takes a JSON
batch as it is and lets the embedded store map it. The collector's queue in front of them is
`batch_writer.BatchWriter`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse.collector.ingest.spool import JsonBody
from tracehouse.collector.store.isolate import store_isolating
from tracehouse.collector.store.rows.runs import RUN_RECORD_TYPES
from tracehouse.collector.store.rows.spans import span_columns
from tracehouse.collector.store.store import BadRowsError
from tracehouse.collector.store.usage_roots import shadow_new_pairs
from tracehouse.collector.store.usage_siblings import has_calls, server_now

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")


@dataclass
class WriteResult:
    """What became of a batch of records."""

    rows: int = 0
    rejected: list[str] = field(default_factory=list)  # one reason per refused record
    unknown_types: int = 0
    # records a collector refused for good (over its body limit even alone): the spool keeps them
    # in quarantine/ for `tracehouse sync --quarantine`, and the rest of their range goes on
    set_aside: list[dict[str, Any]] = field(default_factory=list)


def map_records(records: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], WriteResult]:
    """Span records to `spans` columns; the result counts unknown record types and refused records."""
    spans = [r for r in records if r.get("type") == "span"]
    columns, rejected = span_columns(spans)
    return columns, WriteResult(
        rows=len(columns["span_id"]), rejected=rejected, unknown_types=len(records) - len(spans)
    )


def insert_columns(store: Store, columns: dict[str, list[Any]], token: Optional[str]) -> dict[str, str]:
    """Insert `spans` columns; return {span_id: reason} for rows the store refused (isolated by
    bisection and kept in the `rejected` table, see isolate.py)."""
    since = server_now(store) if has_calls(columns) else None
    refused = store_isolating(store, "spans", columns, token)
    if since is not None:
        shadow_new_pairs(store, since)
    return {columns["span_id"][index]: f"span {columns['name'][index]!r}: {reason}" for index, reason in refused}


def write_records(store: Store, records: list[dict[str, Any]], token: Optional[str]) -> WriteResult:
    """Insert span records and run records (metrics, state, values, files, artifacts), one batch per
    table (deduplicated by `token`).

    Refused span rows are isolated, not fatal; refused run values and records are reported.
    """
    runs = [r for r in records if r.get("type") in RUN_RECORD_TYPES]
    columns, result = map_records([r for r in records if r.get("type") not in RUN_RECORD_TYPES])
    refused = insert_columns(store, columns, token)
    result.rows -= len(refused)
    result.rejected.extend(refused.values())
    if runs:
        result.rows += _write_run_records(store, runs, token, result)
    return result


def _write_run_records(store: Store, records: list[dict[str, Any]], token: Optional[str], result: WriteResult) -> int:
    from tracehouse.collector.store.rows.artifacts import ARTIFACT_TYPES, write_artifact_records
    from tracehouse.collector.store.rows.evals import EVAL_TYPES, write_eval_records
    from tracehouse.collector.store.rows.otel import OTEL_RECORD_TYPES, write_otel_records
    from tracehouse.collector.store.rows.runs import file_columns, metric_columns, run_columns, value_columns
    from tracehouse.collector.store.rows.sweeps import SWEEP_TABLES, sweep_columns

    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["type"], []).append(record)
    metrics, metrics_refused = metric_columns(by_type.get("metrics", ()))
    runs, runs_refused = run_columns(by_type.get("run", ()))
    values, tables, values_refused = value_columns(by_type.get("values", ()))
    files, files_refused = file_columns(by_type.get("file", ()))
    sweeps, sweeps_refused = sweep_columns(r for r in records if r["type"] in SWEEP_TABLES)
    stored_refused: list[str] = []
    for table, columns in (("metrics", metrics), ("run_values", values), ("run_tables", tables),
                           ("run_files", files), ("runs", runs), *sweeps.items()):  # fmt: skip
        if columns[next(iter(columns))]:
            refused = store_isolating(store, table, columns, token)
            stored_refused.extend(f"{table} row: {reason}" for _, reason in refused)
    artifacts = [r for r in records if r["type"] in ARTIFACT_TYPES]
    _, artifacts_refused = write_artifact_records(store, artifacts, token) if artifacts else (0, [])
    evals = [r for r in records if r["type"] in EVAL_TYPES]
    _, evals_refused = write_eval_records(store, evals, token) if evals else (0, [])
    otel = [r for r in records if r["type"] in OTEL_RECORD_TYPES]  # OTLP logs and metrics
    _, otel_refused = write_otel_records(store, otel, token) if otel else (0, [])
    artifacts_refused += evals_refused + sweeps_refused + otel_refused
    result.rejected.extend(metrics_refused + runs_refused + values_refused + files_refused + artifacts_refused)
    result.rejected.extend(stored_refused)
    return len(records) - len(runs_refused) - len(files_refused) - len(artifacts_refused)


class BadBatch(ValueError):
    """A batch of records that is not a JSON array of record objects (400)."""


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """A JSON array of record objects; BadBatch with the reason otherwise."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadBatch(f"body is not JSON: {error}") from error
    if not isinstance(decoded, list) or not all(isinstance(r, dict) for r in decoded):
        raise BadBatch("expected a JSON array of record objects")
    return decoded


def check_projects(records: list[dict[str, Any]], allowed_project: Optional[str]) -> None:
    """PermissionError naming the other projects when records are not all of `allowed_project`."""
    if allowed_project is None:
        return
    others = {str(r.get("project")) for r in records} - {allowed_project}
    if others:
        raise PermissionError(sorted(others))


def write_json(
    store: Store, body: JsonBody, token: Optional[str], allowed_project: Optional[str] = None
) -> Optional[WriteResult]:
    """Insert a JSON array of records mapped inside the embedded store (see collector/store/rows/span_sql.py).

    None when that path does not apply (a ClickHouse server, or records ClickHouse cannot read in
    the expected shape): the caller then decodes the batch and uses `write_records`.
    """
    if not store.embedded:
        return None
    from tracehouse.collector.store.rows.span_sql import check_and_insert_json

    since = server_now(store)
    try:
        found = check_and_insert_json(store, body, token, allowed_project)
    except (ValueError, BadRowsError):
        return None
    if found.spans:
        shadow_new_pairs(store, since)
    return WriteResult(
        rows=found.spans - len(found.rejected), rejected=found.rejected, unknown_types=found.unknown_types
    )


def write_body(
    store: Store, body: JsonBody, token: Optional[str], allowed_project: Optional[str] = None
) -> WriteResult:
    """Insert a JSON array of records: mapped by the store when it can, else decoded and mapped here."""
    result = write_json(store, body, token, allowed_project)
    if result is not None:
        return result
    records = parse_records(body if isinstance(body, bytes) else bytes(body))
    check_projects(records, allowed_project)
    return write_records(store, records, token)
