"""What each dashboard page shows, as JSON-able dicts: the page renders it, `/api/v1/ui/<page>` returns it.

One function per page, over the same query layer as the rest of the API (`collector/ui/queries.py`, the
named reads, the sweep controller), so the pages and the API cannot disagree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.reads import flat_values, run_read
from tracehouse.collector.sweeps.controller import SweepController
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui import ranges

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

RUN_COLUMNS = ("run_id", "name", "state", "created_at", "updated_at")


def dashboard(store: Store, project: str, window: uq.TimeRange, by: str) -> dict[str, Any]:
    """Totals, series overall and by group, the group table and the slowest calls."""
    uq.check_group(by)
    overview = uq.overview(store, project, window)
    return {
        "project": project, "range": window.label, "start": window.start.isoformat(), "end": window.end.isoformat(),
        "window": window.as_dict(), "by": by, "overview": overview, "all": uq.series(store, project, window, None),
        "series": uq.series(store, project, window, by), "groups": uq.groups(store, project, window, by),
        "slowest": uq.slowest(store, project, window),
        "empty": ranges.empty_state(store, project, window, overview["count"]),
    }  # fmt: skip


def traces(
    store: Store, project: str, window: uq.TimeRange, filters: uq.TraceFilters, before: Optional[str]
) -> dict[str, Any]:
    """A page of the trace list (`empty`: what to say when the window, unfiltered, holds nothing)."""
    listed = uq.trace_list(store, project, window, filters, before)
    filtered = before is not None or any(v is not None for v in vars(filters).values())
    empty = None if filtered else ranges.empty_state(store, project, window, len(listed["traces"]))
    return {"project": project, "range": window.label, "window": window.as_dict(), **listed, "empty": empty}


def _flat(span: dict[str, Any], depth: int, out: list[dict[str, Any]]) -> None:
    out.append({**{k: v for k, v in span.items() if k != "children"}, "depth": depth})
    for child in span.get("children", []):
        _flat(child, depth + 1, out)


def trace(store: Store, project: str, trace_id: str) -> dict[str, Any]:
    """A trace's spans in tree order (with depth and waterfall offsets), ready for a waterfall."""
    tree = q.trace_tree(store, project, trace_id)
    spans: list[dict[str, Any]] = []
    if tree.get("span_id"):
        _flat(tree, 0, spans)
    else:
        for child in tree["children"]:
            _flat(child, 0, spans)
    start = min(s["start_time"] for s in spans)
    end = max(s["end_time"] for s in spans)
    total = max((end - start).total_seconds() * 1000, 1e-6)
    for span in spans:
        span["offset_pct"] = round((span["start_time"] - start).total_seconds() * 1000 / total * 100, 3)
        span["width_pct"] = max(0.3, round(float(span["duration_ms"]) / total * 100, 3))
        span["messages"] = _messages(span.get("input"))
        span["documents"] = _documents(span.get("context"))
    return {"project": project, "trace_id": trace_id, "duration_ms": round(total, 3), "spans": spans}


def _json(text: Any) -> Any:
    if not isinstance(text, str) or text.strip()[:1] not in ("[", "{"):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _messages(text: Any) -> Optional[list[dict[str, str]]]:
    """Chat messages in a span's input (a list of {role, content}, or {"messages": [...]}), else None."""
    value = _json(text)
    if isinstance(value, dict):
        value = value.get("messages")
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) and "role" in m for m in value):
        return None
    return [{"role": str(m.get("role")), "content": m["content"] if isinstance(m.get("content"), str)
             else orjson.dumps(m.get("content")).decode()} for m in value]  # fmt: skip


def _documents(text: Any) -> list[str]:
    value = _json(text)
    if not isinstance(value, list):
        return [text] if isinstance(text, str) and text else []
    return [d if isinstance(d, str) else orjson.dumps(d).decode() for d in value]


def runs(store: Store, project: str, filters: Optional[dict[str, Any]], sort: Optional[str], desc: bool,
         columns: Optional[list[str]]) -> dict[str, Any]:  # fmt: skip
    """The runs table: fixed columns plus the chosen config./summary. columns, filtered and sorted. Values
    are as logged (an int stays an int); every row holds every chosen column, null where the run lacks it."""
    frame = run_read(store, "runs", project, {"c": 120_000, **({"filters": filters} if filters else {})})
    rows = []
    for record in frame.to_dict("records"):
        flat = {k: record[k] for k in (*RUN_COLUMNS, "tags", "group", "job_type", "sweep_id") if k in record}
        for part in ("config", "summary"):
            flat.update(_flatten(orjson.loads(record[part] or "{}"), f"{part}."))
        rows.append(flat)
    available = sorted({k for r in rows for k in r if k.startswith(("config.", "summary."))})
    chosen = [c for c in columns if c in available] if columns is not None else available[:8]
    for row in rows:
        row.update({c: None for c in chosen if c not in row})
    if sort:
        if sort not in (*RUN_COLUMNS, *available):
            raise ConfigError("sort", f"no column {sort!r} to sort by")
        present = [r for r in rows if r.get(sort) is not None]
        present.sort(key=lambda r: (isinstance(r[sort], str), r[sort]), reverse=desc)
        rows = present + [r for r in rows if r.get(sort) is None]
    return {"project": project, "columns": [*RUN_COLUMNS, *chosen], "available": available, "runs": rows,
            "sort": sort, "desc": desc}  # fmt: skip


def _flatten(data: Any, prefix: str) -> dict[str, Any]:
    """Dotted scalar columns of a config or summary (logged objects, a table or an image, left out)."""
    values = flat_values(data, prefix) if isinstance(data, dict) else {}
    return {key: value for key, value in values.items() if not isinstance(value, dict)}


def run(store: Store, project: str, run_id: str) -> dict[str, Any]:
    """One run: its row, config, summary, every metric's history, files and artifacts."""
    found = run_read(store, "run", project, {"r": run_id})
    if found.empty:
        raise NotFoundError(f"no run {run_id!r} in project {project!r}")
    row = found.iloc[0]
    history = run_read(store, "history", project, {"r": run_id})
    metrics: dict[str, list[list[float]]] = {}
    for step, key, value, stamp in history.itertuples(index=False):
        if math.isfinite(float(value)):
            metrics.setdefault(str(key), []).append([int(step), float(value), stamp.timestamp()])
    listed = run_read(store, "runs", project, {"c": 120_000, "filters": {"run_id": run_id}})
    state = str(listed["state"].iloc[0]) if not listed.empty else str(row["state"])  # crashed when its process died
    files = run_read(store, "run_files", project, {"r": run_id})
    artifacts = run_read(store, "run_artifacts", project, {"r": run_id})
    return {
        "project": project, "run_id": run_id, "name": str(row["name"]), "state": state,
        "config": orjson.loads(row["config"] or "{}"), "summary": orjson.loads(row["summary"] or "{}"),
        "metrics": metrics, "files": files.to_dict("records") if not files.empty else [],
        "artifacts": artifacts.to_dict("records") if not artifacts.empty else [],
    }  # fmt: skip


def compare(store: Store, project: str, run_ids: list[str]) -> dict[str, Any]:
    """Several runs side by side: their metrics (for overlaid charts) and their configs."""
    if not 1 <= len(run_ids) <= 10:
        raise ConfigError("ids", f"choose 1 to 10 runs to compare, got {len(run_ids)}")
    chosen = [run(store, project, run_id) for run_id in run_ids]
    keys = sorted({k for r in chosen for k in r["metrics"]})
    config_keys = sorted({k for r in chosen for k in _flatten(r["config"], "")})
    configs = {r["run_id"]: _flatten(r["config"], "") for r in chosen}
    return {"project": project, "runs": [{k: r[k] for k in ("run_id", "name", "state", "metrics")} for r in chosen],
            "keys": keys, "config_keys": config_keys, "configs": configs}  # fmt: skip


def sweeps(store: Store, project: str) -> dict[str, Any]:
    """The project's sweeps, newest first."""
    _, rows = store.query_rows(
        "SELECT sweep_id, name, method, state, created_at FROM sweeps FINAL WHERE project = {p:String} "
        "ORDER BY created_at DESC",
        {"p": project},
    )
    keys = ("sweep_id", "name", "method", "state", "created_at")
    return {"project": project, "sweeps": [dict(zip(keys, r, strict=True)) for r in rows]}


def sweep(controller: SweepController, project: str, sweep_id: str) -> dict[str, Any]:
    """A sweep's status: trials, best, the parameters to plot."""
    status = controller.status(project, sweep_id)
    status["param_names"] = sorted({k for t in status["trials"] for k in t["params"]})
    return status
