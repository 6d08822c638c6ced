"""The `/runs` table and `/runs/compare` pages: their data (the JSON twins return it), what the templates
add (links that keep the view, the column picker's lists), and `/static/runs.js`, the script that keeps
a running run's cells fresh by polling the table's JSON twin (the pages work without it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse._errors import ConfigError
from tracehouse.collector.http.deps import Collector
from tracehouse.collector.ui import run_charts, runs_table
from tracehouse.collector.ui.runs_cells import is_number, label
from tracehouse.collector.ui.runs_compare import compare
from tracehouse.collector.ui.runs_form import OPS, STATES, Condition, RunsView, runs_view, typed_text

RUNS_SCRIPT = (Path(__file__).with_name("static") / "runs.js").read_bytes()
router = APIRouter(include_in_schema=False)


@router.get("/static/runs.js")
async def runs_script() -> Response:
    """The runs table's live refresh (no page has inline script)."""
    return Response(RUNS_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


async def runs_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    """The runs table of the view the query string names."""
    return await collector.read(runs_table.table, collector.store, project, runs_view(request.query_params))


async def runs_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    """The table, plus the links and lists the template needs; a bad view keeps the form as typed."""
    view = RunsView()
    try:
        view = runs_view(request.query_params)
        result = await collector.read(runs_table.table, collector.store, project, view)
    except ConfigError as error:
        error.page_values = _view_values(view, project, None)  # type: ignore[attr-defined]
        raise
    return {"data": result, **_view_values(view, project, result)}


def _view_values(view: RunsView, project: str, result: Any) -> dict[str, Any]:
    pairs = view.query()

    def keep(*dropped: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in pairs if k not in dropped]

    def sort_url(column: str) -> str:
        return view.url(project, sort=column, desc=view.sort == column and not view.desc)

    available = result["available"] if result else []
    group_url = None
    if result and view.group and view.group.startswith("config."):
        group_url = _group_url(view, project)
    return {
        "view": view, "form": view.form, "ops": list(OPS), "states": STATES, "label": label, "is_number": is_number,
        "sort_url": sort_url, "page_url": lambda n: view.url(project, page=n),
        "filter_hidden": keep("state", "tags", "name", "ck", "cop", "cv", "sk", "sop", "sv", "filter", "group",
                              "page"),
        "picker_hidden": keep("cols", "page"), "default_columns_url": view.url(project, columns=None),
        "picker": {"run": list(runs_table.FIELDS), "summary": [k for k in available if k.startswith("summary.")],
                   "config": [k for k in available if k.startswith("config.")]},
        "group_choices": [*runs_table.GROUP_FIELDS, *(k for k in available if k.startswith("config."))],
        "group_url": group_url, "twin_url": "/api/v1/ui/runs?" + urlencode([("project", project), *pairs]),
    }  # fmt: skip


def _group_url(view: RunsView, project: str) -> Any:
    """A function: the URL of this view narrowed to one group (a config condition added to the form)."""

    def url(value: Any) -> str:
        key = str(view.group)[len("config.") :]
        rows = (*view.form.config, Condition(key, "=", typed_text(value)))
        return view.url(project, form=replace(view.form, config=rows), group=None)

    return url


def _compare_ids(request: Request) -> list[str]:
    return [i for raw in request.query_params.getlist("ids") for i in raw.split(",") if i]


async def compare_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    """Runs side by side (`ids`, repeated or comma-separated; `diff=1`: only the differing rows)."""
    only = request.query_params.get("diff") == "1"
    return await collector.read(compare, collector.store, project, _compare_ids(request), only)


async def compare_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    """The diffs and the runs' metric charts, overlaid."""
    x, _ = run_charts.chart_args(request.query_params, list(run_charts.COMPARE_AXES))
    result = await compare_data(request, collector, project)
    charts = run_charts.figures(run_charts.compare_charts(result["runs"], result["keys"], x))
    ids = [("ids", r["run_id"]) for r in result["runs"]]
    toggle = urlencode([("project", project), *ids, *([] if result["only_differences"] else [("diff", "1")])])
    return {"data": result, "charts": charts, "toggle_url": f"/runs/compare?{toggle}",
            "x_choices": run_charts.COMPARE_AXES, "x": x or "step"}  # fmt: skip


__all__ = ["compare_data", "compare_page", "router", "runs_data", "runs_page"]
