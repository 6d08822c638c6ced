"""`th.Table` and `th.JoinedTable` (W&B's `wandb.Table` and `wandb.JoinedTable`), re-exported by `media`.

A table checks its column types as W&B does: without `allow_mixed_types`, the values of a column
share one type (ints and floats are both numbers; None is allowed when the column is optional), and
a row that breaks it raises `ConfigError` naming the column and the row. `log_mode` is W&B's:
"IMMUTABLE" and "MUTABLE" store the whole table at each log; "INCREMENTAL" stores only the rows
added since the previous log of the same object, with `increment` (0, 1, ...) and `row_offset`
(the first row's index in the whole table, which `run_tables.row_index` continues from).

A joined table is stored as the inner join of its two tables on the key, a table value with a
`joined` entry (`key`, `left_columns`, `right_columns`), so its rows are `run_tables` rows.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional, Sequence, Union

from tracehouse._errors import ConfigError
from tracehouse.tracking.media_base import PutBytes

LOG_MODES = ("IMMUTABLE", "MUTABLE", "INCREMENTAL")
_ANY = "any"  # a column whose values are not checked (allow_mixed_types=True)
# W&B's type classes, by name, that tracehouse checks; other wandb.data_types classes are not checked.
_WANDB_TYPES = {"NumberType": "number", "StringType": "str", "BooleanType": "bool"}
_PYTHON_TYPES = {int: "number", float: "number", str: "str", bool: "bool", list: "list", dict: "dict"}


class Table:
    """Rows and named columns (W&B's `wandb.Table`); logged tables are rows in `run_tables`."""

    def __init__(
        self,
        columns: Optional[Sequence[str]] = None,
        data: Optional[Sequence[Sequence[Any]]] = None,
        rows: Optional[Sequence[Sequence[Any]]] = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Union[bool, Sequence[bool]] = True,
        allow_mixed_types: bool = False,
        log_mode: str = "IMMUTABLE",
    ) -> None:
        if log_mode not in LOG_MODES:
            raise ConfigError("log_mode", f"expected one of {', '.join(LOG_MODES)}, got {log_mode!r}")
        if dataframe is not None:
            if columns is not None or data is not None or rows is not None:
                raise ConfigError("dataframe", "give either a dataframe or columns and data, not both")
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        data = data if data is not None else rows
        materialised = [list(row) for row in data] if data is not None else []
        if columns is None:
            width = len(materialised[0]) if materialised else 0
            columns = [f"col{i}" for i in range(width)]
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ConfigError("columns", f"expected a list of column names, got {columns!r}")
        if len(set(columns)) != len(columns):
            raise ConfigError("columns", f"column names must be distinct, got {list(columns)}")
        self.columns: list[str] = list(columns)
        self.data: list[list[Any]] = []
        self.log_mode = log_mode
        self.allow_mixed_types = bool(allow_mixed_types)
        self._optional = _per_column("optional", optional, len(self.columns))
        dtypes = _per_column("dtype", dtype, len(self.columns))
        self._types: list[Optional[str]] = [_ANY if allow_mixed_types else _declared(d) for d in dtypes]
        self._logged_rows = 0  # INCREMENTAL: rows already stored by earlier logs
        self._increment = 0
        for row in materialised:
            self.add_data(*row)

    def add_data(self, *data: Any) -> None:
        """Append one row (one value per column); its values must fit the columns' types."""
        if len(data) != len(self.columns):
            raise ConfigError("data", f"a row needs {len(self.columns)} values ({self.columns}), got {len(data)}")
        row = len(self.data)
        self._types = [
            _checked(self.columns[i], self._types[i], self._optional[i], value, row) for i, value in enumerate(data)
        ]
        self.data.append(list(data))

    add_row = add_data

    def add_column(self, name: str, data: Sequence[Any], optional: bool = True) -> None:
        """Add a column with one value per existing row (its values share one type, as a row's do)."""
        if not isinstance(name, str) or name in self.columns:
            raise ConfigError("name", f"expected a new column name, got {name!r}")
        if self.log_mode == "INCREMENTAL" and self._increment:
            raise ConfigError("name", "an INCREMENTAL table cannot get new columns once it has been logged")
        values = list(data)
        if self.data and len(values) != len(self.data):
            raise ConfigError("data", f"the table has {len(self.data)} rows, the column {len(values)} values")
        kind: Optional[str] = _ANY if self.allow_mixed_types else None
        for row, value in enumerate(values):
            kind = _checked(name, kind, optional, value, row)
        if not self.data:
            self.data = [[] for _ in values]
        self.columns.append(name)
        self._types.append(kind)
        self._optional.append(optional)
        for row_values, value in zip(self.data, values, strict=True):
            row_values.append(value)

    def add_computed_columns(self, fn: Callable[[int, dict[str, Any]], dict[str, Any]]) -> Table:
        """Add the columns `fn(index, row)` returns (a dict of new column values for each row, the row
        given as a dict by column name), as W&B does; returns the table."""
        new: dict[str, list[Any]] = {}
        for index, row in self.iterrows():
            computed = fn(index, dict(zip(self.columns, row, strict=True)))
            if not isinstance(computed, dict):
                raise ConfigError("fn", f"expected a dict of new columns for row {index}, got {computed!r}")
            for name, value in computed.items():
                new.setdefault(name, []).append(value)
        for name, values in new.items():
            if len(values) != len(self.data):
                raise ConfigError("fn", f"column {name!r} was computed for {len(values)} of {len(self.data)} rows")
            self.add_column(name, values)
        return self

    def cast(self, col_name: str, dtype: Any, optional: bool = False) -> None:
        """Fix a column's type (int, float, str, bool, list, dict, or W&B's NumberType, StringType,
        BooleanType); the values already there must fit it. Other W&B types are accepted, not checked."""
        index = self._index(col_name)
        kind = _declared(dtype)
        if kind is None:
            kind = self._types[index]
        else:
            for row, values in enumerate(self.data):
                _checked(col_name, kind, optional, values[index], row, option="dtype")
        self._types[index], self._optional[index] = kind, bool(optional)

    def get_column(self, name: str, convert_to: Optional[str] = None) -> Any:
        """The values of one column (`convert_to="numpy"` for an array)."""
        index = self._index(name)
        values = [row[index] for row in self.data]
        if convert_to == "numpy":
            import numpy as np

            return np.array(values)
        return values

    def get_index(self) -> list[int]:
        """Row numbers."""
        return list(range(len(self.data)))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """(row number, row values) for each row, as W&B's `Table.iterrows`."""
        yield from enumerate(self.data)

    def get_dataframe(self) -> Any:
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return self.columns == other.columns and self.data == other.data

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"

    def _index(self, name: str) -> int:
        if name not in self.columns:
            raise ConfigError("name", f"no column {name!r}; the table has {self.columns}")
        return self.columns.index(name)

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        start = self._logged_rows if self.log_mode == "INCREMENTAL" else 0
        value: dict[str, Any] = {"_type": "table", "columns": self.columns, "log_mode": self.log_mode,
                 "data": [[_cell(v, put) for v in row] for row in self.data[start:]]}  # fmt: skip
        if self.log_mode == "INCREMENTAL":
            value |= {"increment": self._increment, "row_offset": start}
            self._increment, self._logged_rows = self._increment + 1, len(self.data)
        return value


class JoinedTable:
    """Two tables joined on a key (W&B's `wandb.JoinedTable`): `join_key` names the key column of
    both, or is a pair (key of table1, key of table2). Stored as their inner join (a table value)."""

    def __init__(self, table1: Table, table2: Table, join_key: Union[str, Sequence[str]]) -> None:
        for option, table in (("table1", table1), ("table2", table2)):
            if not isinstance(table, Table):
                raise ConfigError(option, f"expected a th.Table, got {type(table).__name__}")
        keys = (join_key, join_key) if isinstance(join_key, str) else tuple(join_key)
        if len(keys) != 2 or not all(isinstance(k, str) for k in keys):
            raise ConfigError("join_key", f"expected a column name or a pair of them, got {join_key!r}")
        for option, table, key in (("table1", table1, keys[0]), ("table2", table2, keys[1])):
            if key not in table.columns:
                raise ConfigError("join_key", f"{option} has no column {key!r}; it has {table.columns}")
        self.table1, self.table2, self.join_key = table1, table2, join_key
        self._keys = keys

    def joined(self) -> Table:
        """The inner join: the key column, table1's other columns, then table2's (a name already
        taken gets a `_2` suffix); a key matching several rows gives every pair, table1's order first."""
        return self._join()[0]

    def _join(self) -> tuple[Table, dict[str, Any]]:
        left_key, right_key = self._keys
        left = [c for c in self.table1.columns if c != left_key]
        right = [c for c in self.table2.columns if c != right_key]
        taken = {left_key, *left}
        names = [f"{c}_2" if c in taken else c for c in right]
        by_key: dict[Any, list[list[Any]]] = {}
        right_index = self.table2.columns.index(right_key)
        for row in self.table2.data:
            by_key.setdefault(_hashable(row[right_index]), []).append(row)
        data = []
        left_index = self.table1.columns.index(left_key)
        for row in self.table1.data:
            for match in by_key.get(_hashable(row[left_index]), []):
                data.append([row[left_index]] + [v for i, v in enumerate(row) if i != left_index]
                            + [v for i, v in enumerate(match) if i != right_index])  # fmt: skip
        key = self.join_key if isinstance(self.join_key, str) else list(self.join_key)
        table = Table(columns=[left_key, *left, *names], data=data, allow_mixed_types=True)
        return table, {"key": key, "left_columns": left, "right_columns": names}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JoinedTable):
            return NotImplemented
        return (self.table1, self.table2, self._keys) == (other.table1, other.table2, other._keys)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JoinedTable(join_key={self.join_key!r}, rows={len(self.joined())})"

    def _to_value(self, put: PutBytes) -> dict[str, Any]:
        table, joined = self._join()
        return {**table._to_value(put), "joined": joined}


def is_media(value: Any) -> bool:
    """A value that stores itself: `th.Table`, `th.Image`, ... and every other media or plot type
    (each has `_to_value(put)` returning its stored form, a dict with a `_type`)."""
    return callable(getattr(type(value), "_to_value", None))


def _cell(value: Any, put: PutBytes) -> Any:
    if is_media(value):
        return value._to_value(put)
    if value is None or type(value) in (str, int, float, bool):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    return str(value)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _per_column(option: str, given: Any, width: int) -> list[Any]:
    if not isinstance(given, (list, tuple)):
        return [given] * width
    if len(given) != width:
        raise ConfigError(option, f"expected one per column ({width}), got {len(given)}")
    return list(given)


def _declared(dtype: Any) -> Optional[str]:
    """The checked kind of a declared column type; None when tracehouse does not check it."""
    if dtype is None:
        return None
    if isinstance(dtype, type) and dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype]
    cls = dtype if isinstance(dtype, type) else type(dtype)
    if cls.__module__.startswith("numpy"):
        kind = getattr(getattr(dtype, "dtype", None), "kind", None) or getattr(dtype, "kind", None)
        if kind is None:
            import numpy as np

            kind = np.dtype(dtype).kind
        return {"i": "number", "u": "number", "f": "number", "b": "bool", "U": "str"}.get(kind)
    return _WANDB_TYPES.get(cls.__name__)


def _kind(value: Any) -> str:
    """A value's type as a table column sees it (ints and floats are numbers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if getattr(value, "ndim", None) == 0 and kind is not None:  # a numpy scalar
        return {"i": "number", "u": "number", "f": "number", "b": "bool", "U": "str"}.get(kind, type(value).__name__)
    return type(value).__name__


def _checked(column: str, expected: Optional[str], optional: bool, value: Any, row: int,
             option: str = "data") -> Optional[str]:  # fmt: skip
    """The column's type once `value` is in it; raises when the value does not fit."""
    if expected == _ANY:
        return expected
    missing = value is None or (isinstance(value, float) and math.isnan(value) and expected != "number")
    if missing:
        if optional or value is not None:
            return expected
        raise ConfigError(option, f"column {column!r} row {row}: None in a column that is not optional")
    kind = _kind(value)
    if expected is None:
        return kind
    if kind != expected:
        raise ConfigError(option, f"column {column!r} row {row}: expected {expected}, got {kind} {value!r} "
                                  "(pass allow_mixed_types=True to allow it)")  # fmt: skip
    return expected
