"""Dataset and score records to `datasets`, `dataset_rows` and `scores` rows.

A `dataset` record (`{"project", "name", "digest", "rows": [...], "columns", "time_ns"}`) is
numbered like an artifact: the digest a name already has keeps its version, new rows get the next
one (the version row is inserted last, so a redo after a crash numbers the same way). A `score`
record is one row of `scores`: feedback on a span or trace (`th.score`) or one scorer's verdict on
one example of an evaluation.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse.collector.store.isolate import keep_rejected_record, store_isolating
from tracehouse.collector.store.rows.artifacts import numbering, versions_by_digest
from tracehouse.collector.store.store import BadRowsError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

EVAL_TYPES = ("dataset", "score")
SCORE_COLUMNS = ("project", "score_id", "target_type", "trace_id", "span_id", "run_id", "name", "value",
                 "string_value", "comment", "source", "created_at", "example", "error")  # fmt: skip


def _write_dataset(store: Store, record: dict[str, Any], token: Optional[str]) -> None:
    project, name, digest = str(record["project"]), str(record["name"]), str(record["digest"])
    rows = record["rows"]
    if not isinstance(rows, list):
        raise ValueError("rows: expected a list")
    with numbering:
        known = versions_by_digest(store, "datasets", project, name)
        if digest in known:
            return
        store.insert(
            "dataset_rows",
            {
                "project": [project] * len(rows),
                "digest": [digest] * len(rows),
                "row_index": list(range(len(rows))),
                "row": [orjson.dumps(r).decode() for r in rows],
            },
            dedup_token=f"{token}/rows" if token else None,
        )
        store.insert(
            "datasets",
            {
                "project": [project],
                "name": [name],
                "version": [max(known.values(), default=-1) + 1],
                "digest": [digest],
                "rows": [len(rows)],
                "columns": [[str(c) for c in record.get("columns") or []]],
                "created_at": [int(record["time_ns"]) // 1000],
            },
            dedup_token=f"{token}/dataset" if token else None,
        )


def _score_row(record: dict[str, Any]) -> tuple[Any, ...]:
    value = record.get("value")
    number = float(value) if isinstance(value, (int, float)) else float("nan")
    text = value if isinstance(value, str) else "" if isinstance(value, (int, float)) or value is None \
        else orjson.dumps(value).decode()  # fmt: skip
    return (
        str(record["project"]), str(record.get("score_id") or uuid.uuid4().hex),
        str(record.get("target_type") or "span"),
        str(record.get("trace_id") or ""), str(record.get("span_id") or ""), str(record.get("run_id") or ""),
        str(record["name"]), number, text, str(record.get("comment") or ""), str(record.get("source") or "api"),
        int(record["time_ns"]) // 1000, str(record.get("example") or ""), str(record.get("error") or ""),
    )  # fmt: skip


def write_eval_records(store: Store, records: list[dict[str, Any]], token: Optional[str]) -> tuple[int, list[str]]:
    """Write dataset and score records; returns (records written, one reason per refused record)."""
    written, rejected = 0, []
    columns: dict[str, list[Any]] = {name: [] for name in SCORE_COLUMNS}
    for index, record in enumerate(records):
        try:
            if record["type"] == "dataset":
                _write_dataset(store, record, f"{token}/d{index}" if token else None)
            else:
                for name, item in zip(SCORE_COLUMNS, _score_row(record), strict=True):
                    columns[name].append(item)
            written += 1
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"{record.get('type')} record {record.get('name')!r}: {type(error).__name__}: {error}")
        except BadRowsError as error:  # the store refused its values: kept in `rejected`, the rest goes on
            keep_rejected_record(store, record, str(error), f"{token}/r{index}" if token else None)
            rejected.append(f"{record.get('type')} record {record.get('name')!r}: {error}")
    if columns["score_id"]:
        refused = store_isolating(store, "scores", columns, f"{token}/scores" if token else None)
        written -= len(refused)
        rejected.extend(f"score row: {reason}" for _, reason in refused)
    return written, rejected
