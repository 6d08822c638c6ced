"""`th.runs(filters=...)`: W&B's MongoDB-style run filters over the runs frame.

`{"state": "finished", "config.lr": {"$lt": 0.01}, "tags": {"$in": ["baseline"]}, "$or": [...]}`:
a key is a column (`state`, `name`, `group`, `job_type`, `tags`, `config.<key>`, `summary.<key>`;
W&B's `summary_metrics.<key>` is accepted too); a value is matched for equality or is a dict of
operators `$eq $ne $lt $lte $gt $gte $in $nin $regex $exists`; `$and` / `$or` take lists of filters.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Mapping, cast

from ._errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
}


def _column(key: str) -> str:
    if key.startswith("summary_metrics."):
        return "summary." + key[len("summary_metrics.") :]
    if key in ("display_name", "displayName"):
        return "name"
    return key


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _matches_value(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return bool(condition in value) if isinstance(value, (list, tuple)) else value == condition
    for operator, operand in condition.items():
        if operator == "$exists":
            if _missing(value) == bool(operand):
                return False
        elif operator in ("$in", "$nin"):
            found = any(v in operand for v in value) if isinstance(value, (list, tuple)) else value in operand
            if found != (operator == "$in"):
                return False
        elif operator == "$regex":
            if not isinstance(value, str) or re.search(str(operand), value) is None:
                return False
        elif operator in _COMPARE:
            if _missing(value):
                return False
            try:
                if not _COMPARE[operator](value, operand):
                    return False
            except TypeError:
                return False
    return True


def _matches(row: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    for key, condition in filters.items():
        if key in ("$and", "$or"):
            results = (_matches(row, part) for part in condition)
            if not (all(results) if key == "$and" else any(results)):
                return False
        elif not _matches_value(row.get(_column(key)), condition):
            return False
    return True


_OPERATORS = (*_COMPARE, "$in", "$nin", "$regex", "$exists")


def check_filters(filters: Any) -> None:
    """ConfigError for a filter that is not a dict, an unknown operator or a bad operand (before any I/O)."""
    if not isinstance(filters, Mapping):
        raise ConfigError("filters", f"expected a dict such as {{'config.lr': {{'$lt': 0.1}}}}, got {filters!r}")
    for key, condition in filters.items():
        if not isinstance(key, str):
            raise ConfigError("filters", f"keys must be strings, got {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not all(isinstance(c, Mapping) for c in condition):
                raise ConfigError("filters", f"{key} takes a list of filter dicts, got {condition!r}")
            for part in condition:
                check_filters(part)
        elif key.startswith("$"):
            raise ConfigError("filters", f"unknown operator {key!r} at the top level; use $and or $or")
        elif isinstance(condition, Mapping):
            for operator, operand in condition.items():
                if operator not in _OPERATORS:
                    raise ConfigError("filters", f"unknown operator {operator!r}; use one of {', '.join(_OPERATORS)}")
                if operator in ("$in", "$nin") and not isinstance(operand, (list, tuple, set)):
                    raise ConfigError("filters", f"{operator} takes a list, got {operand!r}")
                if operator == "$regex":
                    try:
                        re.compile(str(operand))
                    except re.error as error:
                        raise ConfigError("filters", f"$regex {operand!r}: {error}") from None


def apply_filters(frame: pd.DataFrame, filters: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of a runs frame that match `filters` (checked with `check_filters` first)."""
    if frame.empty or not filters:
        return frame
    keep = [_matches({str(k): v for k, v in row.items()}, filters) for row in frame.to_dict("records")]
    return cast("pd.DataFrame", frame[keep].reset_index(drop=True))
