"""W&B's Table semantics: column types, log modes, iterrows / computed columns / cast, joined tables."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracehouse as th
from tracehouse.tracking.media import JoinedTable, Table


def _rows(run_id: str, key: str) -> list[tuple[int, int, dict[str, Any]]]:
    found = th.query(
        "SELECT step, row_index, row FROM run_tables WHERE run_id = {r:String} AND key = {k:String} "
        "ORDER BY step, row_index",
        {"r": run_id, "k": key},
    )
    return [(int(r.step), int(r.row_index), json.loads(r.row)) for r in found.itertuples()]


def _values(run_id: str, key: str) -> list[dict[str, Any]]:
    found = th.query(
        "SELECT value FROM run_values WHERE run_id = {r:String} AND key = {k:String} ORDER BY step",
        {"r": run_id, "k": key},
    )
    return [json.loads(v) for v in found.value]


def test_a_column_keeps_one_type_unless_mixed_types_are_allowed() -> None:
    table = Table(columns=["n", "s"], data=[[1, "a"], [2.5, None], [np.int64(3), "c"]])  # ints, floats: numbers
    with pytest.raises(th.ConfigError, match=r"column 's' row 3: expected str, got number 4"):
        table.add_data(4, 4)
    assert len(table) == 3  # the refused row is not added
    with pytest.raises(ValueError, match=r"column 'n' row 1: expected number, got str"):
        Table(columns=["n"], data=[[1], ["x"]])
    with pytest.raises(th.ConfigError, match=r"column 'b' row 1: expected bool, got number"):
        Table(columns=["b"], data=[[True], [1]])
    mixed = Table(columns=["v"], data=[[1], ["x"], [None], [[1, 2]]], allow_mixed_types=True)
    assert mixed.get_column("v") == [1, "x", None, [1, 2]]
    with pytest.raises(th.ConfigError, match=r"column 'a' row 1: None in a column that is not optional"):
        Table(columns=["a"], data=[[1], [None]], optional=False)
    per_column = Table(columns=["a", "b"], data=[[1, None]], optional=[False, True])
    with pytest.raises(th.ConfigError, match="column 'a' row 1"):
        per_column.add_data(None, 2)
    with pytest.raises(th.ConfigError, match=r"column 'z' row 1: expected str"):
        Table(columns=["a"], data=[[1], [2]]).add_column("z", ["x", 1])
    with pytest.raises(th.ConfigError, match="optional: expected one per column"):
        Table(columns=["a", "b"], optional=[True])
    # pandas missing values (NaN) do not break a column of strings
    frame = Table(dataframe=pd.DataFrame({"s": ["x", np.nan, "z"], "f": [1.0, np.nan, 2.0]}))
    assert len(frame) == 3


def test_dtype_and_cast_check_the_simple_types() -> None:
    with pytest.raises(th.ConfigError, match=r"column 'a' row 0: expected str, got number"):
        Table(columns=["a", "b"], data=[[1, 2]], dtype=[str, int])
    typed = Table(columns=["a", "b"], data=[["x", 2]], dtype=[str, float])
    with pytest.raises(th.ConfigError, match=r"column 'b' row 1: expected number"):
        typed.add_data("y", "2")
    assert len(Table(columns=["a"], data=[[1.5]], dtype=np.float32)) == 1  # one dtype for every column

    class ImageType:  # a wandb.data_types class tracehouse does not have: accepted, not checked
        pass

    class StringType:  # W&B's StringType, by name
        pass

    assert len(Table(columns=["a"], data=[[1]], dtype=ImageType)) == 1
    with pytest.raises(th.ConfigError, match="expected str"):
        Table(columns=["a"], data=[[1]], dtype=StringType())
    table = Table(columns=["a", "b"], data=[[1, "x"], [2, None]])
    table.cast("a", float)
    with pytest.raises(th.ConfigError, match=r"dtype: column 'b' row 1: None in a column that is not optional"):
        table.cast("b", str)
    table.cast("b", str, optional=True)
    with pytest.raises(th.ConfigError, match=r"dtype: column 'a' row 0: expected str"):
        table.cast("a", str)
    with pytest.raises(th.ConfigError, match="no column 'q'"):
        table.cast("q", int)
    mixed = Table(columns=["a"], data=[[1], ["x"]], allow_mixed_types=True)
    mixed.cast("a", ImageType)  # unknown types leave the column as it was: unchecked
    mixed.add_data(2.0)
    with pytest.raises(th.ConfigError, match="log_mode: expected one of IMMUTABLE, MUTABLE, INCREMENTAL"):
        Table(columns=["a"], log_mode="APPEND")


def test_iterrows_index_computed_columns_and_equality() -> None:
    table = Table(columns=["x", "y"], data=[[1, 2], [3, 4]])
    assert list(table.iterrows()) == [(0, [1, 2]), (1, [3, 4])]
    assert table.get_index() == [0, 1]
    assert table.add_computed_columns(lambda i, row: {"sum": row["x"] + row["y"], "i": i}) is table
    assert table.columns == ["x", "y", "sum", "i"] and table.get_column("sum") == [3, 7]
    assert table.get_column("i", convert_to="numpy").tolist() == [0, 1]
    with pytest.raises(th.ConfigError, match="fn: expected a dict of new columns for row 0"):
        table.add_computed_columns(lambda i, row: row["x"])  # type: ignore[arg-type,return-value]
    with pytest.raises(th.ConfigError, match="'odd' was computed for 1 of 2 rows"):
        table.add_computed_columns(lambda i, row: {"odd": 1} if i else {})
    same = Table(columns=["x", "y", "sum", "i"], data=[[1, 2, 3, 0], [3, 4, 7, 1]])
    assert table == same and table != Table(columns=["x", "y", "sum", "i"], data=[[1, 2, 3, 0]])
    assert table != Table(columns=["a", "b", "c", "d"], data=same.data) and table != "a table"


def test_log_modes_store_whole_tables_or_increments(th_env: th.Settings) -> None:
    immutable = Table(columns=["a"], data=[[1]])
    mutable = Table(columns=["a"], data=[[1]], log_mode="MUTABLE")
    incremental = Table(columns=["q", "score"], data=[["q0", 0.1], ["q1", 0.2]], log_mode="INCREMENTAL")
    with th.init(project=th_env.project) as run:
        run.log({"fixed": immutable, "live": mutable, "inc": incremental})
        mutable.add_data(2)
        incremental.add_data("q2", 0.3)
        run.log({"fixed": immutable, "live": mutable, "inc": incremental})
        run.log({"inc": incremental})  # nothing new: an empty increment
        incremental.add_data("q3", 0.4)
        incremental.add_data("q4", 0.5)
        with pytest.raises(th.ConfigError, match="INCREMENTAL table cannot get new columns"):
            incremental.add_column("late", [1, 2, 3, 4, 5])
        run.log({"inc": incremental})
    assert [(s, i, r["a"]) for s, i, r in _rows(run.id, "fixed")] == [(0, 0, 1), (1, 0, 1)]  # stored at each log
    assert [(s, i, r["a"]) for s, i, r in _rows(run.id, "live")] == [(0, 0, 1), (1, 0, 1), (1, 1, 2)]
    assert [v["log_mode"] for v in _values(run.id, "live")] == ["MUTABLE", "MUTABLE"]
    assert _values(run.id, "fixed")[0]["log_mode"] == "IMMUTABLE"
    # each increment holds only its new rows; row_index continues, so the whole table is every increment's rows
    rows = _rows(run.id, "inc")
    assert [(s, i, r["q"]) for s, i, r in rows] == [(0, 0, "q0"), (0, 1, "q1"), (1, 2, "q2"), (3, 3, "q3"),
                                                    (3, 4, "q4")]  # fmt: skip
    increments = [(v["log_mode"], v["increment"], v["row_offset"], v["rows"]) for v in _values(run.id, "inc")]
    assert increments == [("INCREMENTAL", 0, 0, 2), ("INCREMENTAL", 1, 2, 1), ("INCREMENTAL", 2, 3, 0),
                          ("INCREMENTAL", 3, 3, 2)]  # fmt: skip
    whole = th.query(
        "SELECT groupArray(JSONExtractString(row, 'q')) AS qs FROM (SELECT row FROM run_tables "
        "WHERE run_id = {r:String} AND key = 'inc' ORDER BY row_index)",
        {"r": run.id},
    )
    assert list(whole.qs.iloc[0]) == ["q0", "q1", "q2", "q3", "q4"]
    assert run.summary["inc"]["increment"] == 3 and run.summary["inc"]["rows"] == 2


def test_a_joined_table_is_stored_as_its_inner_join(th_env: th.Settings) -> None:
    left = Table(columns=["id", "question", "score"], data=[[1, "a?", 0.5], [2, "b?", 0.7], [3, "c?", 0.1]])
    right = Table(columns=["id", "score", "label"], data=[[2, 1.0, "yes"], [1, 0.0, "no"], [2, 0.5, "maybe"]])
    joined = JoinedTable(left, right, "id")
    assert joined.joined() == Table(
        columns=["id", "question", "score", "score_2", "label"],
        data=[[1, "a?", 0.5, 0.0, "no"], [2, "b?", 0.7, 1.0, "yes"], [2, "b?", 0.7, 0.5, "maybe"]],
    )
    assert joined == JoinedTable(left, right, "id") and joined != JoinedTable(left, left, "id")
    other_keys = JoinedTable(left, Table(columns=["qid", "tag"], data=[[3, "t"]]), ("id", "qid"))
    assert other_keys.joined().data == [[3, "c?", 0.1, "t"]]
    with th.init(project=th_env.project) as run:
        run.log({"both": joined, "pair": other_keys})
    rows = th.query(
        "SELECT JSONExtractInt(row, 'id') AS id, JSONExtractString(row, 'label') AS label, "
        "JSONExtractFloat(row, 'score_2') AS right_score FROM run_tables "
        "WHERE run_id = {r:String} AND key = 'both' ORDER BY row_index",
        {"r": run.id},
    )
    assert rows.values.tolist() == [[1, "no", 0.0], [2, "yes", 1.0], [2, "maybe", 0.5]]
    (stored,) = _values(run.id, "both")
    assert stored["_type"] == "table" and stored["rows"] == 3
    assert stored["joined"] == {
        "key": "id",
        "left_columns": ["question", "score"],
        "right_columns": ["score_2", "label"],
    }
    assert _values(run.id, "pair")[0]["joined"]["key"] == ["id", "qid"]
    with pytest.raises(th.ConfigError, match="join_key: table2 has no column 'question'"):
        JoinedTable(left, right, "question")
    with pytest.raises(th.ConfigError, match="join_key: expected a column name or a pair"):
        JoinedTable(left, right, ("id",))
    with pytest.raises(th.ConfigError, match=r"table1: expected a th\.Table, got str"):
        JoinedTable("run/table:v0", right, "id")  # type: ignore[arg-type]


def test_the_collector_continues_row_index_from_row_offset() -> None:
    from tracehouse.collector.store.rows.runs import value_columns

    def indexes(offset: Any) -> list[int]:
        value = {"_type": "table", "columns": ["a"], "data": [[1], [2]], "row_offset": offset}
        record = {"project": "p", "run_id": "r", "step": 0, "time_ns": 0, "values": {"t": value}}
        _, tables, rejected = value_columns([record])
        assert rejected == []
        return list(tables["row_index"])

    assert indexes(5) == [5, 6]
    assert indexes(-1) == indexes("3") == indexes(True) == [0, 1]  # a bad offset is ignored
