"""The web UI: server-rendered pages (Jinja2, autoescaped) and their JSON twins under `/api/v1/ui/`.

Pages: `/` (prompt latency dashboard), `/traces`, `/traces/{id}`, `/runs`, `/runs/{id}`,
`/runs/compare?ids=a&ids=b`, `/sweeps`, `/sweeps/{id}`. Every view is a GET with its state in the
query string, so a URL is a shareable view. Each page's data comes from one function (`ui/data.py`)
that its JSON twin returns too; `ui/render.py` turns errors into messages, `ui/login.py` signs in.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tracehouse.collector.http.deps import Caller, Collector, CollectorDep, json_response
from tracehouse.collector.ui import data as data
from tracehouse.collector.ui import (
    evals_pages,
    login,
    media_route,
    ranges,
    reports_pages,
    run_charts,
    runs_pages,
    static_route,
    sweep_views,
    trace_pages,
    value_views,
)
from tracehouse.collector.ui import params as args
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui.dashboard_charts import dashboard_figures
from tracehouse.collector.ui.render import api, page, visible_projects
from tracehouse.collector.ui.svg import parallel_coordinates

router = APIRouter()
router.include_router(login.router)
router.include_router(media_route.router)
router.include_router(runs_pages.router)
router.include_router(trace_pages.router)  # /traces, /traces/{id}, /sessions, /users (and their JSON twins)
router.include_router(evals_pages.router)
router.include_router(reports_pages.router)  # /reports... and /api/v1/reports... (before /static/{name})
router.include_router(static_route.router)
Data = Callable[[Request, Collector, str], Awaitable[dict[str, Any]]]


# --- the data of each page (shared by the page and its JSON twin) ---------------------------------
async def dashboard_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    window, by = args.dashboard_args(request.query_params)
    return await collector.read(data.dashboard, collector.store, project, window, by)


async def run_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    from tracehouse.collector.ui.run_values import run_values, view_args

    run_id = request.path_params["run_id"]
    chosen = view_args(request.query_params)
    result = await collector.read(data.run, collector.store, project, run_id)
    result["values"] = await collector.read(run_values, collector.store, project, run_id, chosen)
    return result


async def sweeps_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return await collector.read(data.sweeps, collector.store, project)


async def sweep_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    assert collector.sweeps is not None
    result = await collector.read(data.sweep, collector.sweeps, project, request.path_params["sweep_id"])
    return {**result, **await collector.read(sweep_views.extras, collector.store, project, result)}


# --- what each page adds to its data ---------------------------------------------------------------
async def dashboard_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    window, by = args.dashboard_args(request.query_params)
    result = await dashboard_data(request, collector, project)
    charts = await collector.read(dashboard_figures, collector.store, project, result)
    return {"by": by, "data": result, "charts": charts, **_range_values(request, window, result)}


def _range_values(request: Request, window: uq.TimeRange, result: dict[str, Any]) -> dict[str, Any]:
    """The range picker's state and the empty state's links of a page with a time window."""
    params = request.query_params
    empty = ranges.with_links(result.get("empty"), request.url.path, {**params, "project": result["project"]})
    return {"picker": ranges.picker(window), "empty": empty, "base_url": str(request.base_url).rstrip("/")}


async def run_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await run_data(request, collector, project)
    rules = await collector.read(run_charts.definitions, collector.store, project, result["run_id"])
    choices = [*run_charts.X_AXES, *run_charts.step_metrics(result["metrics"], rules)]
    x, weight = run_charts.chart_args(request.query_params, choices)
    charts = run_charts.figures(run_charts.run_charts(result["metrics"], rules, x, weight))
    media = value_views.media_path(project, result["run_id"])
    values = [value_views.render(entry, media, _changed_url(request)) for entry in result["values"]]
    return {"run_id": result["run_id"], "data": result, "params": {"x": x or "", "smooth": weight},
            "x_choices": choices, "charts": charts,
            "values": values}  # fmt: skip


def _changed_url(request: Request) -> Callable[[Any], str]:
    """The page's URL with some query parameters set (None: removed)."""

    def url(changes: Any) -> str:
        kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
        return f"{request.url.path}?{urlencode([*kept, *((k, v) for k, v in changes.items() if v is not None)])}"

    return url


async def sweeps_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return {"data": await sweeps_data(request, collector, project)}


async def sweep_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await sweep_data(request, collector, project)
    metric = result["metric"] or "metric"
    points = [{**t["params"], metric: t["metric"], "run_id": t["run_id"]} for t in result["trials"]
              if t["metric"] is not None]  # fmt: skip
    parallel = parallel_coordinates("Parameters and metric", result["param_names"], points, metric, result["goal"],
                                    result["log_params"])  # fmt: skip
    charts = run_charts.figures(sweep_views.sweep_charts(result))
    return {"sweep_id": result["sweep_id"], "data": result, "charts": [charts[0], parallel, *charts[1:]]}


@router.get("/api/v1/projects")
async def project_list(collector: CollectorDep, who: Caller) -> Response:
    """The projects the caller may see."""
    return json_response({"projects": await visible_projects(collector, who)})


# (page path, JSON twin path under /api/v1/ui/, template, navigation tab, page values, data)
PAGES: tuple[tuple[str, str, str, str, Data, Data], ...] = (
    ("/", "dashboard", "dashboard.html", "dashboard", dashboard_page, dashboard_data),
    ("/runs", "runs", "runs.html", "runs", runs_pages.runs_page, runs_pages.runs_data),
    ("/runs/compare", "runs/compare", "compare.html", "runs", runs_pages.compare_page, runs_pages.compare_data),
    ("/runs/{run_id}", "runs/{run_id}", "run.html", "runs", run_page, run_data),
    ("/sweeps", "sweeps", "sweeps.html", "sweeps", sweeps_page, sweeps_data),
    ("/sweeps/{sweep_id}", "sweeps/{sweep_id}", "sweep.html", "sweeps", sweep_page, sweep_data),
)
for _path, _api_path, _template, _tab, _values, _data in PAGES:
    router.add_api_route(f"/api/v1/ui/{_api_path}", api(_data), methods=["GET"])
for _path, _api_path, _template, _tab, _values, _data in PAGES:
    router.add_api_route(
        _path, page(_template, _tab, _values), methods=["GET"], response_class=HTMLResponse, include_in_schema=False
    )


__all__ = ["router"]
