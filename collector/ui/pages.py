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
from tracehouse.collector.ui import evals_pages, login, media_route, ranges, runs_pages, trace_pages, value_views
from tracehouse.collector.ui import params as args
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui.render import api, page, visible_projects
from tracehouse.collector.ui.svg import Series, line_chart, parallel_coordinates, smooth

router = APIRouter()
router.include_router(login.router)
router.include_router(media_route.router)
router.include_router(runs_pages.router)
router.include_router(trace_pages.router)  # /traces, /traces/{id}, /sessions, /users (and their JSON twins)
router.include_router(evals_pages.router)
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
    return await collector.read(data.sweep, collector.sweeps, project, request.path_params["sweep_id"])


# --- what each page adds to its data ---------------------------------------------------------------
async def dashboard_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    window, by = args.dashboard_args(request.query_params)
    result = await dashboard_data(request, collector, project)
    return {"by": by, "data": result, "charts": _dashboard_charts(result), **_range_values(request, window, result)}


def _range_values(request: Request, window: uq.TimeRange, result: dict[str, Any]) -> dict[str, Any]:
    """The range picker's state and the empty state's links of a page with a time window."""
    params = request.query_params
    empty = ranges.with_links(result.get("empty"), request.url.path, {**params, "project": result["project"]})
    return {"picker": ranges.picker(window), "empty": empty, "base_url": str(request.base_url).rstrip("/")}


async def run_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    x, weight = args.run_view(request.query_params)
    result = await run_data(request, collector, project)
    charts = _run_charts(result["metrics"], x, weight)
    media = value_views.media_path(project, result["run_id"])
    values = [value_views.render(entry, media, _changed_url(request)) for entry in result["values"]]
    return {"run_id": result["run_id"], "data": result, "params": {"x": x, "smooth": weight}, "charts": charts,
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
    scored = [t for t in result["trials"] if t["metric"] is not None]
    metric = result["metric"] or "metric"
    points = [{**t["params"], metric: t["metric"], "run_id": t["run_id"]} for t in scored]
    charts = [
        line_chart(
            f"{metric} by trial",
            [Series(metric, [(t["trial"], t["metric"]) for t in scored])],
            chart_id="metric-by-trial",
        ),
        parallel_coordinates("Parameters and metric", result["param_names"], points, metric, result["goal"]),
    ]
    return {"sweep_id": result["sweep_id"], "data": result, "charts": charts}


def _run_charts(metrics: dict[str, list[list[float]]], x: str, weight: float) -> list[str]:
    index = 2 if x == "time" else 0
    return [
        line_chart(
            key,
            [Series(key, smooth([(p[index], p[1]) for p in points], weight))],
            x_time=x == "time",
            chart_id=f"metric-{key}",
        )
        for key, points in sorted(metrics.items())
    ]


def _dashboard_charts(result: dict[str, Any]) -> list[str]:
    every = result["all"]["points"]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for point in result["series"]["points"]:
        by_group.setdefault(point["group"] or "—", []).append(point)

    def lines(field: str) -> list[Series]:
        return [Series(name, [(p["t"], p[field]) for p in points]) for name, points in sorted(by_group.items())]

    error_rate = [Series("error rate", [(p["t"], p["errors"] / p["count"]) for p in every])]
    percentiles = [Series(f, [(p["t"], p[f"{f}_ms"]) for p in every]) for f in ("p50", "p95", "p99")]
    return [
        line_chart("Latency (ms)", percentiles, x_time=True, y_label="ms", chart_id="latency"),
        line_chart(f"p95 by {result['by']} (ms)", lines("p95_ms"), x_time=True, chart_id="p95-by-group"),
        line_chart("Calls", lines("count"), x_time=True, chart_id="calls"),
        line_chart("Error rate", error_rate, x_time=True, chart_id="error-rate-chart"),
        line_chart("Tokens", lines("tokens"), x_time=True, chart_id="tokens-chart"),
        line_chart("Cost (USD)", lines("cost_usd"), x_time=True, chart_id="cost-chart"),
    ]


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
