"""Run and metrics records (from `th.init` runs) to `runs` and `metrics` columns.

A `metrics` record is one committed step: `{"type": "metrics", "project", "run_id", "step",
"time_ns", "values": {key: number}}`; it becomes one `metrics` row per key. A `run` record is the
run's latest state (`runs` is a ReplacingMergeTree on `version`, so the newest record wins).
Numbers that JSON cannot hold (NaN, infinities) travel as the strings "nan", "inf", "-inf".
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import orjson

from tracehouse.collector.store.rows.otel import OTEL_RECORD_TYPES

# records of runs, mapped here and in _artifact_rows (the in-chDB span mapping leaves batches holding them to us)
RUN_RECORD_TYPES = (
    "metrics", "run", "values", "file", "artifact", "artifact_use", "dataset", "score", "sweep", "sweep_trial",
    "sweep_agent", *OTEL_RECORD_TYPES,
)  # fmt: skip
# DateTime64(6) columns take microseconds
METRIC_COLUMNS = ("project", "run_id", "step", "key", "value", "timestamp")
RUN_COLUMNS = (
    "project", "run_id", "name", "state", "config", "summary", "tags", "group", "job_type", "notes",
    "sweep_id", "created_at", "updated_at", "heartbeat_at", "version", "entity", "host", "pid",
)  # fmt: skip
VALUE_COLUMNS = ("project", "run_id", "step", "key", "type", "value", "timestamp")
TABLE_COLUMNS = ("project", "run_id", "key", "step", "row_index", "row")
FILE_COLUMNS = ("project", "run_id", "path", "blob", "size", "updated_at")
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(value: Any) -> float:
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=repr).decode()


def metric_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """`metrics` columns for metrics records, and a reason per refused value."""
    columns: dict[str, list[Any]] = {name: [] for name in METRIC_COLUMNS}
    rejected: list[str] = []
    for record in records:
        try:
            project, run_id = str(record["project"]), str(record["run_id"])
            step, time_ns = int(record["step"]), int(record["time_ns"])
            values = record["values"]
            if not isinstance(values, dict):
                raise ValueError("values: expected an object")
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"metrics record {record.get('run_id')!r}: {type(error).__name__}: {error}")
            continue
        for key, raw in values.items():
            try:
                value = _number(raw)
            except ValueError as error:
                rejected.append(f"metric {key!r} of run {run_id!r} at step {step}: {error}")
                continue
            _append(columns, METRIC_COLUMNS, (project, run_id, step, str(key), value, time_ns // 1000))
    return columns, rejected


def run_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """`runs` columns for run records, and a reason per refused record."""
    columns: dict[str, list[Any]] = {name: [] for name in RUN_COLUMNS}
    rejected: list[str] = []
    for record in records:
        try:
            created = int(record["created_ns"])
            row = (
                str(record["project"]), str(record["run_id"]), str(record.get("name") or ""),
                str(record.get("state") or "running"), _text(record.get("config") or {}),
                _text(record.get("summary") or {}), [str(t) for t in record.get("tags") or []],
                str(record.get("group") or ""), str(record.get("job_type") or ""), str(record.get("notes") or ""),
                str(record.get("sweep_id") or ""), created // 1000, int(record.get("updated_ns") or created) // 1000,
                int(record.get("heartbeat_ns") or created) // 1000, int(record["version"]),
                str(record.get("entity") or ""), str(record.get("host") or ""), int(record.get("pid") or 0),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"run record {record.get('run_id')!r}: {type(error).__name__}: {error}")
            continue
        _append(columns, RUN_COLUMNS, row)
    return columns, rejected


def _append(columns: dict[str, list[Any]], names: tuple[str, ...], row: tuple[Any, ...]) -> None:
    for name, item in zip(names, row, strict=True):
        columns[name].append(item)


def table_summary(value: dict[str, Any]) -> dict[str, Any]:
    """A logged table without its rows, and how many it has (what `run_values` and the summary keep)."""
    return {k: v for k, v in value.items() if k != "data"} | {"rows": len(value["data"])}


def value_columns(
    records: Iterable[dict[str, Any]],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], list[str]]:
    """`run_values` and `run_tables` columns for values records (non-numeric history), and refusals.

    A value is an object with a `_type` (text, histogram, image, table, json, ...); a table's rows
    become `run_tables` rows (one JSON object per row, keyed by column) and its `run_values` row keeps
    the columns and the row count.
    """
    values: dict[str, list[Any]] = {name: [] for name in VALUE_COLUMNS}
    tables: dict[str, list[Any]] = {name: [] for name in TABLE_COLUMNS}
    rejected: list[str] = []
    for record in records:
        try:
            project, run_id = str(record["project"]), str(record["run_id"])
            step, micros = int(record["step"]), int(record["time_ns"]) // 1000
            logged = record["values"]
            if not isinstance(logged, dict):
                raise ValueError("values: expected an object")
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"values record {record.get('run_id')!r}: {type(error).__name__}: {error}")
            continue
        for key, value in logged.items():
            if not isinstance(value, dict) or not isinstance(value.get("_type"), str):
                rejected.append(f"value {key!r} of run {run_id!r} at step {step}: expected an object with a _type")
                continue
            if value["_type"] == "table":
                columns, data = value.get("columns"), value.get("data")
                if not isinstance(columns, list) or not isinstance(data, list):
                    rejected.append(f"table {key!r} of run {run_id!r} at step {step}: columns and data must be lists")
                    continue
                names = [str(c) for c in columns]
                offset = value.get("row_offset", 0)  # an INCREMENTAL table's rows continue its earlier ones
                offset = offset if type(offset) is int and offset >= 0 else 0
                for index, row in enumerate(data, start=offset):
                    cells = dict(zip(names, row, strict=False)) if isinstance(row, list) else {"value": row}
                    _append(tables, TABLE_COLUMNS, (project, run_id, str(key), step, index, _text(cells)))
                value = table_summary(value)
            _append(values, VALUE_COLUMNS, (project, run_id, step, str(key), value["_type"], _text(value), micros))
    return values, tables, rejected


def file_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """`run_files` columns for file records (a file saved with run.save), and refusals."""
    columns: dict[str, list[Any]] = {name: [] for name in FILE_COLUMNS}
    rejected: list[str] = []
    from tracehouse.collector.store.rows.artifacts import entry_path_problem

    for record in records:
        try:
            row = (
                str(record["project"]), str(record["run_id"]), str(record["path"]), str(record["blob"]),
                int(record["size"]), int(record["time_ns"]) // 1000,
            )  # fmt: skip
            problem = entry_path_problem(record["path"])
            if problem is not None:
                raise ValueError(f"the path {problem}")
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"file record {record.get('path')!r}: {type(error).__name__}: {error}")
            continue
        _append(columns, FILE_COLUMNS, row)
    return columns, rejected
