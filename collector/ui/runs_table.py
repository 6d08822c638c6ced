"""The runs table: run fields, summary metrics and config keys as columns, filtered, sorted and paged in
ClickHouse (over the `runs` read, so a crashed run reads as crashed here too), optionally grouped by a
config key with count and mean / min / max of the shown summary metrics per group.

Sorting a config or summary column orders numbers as numbers, then booleans, then strings, and puts
runs without the key last in either direction. The default columns are W&B's: name, state, created,
duration, tags, the most common numeric summary metrics, then config keys that vary across runs
(internal `_` keys and digest-like values left out; the shared ones only when none varies).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConfigError
from tracehouse._numbers import significant
from tracehouse.collector.store.reads import dead_processes, flat_values, read_sql
from tracehouse.collector.store.run_filters import BoundParams, compile_filters, json_value_sql
from tracehouse.collector.ui.runs_cells import cell, json_dict, parse_json
from tracehouse.collector.ui.runs_form import RunsView

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

FIELDS = {  # column id -> SQL over the runs read
    "name": "name", "state": "state", "created_at": "created_at", "duration": "duration", "tags": "tags",
    "run_id": "run_id", "group": "`group`", "job_type": "job_type", "sweep_id": "sweep_id",
    "updated_at": "updated_at",
}  # fmt: skip
GROUP_FIELDS = ("state", "group", "job_type", "sweep_id")
DEFAULT_FIELDS = ("name", "state", "created_at", "duration", "tags")
DEFAULT_SUMMARY, DEFAULT_CONFIG = 5, 4
SAMPLE = 1000  # the newest runs whose keys make the column picker
CRASHED_AFTER_MS = 120_000
_DURATION = (
    "dateDiff('millisecond', created_at, if(state = 'running', now64(6), greatest(updated_at, heartbeat_at))) / 1000"
)
_NUMBER = "JSONType(ifNull({raw}, 'null')) IN ('Int64', 'UInt64', 'Double')"
_DIGEST = re.compile(r"^[0-9a-fA-F]{24,}$|^[A-Za-z0-9+/=_-]{40,}$")
_INTERNAL = ("digest", "hash", "sha256", "sha1", "md5", "checksum", "uuid")


def source(store: Store, project: str, filters: Optional[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(SQL of the project's runs matching `filters`, with a `duration` column in seconds; its parameters)."""
    params: dict[str, Any] = {"c": CRASHED_AFTER_MS, **dead_processes(store, project), "p": project}
    sql = read_sql("runs")
    if filters:
        condition, values = compile_filters(filters)
        sql, params = f"SELECT * FROM ({sql}) WHERE {condition}", {**params, **values}
    return f"SELECT *, {_DURATION} AS duration FROM ({sql})", params


def _value_sql(column: str, bound: BoundParams) -> str:
    """A column's value: a run field, or the raw JSON (NULL when absent) of a config / summary key."""
    if column in FIELDS:
        return FIELDS[column]
    kind, _, path = column.partition(".")
    return json_value_sql(kind, path, bound)


def _order_sql(column: str, expression: str, desc: bool) -> list[str]:
    """ORDER BY terms: missing values last in either direction, numbers as numbers."""
    way = "DESC" if desc else "ASC"
    if column in ("created_at", "updated_at", "duration"):
        return [f"{expression} {way}"]
    if column == "tags":
        return ["empty(tags)", f"arrayStringConcat(tags, ',') {way}"]
    if column in FIELDS:
        return [f"{expression} = ''", f"{expression} {way}"]
    rank = f"multiIf({_NUMBER.format(raw=expression)}, 0, JSONType(ifNull({expression}, 'null')) = 'Bool', 1, " \
        f"JSONType(ifNull({expression}, 'null')) = 'String', 2, 3)"  # fmt: skip
    return [f"({expression} IS NULL OR {expression} = 'null')", rank,
            f"JSONExtractFloat(ifNull({expression}, '')) {way}", f"JSONExtractString(ifNull({expression}, '')) {way}",
            f"{expression} {way}"]  # fmt: skip


def discover(store: Store, sql: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Config and summary keys of the newest runs: per column id, how many runs have it, how many distinct
    values it takes (up to a few), whether it is numeric, and whether it looks internal (a digest)."""
    _, rows = store.query_rows(f"SELECT config, summary FROM ({sql}) ORDER BY created_at DESC LIMIT {SAMPLE}", params)
    keys: dict[str, dict[str, Any]] = {}
    for config, summary in rows:
        for part, text in (("config.", config), ("summary.", summary)):
            for key, value in flat_values(json_dict(text), part).items():
                if isinstance(value, dict):
                    continue  # a logged table or image: shown on the run page
                entry = keys.setdefault(key, {"runs": 0, "numeric": 0, "values": set(), "internal": False})
                entry["runs"] += 1
                entry["numeric"] += isinstance(value, (int, float)) and not isinstance(value, bool)
                if len(entry["values"]) < 3:
                    entry["values"].add(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
                if isinstance(value, str) and (_DIGEST.match(value) or len(value) > 80):
                    entry["internal"] = True
    for key, entry in keys.items():
        last = key.rsplit(".", 1)[-1].lower()
        entry["internal"] = entry["internal"] or last.startswith("_") or any(w in last for w in _INTERNAL)
        entry["varies"], entry["numeric"] = len(entry.pop("values")) > 1, entry["numeric"] * 2 > entry["runs"]
    return keys


def default_columns(keys: dict[str, dict[str, Any]]) -> list[str]:
    """Name, state, created, duration, tags, the most common numeric summary metrics, varying config keys."""
    by_use = sorted(keys.items(), key=lambda item: (-item[1]["runs"], item[0]))
    summary = [k for k, e in by_use if k.startswith("summary.") and e["numeric"] and not e["internal"]]
    config = [k for k, e in by_use if k.startswith("config.") and not e["internal"]]
    varying = [k for k in config if keys[k]["varies"]]
    config = varying or config  # keys the runs share add nothing, unless no key tells them apart
    return [*DEFAULT_FIELDS, *summary[:DEFAULT_SUMMARY], *config[:DEFAULT_CONFIG]]


def _check(view: RunsView, available: list[str]) -> None:
    known = set(available) | set(FIELDS)
    if view.sort is not None and view.sort not in known:
        raise ConfigError("sort", f"no column {view.sort!r} to sort by; choose one of the table's columns")
    if (
        view.group is not None
        and view.group not in GROUP_FIELDS
        and not (view.group.startswith("config.") and view.group in known)
    ):
        raise ConfigError("group", f"no config key {view.group!r} to group by; the runs hold {_some(available)}")


def _some(available: list[str]) -> str:
    config = [k for k in available if k.startswith("config.")]
    return ", ".join(config[:12]) + (", ..." if len(config) > 12 else "") if config else "no config keys"


def table(store: Store, project: str, view: RunsView) -> dict[str, Any]:
    """A page of the runs table for `view`, with the columns to pick from and the groups' aggregates."""
    filters = view.form.filters()
    sql, params = source(store, project, filters)
    keys = discover(store, sql, params)
    available = sorted(keys)
    _check(view, available)
    columns = list(view.columns) if view.columns is not None else default_columns(keys)
    columns = ["name", *(c for c in dict.fromkeys(columns) if c != "name" and (c in FIELDS or c in keys))]
    _, ((total,),) = store.query_rows(f"SELECT count() FROM ({sql})", params)
    if total == 0:
        from tracehouse.collector.store.queries import ensure_project

        ensure_project(store, project)
    pages = max(1, -(-int(total) // view.per_page))
    rows = _page(store, sql, params, view, columns, min(view.page, pages))
    metrics = [c for c in columns if c.startswith("summary.")]
    groups = _groups(store, sql, params, view.group, metrics) if view.group else []
    return {"project": project, "filters": filters, "columns": columns, "available": available,
            "keys": {k: {"runs": e["runs"], "numeric": e["numeric"]} for k, e in keys.items()},
            "runs": rows, "total": int(total), "page": min(view.page, pages), "pages": pages,
            "per_page": view.per_page, "sort": view.sort, "desc": view.desc, "group": view.group, "groups": groups,
            "running": any(r["state"] == "running" for r in rows)}  # fmt: skip


def _page(
    store: Store, sql: str, params: dict[str, Any], view: RunsView, columns: list[str], page: int
) -> list[dict[str, Any]]:
    bound = BoundParams("s")
    order: list[str] = []
    group_select = ""
    if view.group:
        group_select = f", {_value_sql(view.group, bound)} AS _group"
        order += _order_sql(view.group, "_group", False) if view.group.startswith("config.") else ["_group"]
    if view.sort:
        order += _order_sql(view.sort, FIELDS.get(view.sort, "_sort"), view.desc)
    sort_select = f", {_value_sql(view.sort, bound)} AS _sort" if view.sort and view.sort not in FIELDS else ""
    order += ["created_at DESC", "run_id"]
    query = (
        f"SELECT run_id, name, state, tags, `group`, job_type, sweep_id, created_at, updated_at, duration, config, "
        f"summary{group_select}{sort_select} FROM ({sql}) ORDER BY {', '.join(order)} "
        f"LIMIT {view.per_page:d} OFFSET {(page - 1) * view.per_page:d}"
    )
    names, found = store.query_rows(query, {**params, **bound.values})
    rows = []
    for record in (dict(zip(names, r, strict=True)) for r in found):
        values = {"tags": list(record["tags"]), **{k: record[k] for k in FIELDS if k != "tags"}}
        for part in ("config", "summary"):
            values.update(flat_values(json_dict(record[part]), f"{part}."))
        shown = {c: values.get(c) for c in columns}
        row = {**{k: values[k] for k in FIELDS}, **shown, "cells": {c: cell(c, v) for c, v in shown.items()}}
        if view.group:
            row["group_value"] = value = _group_value(view.group, record.get("_group"))
            row["group_label"] = "(none)" if value is None else cell(view.group, value)
        rows.append(row)
    return rows


def _group_value(column: str, raw: Any) -> Any:
    if not column.startswith("config."):
        return raw
    return None if raw is None else parse_json(raw, raw)


def _groups(store: Store, sql: str, params: dict[str, Any], column: str, metrics: list[str]) -> list[dict[str, Any]]:
    """Per value of `column`: the runs' count and mean / min / max of each numeric summary metric."""
    bound = BoundParams("g")
    selects = [f"{_value_sql(column, bound)} AS _group"]
    aggregates = ["count() AS n"]
    for index, metric in enumerate(metrics):
        raw = f"m{index}"
        selects.append(f"{_value_sql(metric, bound)} AS {raw}")
        number = f"JSONExtractFloat(ifNull({raw}, ''))"
        present = _NUMBER.format(raw=raw)
        aggregates += [f"countIf({present})", f"avgIf({number}, {present})", f"minIf({number}, {present})",
                       f"maxIf({number}, {present})"]  # fmt: skip
    order = _order_sql(column, "_group", False) if column.startswith("config.") else ["_group"]
    query = (
        f"SELECT _group, {', '.join(aggregates)} FROM (SELECT {', '.join(selects)} FROM ({sql})) "
        f"GROUP BY _group ORDER BY {', '.join(order)} LIMIT 500"
    )
    _, found = store.query_rows(query, {**params, **bound.values})
    groups = []
    for row in found:
        stats = {}
        for index, metric in enumerate(metrics):
            n, mean, low, high = row[2 + 4 * index : 6 + 4 * index]
            numbers = {"mean": float(mean), "min": float(low), "max": float(high)} if n else {}
            stats[metric] = {
                "n": int(n),
                **{k: numbers.get(k) for k in ("mean", "min", "max")},
                "text": {k: significant(numbers[k]) if n else "" for k in ("mean", "min", "max")},
            }
        value = _group_value(column, row[0])
        groups.append({"value": value, "label": cell(column, value) if value is not None else "(none)",
                       "count": int(row[1]), "metrics": stats})  # fmt: skip
    return groups


__all__ = ["DEFAULT_FIELDS", "FIELDS", "GROUP_FIELDS", "default_columns", "discover", "source", "table"]
