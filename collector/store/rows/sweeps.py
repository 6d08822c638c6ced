"""Sweep records (the controller's sweep rows, claims and agent heartbeats) to table columns.

Each record carries its table's columns by name; JSON values (a sweep's config, a trial's
parameters and sampler point) are stored as JSON text; times are microseconds.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

SWEEP_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sweep": ("sweeps", ("project", "sweep_id", "name", "method", "config", "state", "created_at", "updated_at",
                         "version")),
    "sweep_trial": ("sweep_trials", ("project", "sweep_id", "run_id", "trial_index", "params", "internal", "agent_id",
                                     "state", "claimed_at", "version")),
    "sweep_agent": ("sweep_agents", ("project", "sweep_id", "agent_id", "host", "pid", "started_at", "heartbeat_at",
                                     "version")),
}  # fmt: skip
_JSON = ("config", "params", "internal")
_INTEGER = ("created_at", "updated_at", "claimed_at", "started_at", "heartbeat_at", "version", "trial_index", "pid")


def sweep_columns(records: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, list[Any]]], list[str]]:
    """Columns per table for sweep records, and a reason per refused record."""
    tables: dict[str, dict[str, list[Any]]] = {}
    rejected: list[str] = []
    for record in records:
        table, names = SWEEP_TABLES[record["type"]]
        try:
            row = []
            for name in names:
                value = record[name]
                if name in _JSON:
                    value = orjson.dumps(value).decode()
                elif name in _INTEGER:
                    value = int(value)
                else:
                    value = str(value)
                row.append(value)
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"{record['type']} record {record.get('sweep_id')!r}: {type(error).__name__}: {error}")
            continue
        columns = tables.setdefault(table, {name: [] for name in names})
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    return tables, rejected
