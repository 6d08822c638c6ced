"""The data of a run's logged values (`run_values`, `run_tables`) for the run page.

Every key the run logged that is not a number (tables, charts, images, histograms, audio, video,
text, alerts, ...) with the steps it was logged at and its value at one step: the step the page
asks for (`at.<key>=N`), else the latest. A table's rows come a page at a time (`page.<key>`,
`sort.<key>` = a column, `desc.<key>`), 25 to a page; a chart's rows (a table with a `chart`
spec) come whole, up to 5,000. An incremental table at step N holds every row logged up to N.
All SQL is bound: keys, steps and columns are parameters, never text in the statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import orjson

from tracehouse._errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

PAGE_ROWS = 25
CHART_ROWS = 5_000
STEPS_KEPT = 500  # the step picker offers a key's last 500 steps
MAX_KEYS = 100

_KEYS = (
    "SELECT key, any(type) AS type, arraySlice(groupArray(step), -{n:UInt32}) AS steps, count() AS logged "
    "FROM (SELECT key, type, step FROM run_values FINAL WHERE project = {p:String} AND run_id = {r:String} "
    "AND NOT startsWith(key, '_define_metric/') ORDER BY key, step) GROUP BY key ORDER BY key LIMIT {k:UInt32}"
)
_VALUES = (
    "SELECT key, step, value FROM run_values FINAL WHERE project = {p:String} AND run_id = {r:String} "
    "AND has({pairs:Array(String)}, concat(key, '@', toString(step)))"
)
_ROWS = (
    "SELECT row_index, row FROM run_tables FINAL WHERE project = {p:String} AND run_id = {r:String} "
    "AND key = {k:String} AND step {cmp} {s:Int64} ORDER BY {order} LIMIT {n:UInt32} OFFSET {o:UInt32}"
)
_COUNT = (
    "SELECT count() FROM run_tables FINAL WHERE project = {p:String} AND run_id = {r:String} AND key = {k:String} "
    "AND step {cmp} {s:Int64}"
)
# sorting by a column: numbers by value, then text; the column name is a bound parameter
_ORDERS = {
    None: "step, row_index",
    False: "JSONExtractFloat(row, {c:String}), JSONExtractString(row, {c:String}), row_index",
    True: "JSONExtractFloat(row, {c:String}) DESC, JSONExtractString(row, {c:String}) DESC, row_index",
}


def view_args(params: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per key: the chosen `step`, table `page`, `sort` column and `desc` from `at.<key>`, `page.<key>`,
    `sort.<key>`, `desc.<key>`; ConfigError naming a value that is not a number."""
    chosen: dict[str, dict[str, Any]] = {}
    for name, raw in params.items():
        prefix, _, key = name.partition(".")
        if not key or prefix not in ("at", "page", "sort", "desc"):
            continue
        entry = chosen.setdefault(key, {})
        if prefix == "sort":
            entry["sort"] = raw or None
        elif prefix == "desc":
            entry["desc"] = raw in ("1", "true")
        else:
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
            if number < 0:
                raise ConfigError(name, f"expected a number from 0, got {raw!r}")
            entry["step" if prefix == "at" else "page"] = number
    return chosen


def run_values(
    store: Store, project: str, run_id: str, chosen: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each logged key: its type, steps, the step shown and the value there (tables with their rows)."""
    bound = {"p": project, "r": run_id}
    keys = store.query_df(_KEYS, {**bound, "n": STEPS_KEPT, "k": MAX_KEYS})
    entries: list[dict[str, Any]] = []
    for key, kind, steps, logged in keys.itertuples(index=False):
        listed = [int(s) for s in steps]
        wanted = chosen.get(str(key), {}).get("step")
        if wanted is not None and wanted not in listed:
            raise NotFoundError(f"{key!r} was not logged at step {wanted} (its last steps: {listed[-5:]})")
        step = listed[-1] if wanted is None else wanted
        entries.append({"key": str(key), "type": str(kind), "steps": listed, "logged": int(logged), "step": step})
    if not entries:
        return []
    pairs = [f"{e['key']}@{e['step']}" for e in entries]
    found = store.query_df(_VALUES, {**bound, "pairs": pairs})
    values = {(str(k), int(s)): v for k, s, v in found.itertuples(index=False)}
    for entry in entries:
        entry["value"] = _parsed(values.get((entry["key"], entry["step"])))
        if isinstance(entry["value"], dict) and entry["value"].get("_type") == "table":
            entry["table"] = _table_rows(store, bound, entry, chosen.get(entry["key"], {}))
    return entries


def _parsed(text: Any) -> Any:
    try:
        return orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        return text


def _table_rows(store: Store, bound: dict[str, Any], entry: dict[str, Any], view: Mapping[str, Any]) -> dict[str, Any]:
    value = entry["value"]
    columns = [str(c) for c in value.get("columns") or []]
    incremental = value.get("log_mode") == "INCREMENTAL"
    cmp = "<=" if incremental else "="
    where = {**bound, "k": entry["key"], "s": entry["step"]}
    chart = isinstance(value.get("chart"), dict)
    sort = view.get("sort")
    if sort is not None and sort not in columns:
        raise ConfigError(f"sort.{entry['key']}", f"no column {sort!r}; the table has {columns}")
    page = int(view.get("page") or 0)
    limit, offset = (CHART_ROWS, 0) if chart else (PAGE_ROWS, page * PAGE_ROWS)
    order = _ORDERS[None if sort is None else bool(view.get("desc"))]
    sql = _ROWS.replace("{cmp}", cmp).replace("{order}", order)  # both from the fixed lists above
    rows = store.query_df(sql, {**where, "n": limit, "o": offset, **({"c": sort} if sort else {})})
    total = store.query_rows(_COUNT.replace("{cmp}", cmp), where)[1][0][0]
    parsed = [_parsed(text) for text in rows["row"]] if not rows.empty else []
    return {"columns": columns, "rows": [r if isinstance(r, dict) else {} for r in parsed], "total": int(total),
            "page": page, "pages": max(1, -(-int(total) // PAGE_ROWS)), "sort": sort, "desc": bool(view.get("desc")),
            "offset": offset}  # fmt: skip


_REFERENCED = (
    "SELECT value FROM run_values FINAL WHERE project = {p:String} AND run_id = {r:String} "
    "AND position(value, {d:String}) > 0 LIMIT 3 UNION ALL SELECT row FROM run_tables FINAL "
    "WHERE project = {p:String} AND run_id = {r:String} AND position(row, {d:String}) > 0 LIMIT 3"
)


def media_of(store: Store, project: str, run_id: str, digest: str) -> tuple[str, str]:
    """(value type, format) of the blob `digest` as a value (or a table cell, or an image's mask) of
    the run holds it; NotFoundError when the run logged no such blob."""
    frame = store.query_df(_REFERENCED, {"p": project, "r": run_id, "d": digest})
    for text in frame.iloc[:, 0] if not frame.empty else []:
        found = _find_digest(_parsed(text), digest, "")
        if found is not None:
            return found
    raise NotFoundError(f"run {run_id!r} logged no media {digest}")


def _find_digest(value: Any, digest: str, kind: str) -> tuple[str, str] | None:
    if isinstance(value, dict):
        kind = str(value.get("_type") or kind)
        if value.get("digest") == digest:
            return kind or "image", str(value.get("format") or "")
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _find_digest(child, digest, kind)
        if found is not None:
            return found
    return None


__all__ = ["PAGE_ROWS", "media_of", "run_values", "view_args"]
