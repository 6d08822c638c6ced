"""Inserts that no bad row can wedge: bisection to the rows at fault, which go to `rejected`.

ClickHouse refuses an insert as a whole. When it blames the values (BadRowsError, see
`collector/store/store.py`), the batch is split in halves until the rows it refuses stand alone;
those are kept in the `rejected` table with the reason, and everything else is stored. A retry
after a crash splits the same way under the same derived tokens, so ClickHouse drops what already
landed. Errors that blame the store (down, out of memory, too many parts) are raised: the range
waits and is retried.

`spans` is partitioned by day and ClickHouse refuses a block touching more than 100 partitions,
so span batches are first cut into groups of at most `MAX_DAYS_PER_INSERT` days.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from tracehouse._json import to_json_bytes
from tracehouse.collector.store.store import BadRowsError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")

MAX_DAYS_PER_INSERT = 90  # below ClickHouse's max_partitions_per_insert_block (100)
_NS_PER_DAY = 86_400 * 10**9
Columns = dict[str, list[Any]]


def _rows(columns: Columns) -> int:
    return len(next(iter(columns.values()), ()))


def _take(columns: Columns, indices: list[int]) -> Columns:
    return {name: [values[i] for i in indices] for name, values in columns.items()}


def insert_isolating(store: Store, table: str, columns: Columns, token: Optional[str]) -> list[tuple[int, str]]:
    """Insert `columns` into `table`; return (row index, reason) for each row the store refused.

    Refused rows are not written anywhere here; see `store_isolating`.
    """
    count = _rows(columns)
    if not count:
        return []
    try:
        store.insert(table, columns, dedup_token=token)
        return []
    except BadRowsError as error:
        if count == 1:
            return [(0, str(error))]
    middle = count // 2
    refused = insert_isolating(store, table, {k: v[:middle] for k, v in columns.items()}, _child(token, 0))
    rest = insert_isolating(store, table, {k: v[middle:] for k, v in columns.items()}, _child(token, 1))
    return refused + [(middle + index, reason) for index, reason in rest]


def _child(token: Optional[str], part: int) -> Optional[str]:
    return f"{token}/{part}" if token else None


def day_groups(columns: Columns, time_column: str = "start_time") -> list[list[int]]:
    """Row indices in groups touching at most MAX_DAYS_PER_INSERT days each (one group when few)."""
    times = columns.get(time_column, [])
    days = [int(t) // _NS_PER_DAY if isinstance(t, int) else 0 for t in times]
    distinct = sorted(set(days))
    if len(distinct) <= MAX_DAYS_PER_INSERT:
        return [list(range(len(days)))]
    group_of = {day: i // MAX_DAYS_PER_INSERT for i, day in enumerate(distinct)}
    groups: list[list[int]] = [[] for _ in range((len(distinct) + MAX_DAYS_PER_INSERT - 1) // MAX_DAYS_PER_INSERT)]
    for index, day in enumerate(days):
        groups[group_of[day]].append(index)
    return groups


def store_isolating(store: Store, table: str, columns: Columns, token: Optional[str]) -> list[tuple[int, str]]:
    """Insert `columns` (cut by day for `spans`); refused rows are kept in `rejected`. Returns them."""
    groups = day_groups(columns) if table == "spans" else [list(range(_rows(columns)))]
    refused: list[tuple[int, str]] = []
    for number, indices in enumerate(groups):
        part = columns if len(groups) == 1 else _take(columns, indices)
        part_token = token if len(groups) == 1 else f"{token}/d{number}" if token else None
        refused.extend((indices[i], reason) for i, reason in insert_isolating(store, table, part, part_token))
    if refused:
        keep_rejected(store, table, columns, refused, token)
    return refused


def keep_rejected(
    store: Store, table: str, columns: Columns, refused: list[tuple[int, str]], token: Optional[str]
) -> None:
    """Write refused rows to `rejected` (project, table, reason, the row as JSON, the batch's token)."""
    projects = columns.get("project", [])
    rows: dict[str, list[Any]] = {"project": [], "table_name": [], "reason": [], "row": [], "batch": []}
    for index, reason in refused:
        row = {name: values[index] for name, values in columns.items()}
        rows["project"].append(str(projects[index]) if index < len(projects) else "")
        rows["table_name"].append(table)
        rows["reason"].append(reason[:4000])
        rows["row"].append(to_json_bytes(row).decode("utf-8", errors="replace"))
        rows["batch"].append(token or "")
    try:
        store.insert("rejected", rows, dedup_token=f"{token}/rejected" if token else None)
    except BadRowsError as error:  # cannot happen with String columns; never wedge on it either
        logger.warning("tracehouse: %d refused %s row(s) could not be kept in rejected: %s", len(refused), table, error)
    logger.warning(
        "tracehouse: the store refused %d %s row(s), kept in the rejected table: %s", len(refused), table, refused[0][1]
    )


def keep_rejected_record(store: Store, record: dict[str, Any], reason: str, token: Optional[str]) -> None:
    """Keep one whole record (an artifact, a dataset) the store refused in `rejected`."""
    table = str(record.get("type") or "record")
    keep_rejected(store, table, {"project": [record.get("project", "")], "record": [record]}, [(0, reason)], token)
