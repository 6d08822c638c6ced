"""What the evaluation and dataset pages show, as JSON-able dicts (the pages render them, their twins
under `/api/v1/ui/` return them).

An evaluation is a run with `job_type = 'eval'` (see evals/_runner.py): its config names the dataset
(and its digest), the scorers and the fields; its summary holds the aggregates; its logged table
`examples_table` one row per example and trial (output, error, latency, one column per score, the
example's trace). The examples' inputs and expected answers are the dataset's rows (`dataset_rows`,
by digest); scores without a table (an older run) come from `scores`. Every value is a bound
parameter; sorting and paging happen here, over at most MAX_EXAMPLES examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store.queries import check_project

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

PAGE_ROWS = 50
MAX_EXAMPLES = 20_000
MAX_EVALS = 500
FIXED = ("example", "trial", "output", "error", "latency_ms", "trace_id", "span_id")
SORTABLE = ("example", "trial", "input", "expected", "output", "error", "latency_ms")

_EVALS = (
    "SELECT run_id, name, state, config, summary, created_at FROM runs FINAL WHERE project = {p:String} "
    "AND job_type = 'eval' ORDER BY created_at DESC LIMIT {n:UInt32}"
)
_EVAL = (
    "SELECT run_id, name, state, config, summary, created_at, updated_at FROM runs FINAL WHERE project = {p:String} "
    "AND run_id = {r:String} AND job_type = 'eval'"
)
_TABLE = (
    "SELECT row FROM run_tables FINAL WHERE project = {p:String} AND run_id = {r:String} AND key = 'examples_table' "
    "AND step = (SELECT max(step) FROM run_tables WHERE project = {p:String} AND run_id = {r:String} "
    "AND key = 'examples_table') ORDER BY row_index LIMIT {n:UInt32}"
)
_SCORES = (
    "SELECT example, name, value, error, trace_id, span_id FROM scores FINAL WHERE project = {p:String} "
    "AND run_id = {r:String} AND source = 'eval' ORDER BY example, name LIMIT {n:UInt32}"
)
_DATASET_ROWS = (
    "SELECT row_index, row FROM dataset_rows FINAL WHERE project = {p:String} AND digest = {d:String} "
    "ORDER BY row_index LIMIT {n:UInt32} OFFSET {o:UInt32}"
)


def _json(text: Any, default: Any) -> Any:
    try:
        return orjson.loads(text) if isinstance(text, str) and text else default
    except orjson.JSONDecodeError:
        return default


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) if isinstance(value, (int, float)) and value == value else None


def aggregates(summary: dict[str, Any]) -> dict[str, float]:
    """The aggregate scores of an evaluation's summary (means, pass rates, error rate, mean latency)."""
    return {k: float(v) for k, v in sorted(summary.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and
            (k.endswith((".mean", ".pass_rate")) or k == "error_rate")}  # fmt: skip


def eval_list(store: Store, project: str) -> dict[str, Any]:
    """The project's evaluations, newest first: name, dataset, when, aggregates, examples, errors."""
    _, rows = store.query_rows(_EVALS, {"p": check_project(project), "n": MAX_EVALS})
    evals = []
    for run_id, name, state, config, summary, created in rows:
        config, summary = _json(config, {}), _json(summary, {})
        evals.append({"run_id": run_id, "name": name, "state": state, "dataset": config.get("dataset"),
                      "created_at": created, "aggregates": aggregates(summary), "examples": summary.get("examples"),
                      "errors": summary.get("errors")})  # fmt: skip
    columns = sorted({k for e in evals for k in e["aggregates"]}, key=lambda k: (k in ("error_rate",
                     "latency_ms.mean"), k))  # fmt: skip
    return {"project": project, "evals": evals, "score_columns": columns}


def _eval_run(store: Store, project: str, run_id: str) -> dict[str, Any]:
    columns, rows = store.query_rows(_EVAL, {"p": check_project(project), "r": run_id})
    if not rows:
        raise NotFoundError(f"no evaluation run {run_id!r} in project {project!r}")
    run = dict(zip(columns, rows[0], strict=True))
    run["config"], run["summary"] = _json(run["config"], {}), _json(run["summary"], {})
    return run


def _dataset_examples(store: Store, project: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dataset rows the evaluation ran on, by example id (the row's `id`, else its index)."""
    digest = config.get("dataset_digest")
    if not isinstance(digest, str) or not digest:
        return {}
    _, rows = store.query_rows(_DATASET_ROWS, {"p": project, "d": digest, "n": MAX_EXAMPLES, "o": 0})
    found = {}
    for index, text in rows:
        row = _json(text, {})
        if isinstance(row, dict):
            found[str(row.get("id", index))] = row
    return found


def examples(store: Store, project: str, run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every example (and trial) of an evaluation with its input, expected answer, output, error,
    latency, scores and trace; and the score names."""
    bound = {"p": project, "r": run["run_id"], "n": MAX_EXAMPLES}
    config = run["config"]
    input_field, expected_field = config.get("input_field") or "input", config.get("expected_field") or "expected"
    source = _dataset_examples(store, project, config)
    table = [r for r in (_json(t, None) for (t,) in store.query_rows(_TABLE, bound)[1]) if isinstance(r, dict)]
    _, scored = store.query_rows(_SCORES, bound)
    traces = {str(e): (t, s) for e, _n, _v, _err, t, s in scored if t}
    if not table:  # no logged table: one row per example from its scores
        by_example: dict[str, dict[str, Any]] = {}
        for example, name, value, error, _t, _s in scored:
            entry = by_example.setdefault(str(example), {"example": str(example), "trial": 0})
            entry[name if not error else f"{name}.error"] = error or _number(value)
        table = list(by_example.values())
    names = sorted({k for r in table for k in r if k not in FIXED and not k.endswith(".error")})
    out = []
    for row in table:
        example = str(row.get("example"))
        data = source.get(example, {})
        trace_id, span_id = row.get("trace_id") or traces.get(example, ("", ""))[0], row.get("span_id") or \
            traces.get(example, ("", ""))[1]  # fmt: skip
        out.append({
            "example": example, "trial": row.get("trial", 0),
            "input": data.get(input_field, {k: v for k, v in data.items() if k != expected_field} or None),
            "expected": data.get(expected_field), "output": row.get("output"), "error": row.get("error"),
            "latency_ms": row.get("latency_ms"), "scores": {n: row.get(n) for n in names},
            "score_errors": {n: row[f"{n}.error"] for n in names if row.get(f"{n}.error")},
            "trace_id": trace_id or None, "span_id": span_id or None,
        })  # fmt: skip
    return out, names


def _sort_key(column: str) -> Any:
    def key(example: dict[str, Any]) -> Any:
        value = example["scores"].get(column) if column not in SORTABLE else example.get(column)
        number = _number(value)
        if number is not None:
            return (0, number, "")
        return (1, 0.0, value if isinstance(value, str) else orjson.dumps(value).decode())

    return key


def page_of(rows: list[dict[str, Any]], page: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of rows, and where it is (page, pages, total, offset)."""
    pages = max(1, -(-len(rows) // PAGE_ROWS))
    if page >= pages:
        raise ConfigError("page", f"page {page} is past the last one ({pages - 1})")
    offset = page * PAGE_ROWS
    return rows[offset : offset + PAGE_ROWS], {"page": page, "pages": pages, "total": len(rows), "offset": offset}


def eval_detail(store: Store, project: str, run_id: str, sort: Optional[str], desc: bool, page: int) -> dict[str, Any]:
    """One evaluation: its run, aggregates, and a page of its examples sorted by any column or score."""
    run = _eval_run(store, project, run_id)
    rows, names = examples(store, project, run)
    if sort is not None:
        if sort not in SORTABLE and sort not in names:
            raise ConfigError("sort", f"no column {sort!r}; sort by one of {', '.join([*SORTABLE, *names])}")
        present = [r for r in rows if (r["scores"].get(sort) if sort in names else r.get(sort)) is not None]
        missing = [r for r in rows if (r["scores"].get(sort) if sort in names else r.get(sort)) is None]
        rows = sorted(present, key=_sort_key(sort), reverse=desc) + missing
    shown, where = page_of(rows, page)
    return {
        "project": project, "run_id": run_id, "name": run["name"], "state": run["state"],
        "dataset": run["config"].get("dataset"), "dataset_digest": run["config"].get("dataset_digest"),
        "created_at": run["created_at"], "config": run["config"], "aggregates": aggregates(run["summary"]),
        "scores": names, "examples": shown, "sort": sort, "desc": desc, **where,
        "errors": sum(1 for r in rows if r["error"]),
    }  # fmt: skip


def _verdict(a: Optional[dict[str, Any]], b: Optional[dict[str, Any]], names: list[str]) -> str:
    """How an example changed from a to b: `fixed`, `broke`, `changed` (a score moved), `same`, or
    `added` / `removed`. Pass/fail scores (0 or 1) that flip, and errors that come or go, decide."""
    if a is None or b is None:
        return "added" if a is None else "removed"
    if bool(a["error"]) != bool(b["error"]):
        return "broke" if b["error"] else "fixed"
    flips = [(a["scores"].get(n), b["scores"].get(n)) for n in names]
    binary = [(x, y) for x, y in flips if _number(x) in (0.0, 1.0) and _number(y) in (0.0, 1.0) and x != y]
    if binary:
        return "fixed" if all(_number(y) == 1.0 for _x, y in binary) else "broke"
    return "changed" if any(_number(x) != _number(y) for x, y in flips) else "same"


def compare(store: Store, project: str, a_id: str, b_id: str, only_changed: bool, page: int) -> dict[str, Any]:
    """Two evaluations side by side: aggregate deltas, and per example both outputs, every score with its
    delta and the verdict change (changed examples first)."""
    if not a_id or not b_id:
        raise ConfigError("b" if a_id else "a", "choose two evaluations to compare (?a=RUN_ID&b=RUN_ID)")
    runs = [_eval_run(store, project, run_id) for run_id in (a_id, b_id)]
    (a_rows, a_names), (b_rows, b_names) = (examples(store, project, run) for run in runs)
    names = sorted(set(a_names) | set(b_names))
    a_by = {(r["example"], r["trial"]): r for r in a_rows}
    b_by = {(r["example"], r["trial"]): r for r in b_rows}
    order = {"broke": 0, "fixed": 1, "changed": 2, "added": 3, "removed": 4, "same": 5}
    rows = []
    for key in sorted(set(a_by) | set(b_by), key=lambda k: (str(k[0]), int(k[1] or 0))):
        a, b = a_by.get(key), b_by.get(key)
        deltas = {n: (_number(b["scores"].get(n)) or 0.0) - (_number(a["scores"].get(n)) or 0.0)
                  for n in names if a and b and _number(a["scores"].get(n)) is not None
                  and _number(b["scores"].get(n)) is not None}  # fmt: skip
        either = b or a
        assert either is not None
        rows.append({"example": key[0], "trial": key[1], "input": either["input"], "expected": either["expected"],
                     "a": a, "b": b, "deltas": deltas, "verdict": _verdict(a, b, names)})  # fmt: skip
    rows.sort(key=lambda r: order[r["verdict"]])
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in order}
    shown = [r for r in rows if r["verdict"] != "same"] if only_changed else rows
    page_rows, where = page_of(shown, page)
    agg_a, agg_b = aggregates(runs[0]["summary"]), aggregates(runs[1]["summary"])
    totals = [{"name": k, "a": agg_a.get(k), "b": agg_b.get(k),
               "delta": agg_b[k] - agg_a[k] if k in agg_a and k in agg_b else None,
               "better": "lower" if k in ("error_rate", "latency_ms.mean") else "higher"}
              for k in sorted(set(agg_a) | set(agg_b))]  # fmt: skip
    return {
        "project": project, "a": {k: runs[0][k] for k in ("run_id", "name", "created_at")} | {
            "dataset": runs[0]["config"].get("dataset")},
        "b": {k: runs[1][k] for k in ("run_id", "name", "created_at")} | {"dataset": runs[1]["config"].get("dataset")},
        "scores": names, "aggregates": totals, "counts": counts, "only_changed": only_changed, "rows": page_rows,
        **where,
    }  # fmt: skip


__all__ = ["PAGE_ROWS", "aggregates", "compare", "eval_detail", "eval_list", "examples", "page_of"]
