"""What each dashboard page shows, as JSON-able dicts: the page renders it, `/api/v1/ui/<page>` returns it.

One function per page, over the same query layer as the rest of the API (`collector/ui/queries.py`, the
named reads, the sweep controller), so the pages and the API cannot disagree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from tracehouse._errors import NotFoundError
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.reads import run_read
from tracehouse.collector.sweeps.controller import SweepController
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui import ranges
from tracehouse.collector.ui.messages import messages

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store


def dashboard(store: Store, project: str, window: uq.TimeRange, by: str) -> dict[str, Any]:
    """Totals, series overall and by group, the group table and the slowest calls."""
    sets = uq.dashboard_sets(store, project, window, by)
    return {
        "project": project, "range": window.label, "start": window.start.isoformat(), "end": window.end.isoformat(),
        "window": window.as_dict(), "by": by, "overview": sets.overview, "all": sets.every, "series": sets.series,
        "groups": sets.groups,
        "slowest": uq.slowest(store, project, window),
        "empty": ranges.empty_state(store, project, window, sets.overview["count"]),
    }  # fmt: skip


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
        span["messages"] = messages(span.get("input"))  # any folded format (ui/messages.py)
        span["output_messages"] = messages(span.get("output"))
        span["documents"] = _documents(span.get("context"))
    return {"project": project, "trace_id": trace_id, "duration_ms": round(total, 3), "spans": spans}


def _json(text: Any) -> Any:
    if not isinstance(text, str) or text.strip()[:1] not in ("[", "{"):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _documents(text: Any) -> list[str]:
    value = _json(text)
    if not isinstance(value, list):
        return [text] if isinstance(text, str) and text else []
    return [d if isinstance(d, str) else orjson.dumps(d).decode() for d in value]


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
