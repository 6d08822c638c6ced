"""W&B's MongoDB-style run filters, compiled to a ClickHouse condition over the `runs` read.

`{"state": "finished", "config.lr": {"$lt": 0.01}, "tags": {"$in": ["baseline"]}, "$or": [...]}`:
a key is a column (`run_id`, `name` / `display_name`, `state`, `group`, `job_type`, `notes`,
`sweep_id`, `tags`, `created_at` / `createdAt`, `updated_at`, `heartbeat_at`) or a dotted path into
the run's config or summary (`config.optimizer.lr`, `summary.loss`; W&B's `summary_metrics.` too);
a value is matched for equality or is a dict of operators `$eq $ne $lt $lte $gt $gte $in $nin
$regex $exists`; `$and` / `$or` / `$nor` take lists of filters.

Everything runs in ClickHouse: values bind as parameters, identifiers come from the fixed list
above, `$regex` is RE2 (`match`, linear time: no pattern can stall the store or the event loop).
A dotted path matches a nested key (`{"optimizer": {"lr": ...}}`) or a logged flat one
(`{"optimizer.lr": ...}`), as the runs table flattens them.
"""

from __future__ import annotations

from datetime import datetime
from itertools import product
from typing import Any, Mapping

import orjson

from tracehouse._errors import ConfigError

STRING_COLUMNS = {"run_id": "run_id", "name": "name", "display_name": "name", "displayName": "name",
                  "state": "state", "group": "`group`", "job_type": "job_type", "jobType": "job_type",
                  "notes": "notes", "sweep_id": "sweep_id", "sweep": "sweep_id"}  # fmt: skip
TIME_COLUMNS = {"created_at": "created_at", "createdAt": "created_at", "updated_at": "updated_at",
                "heartbeat_at": "heartbeat_at", "heartbeatAt": "heartbeat_at"}  # fmt: skip
COMPARISONS = {"$eq": "=", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
OPERATORS = (*COMPARISONS, "$in", "$nin", "$regex", "$exists")
MAX_SPLIT_PARTS = 6  # a path of more parts is matched fully nested or fully flat only
_JSON_NUMBER = "JSONType({raw}) IN ('Int64', 'UInt64', 'Double')"
_JSON_STRING = "JSONType({raw}) = 'String'"


class _Params:
    """Bound parameters of one compiled filter (named `prefix` + a number, so several sets can share a query)."""

    def __init__(self, prefix: str = "f") -> None:
        self.values: dict[str, Any] = {}
        self.prefix = prefix

    def bind(self, value: Any, type_name: str) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_name}}}"


def check_filters(filters: Any) -> None:
    """ConfigError for a filter that is not a dict, an unknown key or operator, or a bad operand."""
    if not isinstance(filters, Mapping):
        raise ConfigError("filters", f"expected a dict such as {{'config.lr': {{'$lt': 0.1}}}}, got {filters!r}")
    for key, condition in filters.items():
        if not isinstance(key, str):
            raise ConfigError("filters", f"keys must be strings, got {key!r}")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list) or not all(isinstance(c, Mapping) for c in condition):
                raise ConfigError("filters", f"{key} takes a list of filter dicts, got {condition!r}")
            for part in condition:
                check_filters(part)
            continue
        if key.startswith("$"):
            raise ConfigError("filters", f"unknown operator {key!r} at the top level; use $and, $or or $nor")
        _column(key)
        if isinstance(condition, Mapping):
            for operator, operand in condition.items():
                _check_operator(operator, operand)


def _check_operator(operator: Any, operand: Any) -> None:
    if operator not in OPERATORS:
        raise ConfigError("filters", f"unknown operator {operator!r}; use one of {', '.join(OPERATORS)}")
    if operator in ("$in", "$nin") and not isinstance(operand, (list, tuple)):
        raise ConfigError("filters", f"{operator} takes a list, got {operand!r}")
    if operator == "$regex" and not isinstance(operand, str):
        raise ConfigError("filters", f"$regex takes a pattern string, got {operand!r}")


def _column(key: str) -> tuple[str, str]:
    """(kind, column or JSON path) of a filter key: "string", "tags", "time", "config" or "summary"."""
    if key in STRING_COLUMNS:
        return "string", STRING_COLUMNS[key]
    if key in TIME_COLUMNS:
        return "time", TIME_COLUMNS[key]
    if key == "tags":
        return "tags", "tags"
    for prefix, column in (("config.", "config"), ("summary.", "summary"), ("summary_metrics.", "summary")):
        if key.startswith(prefix) and len(key) > len(prefix):
            return column, key[len(prefix) :]
    known = ", ".join([*STRING_COLUMNS, *TIME_COLUMNS, "tags"])
    raise ConfigError("filters", f"unknown key {key!r}; use {known}, config.<key> or summary.<key>")


def compile_filters(filters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(a ClickHouse condition over the runs read's columns, its parameters); checked first."""
    check_filters(filters)
    params = _Params()
    return _all(filters, params), params.values


def _all(filters: Mapping[str, Any], params: _Params) -> str:
    parts = []
    for key, condition in filters.items():
        if key in ("$and", "$or", "$nor"):
            joined = (" AND " if key == "$and" else " OR ").join(f"({_all(p, params)})" for p in condition)
            joined = joined or ("1" if key == "$and" else "0")
            parts.append(f"NOT ({joined})" if key == "$nor" else f"({joined})")
        else:
            parts.append(_key(key, condition, params))
    return " AND ".join(parts) or "1"


def _key(key: str, condition: Any, params: _Params) -> str:
    kind, column = _column(key)
    conditions = condition.items() if isinstance(condition, Mapping) else [("$eq", condition)]
    if kind == "config" or kind == "summary":
        raw = _json_value(kind, column, params)
        return " AND ".join(f"({_json_operator(raw, op, operand, params)})" for op, operand in conditions)
    return " AND ".join(f"({_column_operator(kind, column, op, operand, params)})" for op, operand in conditions)


def _json_value(column: str, path: str, params: _Params) -> str:
    """The raw JSON of a dotted path in `column` (NULL when absent): nested keys or a flat dotted key."""
    parts = path.split(".")
    if len(parts) > MAX_SPLIT_PARTS:
        splits = [[path], parts]
    else:
        splits = []
        for cuts in product((False, True), repeat=len(parts) - 1):
            groups, current = [], [parts[0]]
            for part, cut in zip(parts[1:], cuts, strict=True):
                if cut:
                    groups.append(".".join(current))
                    current = [part]
                else:
                    current.append(part)
            splits.append([*groups, ".".join(current)])
    branches = []
    for keys in splits:
        bound = ", ".join(params.bind(k, "String") for k in keys)
        branches += [f"JSONHas({column}, {bound})", f"JSONExtractRaw({column}, {bound})"]
    return f"multiIf({', '.join(branches)}, NULL)"


def _json_operator(raw: str, operator: str, operand: Any, params: _Params) -> str:
    present = f"({raw} IS NOT NULL AND {raw} != 'null')"
    if operator == "$exists":
        return present if operand else f"NOT {present}"
    if operator in ("$in", "$nin"):
        matched = " OR ".join(f"({_json_equals(raw, v, params)})" for v in operand) or "0"
        return f"coalesce({matched}, 0)" if operator == "$in" else f"NOT coalesce({matched}, 0)"
    if operator == "$regex":
        return f"coalesce({_JSON_STRING.format(raw=raw)} AND match(JSONExtractString({raw}), " \
               f"{params.bind(operand, 'String')}), 0)"  # fmt: skip
    if operator == "$eq":
        return f"coalesce({_json_equals(raw, operand, params)}, 0)"
    if operator == "$ne":
        return f"NOT coalesce({_json_equals(raw, operand, params)}, 0)"
    sign = COMPARISONS[operator]
    if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
        return "0"
    if isinstance(operand, str):
        return f"coalesce({_JSON_STRING.format(raw=raw)} AND JSONExtractString({raw}) {sign} " \
               f"{params.bind(operand, 'String')}, 0)"  # fmt: skip
    return f"coalesce({_JSON_NUMBER.format(raw=raw)} AND JSONExtractFloat({raw}) {sign} " \
           f"{params.bind(float(operand), 'Float64')}, 0)"  # fmt: skip


def _json_equals(raw: str, operand: Any, params: _Params) -> str:
    """`raw` (a JSON value) equals `operand`, or is an array holding it."""
    if operand is None:
        return f"({raw} IS NULL OR {raw} = 'null')"
    if isinstance(operand, bool):
        text = params.bind("true" if operand else "false", "String")
        return f"({raw} = {text} OR has(JSONExtractArrayRaw(ifNull({raw}, '')), {text}))"
    if isinstance(operand, (int, float)):
        number = params.bind(float(operand), "Float64")
        return (f"(({_JSON_NUMBER.format(raw=raw)} AND JSONExtractFloat({raw}) = {number}) OR "
                f"arrayExists(x -> JSONType(x) IN ('Int64', 'UInt64', 'Double') AND JSONExtractFloat(x) = {number}, "
                f"JSONExtractArrayRaw(ifNull({raw}, ''))))")  # fmt: skip
    if isinstance(operand, str):
        text = params.bind(operand, "String")
        return (
            f"(({_JSON_STRING.format(raw=raw)} AND JSONExtractString({raw}) = {text}) OR "
            f"has(arrayMap(x -> JSONExtractString(x), JSONExtractArrayRaw(ifNull({raw}, ''))), {text}))"
        )
    return f"{raw} = {params.bind(orjson.dumps(operand).decode(), 'String')}"


def _column_operator(kind: str, column: str, operator: str, operand: Any, params: _Params) -> str:
    if operator == "$exists":
        return "1" if operand else "0"
    if kind == "tags":
        return _tags_operator(operator, operand, params)
    if operator in ("$in", "$nin"):
        values = [v for v in operand if isinstance(v, str)]
        found = f"{column} IN {params.bind(values, 'Array(String)')}"
        return found if operator == "$in" else f"NOT ({found})"
    if operator == "$regex":
        return f"match({column}, {params.bind(operand, 'String')})"
    if kind == "time":
        moment = _time_operand(operand)
        if moment is None:
            return "0"
        return f"{column} {COMPARISONS[operator]} parseDateTime64BestEffort({params.bind(moment, 'String')}, 6, 'UTC')"
    if not isinstance(operand, str):
        return "1" if operator == "$ne" else "0"
    return f"{column} {COMPARISONS[operator]} {params.bind(operand, 'String')}"


def _tags_operator(operator: str, operand: Any, params: _Params) -> str:
    if operator in ("$in", "$nin"):
        found = f"hasAny(tags, {params.bind([str(v) for v in operand], 'Array(String)')})"
        return found if operator == "$in" else f"NOT {found}"
    if operator == "$regex":
        return f"arrayExists(t -> match(t, {params.bind(operand, 'String')}), tags)"
    if operator in ("$eq", "$ne") and isinstance(operand, str):
        found = f"has(tags, {params.bind(operand, 'String')})"
        return found if operator == "$eq" else f"NOT {found}"
    if operator in ("$eq", "$ne") and isinstance(operand, (list, tuple)):
        same = f"tags = {params.bind([str(v) for v in operand], 'Array(String)')}"
        return same if operator == "$eq" else f"NOT ({same})"
    return "1" if operator == "$ne" else "0"


def _time_operand(operand: Any) -> Any:
    if isinstance(operand, datetime):
        return operand.isoformat()
    if isinstance(operand, str):
        try:
            return datetime.fromisoformat(operand.strip()).isoformat()
        except ValueError:
            raise ConfigError("filters", f"expected an ISO time such as 2026-11-28T10:00, got {operand!r}") from None
    return None


BoundParams = _Params  # for other queries over the runs read (the runs table's sort and group expressions)
json_value_sql = _json_value

__all__ = ["BoundParams", "check_filters", "compile_filters", "json_value_sql"]
