"""The web UI: server-rendered pages (Jinja2, autoescaped) and their JSON twins under `/api/v1/ui/`.

Pages: `/` (prompt latency dashboard), `/traces`, `/traces/{id}`, `/runs`, `/runs/{id}`,
`/runs/compare?ids=a&ids=b`, `/sweeps`, `/sweeps/{id}`. Every view is a GET with its state in the
query string, so a URL is a shareable view. Bad parameters show a message on the page (400), an
unknown id a 404 page; no stack trace ever reaches the browser. A collector that requires keys asks
for one at `/login` and keeps it in an HttpOnly cookie.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehouse._errors import ConfigError, NotFoundError, StoreError
from tracehouse.collector.store import queries as q
from tracehouse.collector.ui import data as data
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui.svg import Series, line_chart, parallel_coordinates, smooth

if TYPE_CHECKING:
    from tracehouse.collector.store.keys import Principal
    from tracehouse.collector.store.store import Store
    from tracehouse.collector.sweeps.controller import SweepController

logger = logging.getLogger("tracehouse")
KEY_COOKIE = "tracehouse_key"
CSRF_COOKIE = "tracehouse_csrf"
UI_SCRIPT = (Path(__file__).with_name("static") / "ui.js").read_bytes()


def _float(params: Any, name: str) -> Optional[float]:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None


def _text(params: Any, name: str) -> Optional[str]:
    value = params.get(name)
    return value.strip() or None if isinstance(value, str) else None


def dashboard_args(params: Any) -> tuple[uq.TimeRange, str]:
    return uq.time_range(params.get("range"), _text(params, "start"), _text(params, "end")), params.get("by") or "name"


def trace_args(params: Any) -> tuple[uq.TimeRange, uq.TraceFilters, Optional[str]]:
    filters = uq.TraceFilters(
        name=_text(params, "name"), kind=_text(params, "kind"), model=_text(params, "model"),
        status=_text(params, "status"), min_ms=_float(params, "min_ms"), max_ms=_float(params, "max_ms"),
        text=_text(params, "text"), run_id=_text(params, "run_id"),
    )  # fmt: skip
    window = uq.time_range(params.get("range") or "24h", _text(params, "start"), _text(params, "end"))
    return window, filters, _text(params, "before")


def runs_args(params: Any) -> tuple[Optional[dict[str, Any]], Optional[str], bool, Optional[list[str]]]:
    raw = _text(params, "filter")
    filters = None
    if raw:
        try:
            filters = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ConfigError(
                "filter", f'expected JSON such as {{"config.lr": {{"$lt": 0.01}}}}, got {raw!r}'
            ) from None
    columns = params.getlist("cols") if hasattr(params, "getlist") else None
    return filters, _text(params, "sort"), params.get("desc") == "1", columns or None


def _run_charts(metrics: dict[str, list[list[float]]], x: str, weight: float, name: str = "") -> list[str]:
    index = 2 if x == "time" else 0
    return [
        line_chart(
            key,
            [Series(name or key, smooth([(p[index], p[1]) for p in points], weight))],
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

    def lines(source: dict[str, list[dict[str, Any]]], field: str) -> list[Series]:
        return [Series(name, [(p["t"], p[field]) for p in points]) for name, points in sorted(source.items())]

    error_rate = [Series("error rate", [(p["t"], p["errors"] / p["count"]) for p in every])]
    return [
        line_chart("Latency (ms)", [Series(f, [(p["t"], p[f"{f}_ms"]) for p in every]) for f in ("p50", "p95", "p99")],
                   x_time=True, y_label="ms", chart_id="latency"),
        line_chart(f"p95 by {result['by']} (ms)", lines(by_group, "p95_ms"), x_time=True, chart_id="p95-by-group"),
        line_chart("Calls", lines(by_group, "count"), x_time=True, chart_id="calls"),
        line_chart("Error rate", error_rate, x_time=True, chart_id="error-rate-chart"),
        line_chart("Tokens", lines(by_group, "tokens"), x_time=True, chart_id="tokens-chart"),
        line_chart("Cost (USD)", lines(by_group, "cost_usd"), x_time=True, chart_id="cost-chart"),
    ]  # fmt: skip


def add_ui_routes(
    app: FastAPI,
    store: Store,
    sweeps: SweepController,
    principal: Callable[[Request], Awaitable[Principal]],
    bind_project: Callable[[Principal, Optional[str]], str],
    caught_up: Callable[[], Awaitable[None]],
    verify_key: Optional[Callable[[str], Any]],
) -> None:
    """Register the pages and their JSON endpoints on `app`."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )  # fmt: skip

    async def context(request: Request) -> tuple[str, dict[str, Any]]:
        who = await principal(request)
        await caught_up()
        known = await visible_projects(who)
        asked = request.query_params.get("project") or None
        project = bind_project(who, asked)
        if asked is None and who.admin and project not in known and known:
            project = known[0]  # no project named: the first one with data rather than an empty page
        elif asked is not None and who.admin and project not in known:
            listed = f"the projects are {', '.join(known[:20])}" if known else "the store holds no projects yet"
            raise NotFoundError(f"no project {project!r} in the store; {listed}")
        return project, {"project": project, "projects": known, "request_path": request.url.path}

    async def visible_projects(who: Principal) -> list[str]:
        """The projects a caller may see: all for admin, only its own for a project key."""
        if not who.admin:
            return [str(who.project)]
        return await asyncio.to_thread(q.known_projects, store)

    def html(template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**values), status_code=http_status)

    def page(template: str, name: str) -> Callable[..., Any]:
        """A page handler: `build(request, project)` returns its values; errors become messages."""

        def wrap(build: Callable[[Request, str], Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
            async def handler(request: Request) -> Response:
                values: dict[str, Any] = {"page": name, "project": "", "projects": [], "request_path": "/"}
                try:
                    project, base = await context(request)
                    values.update(base)
                    values.update(await build(request, project))
                    return html(template, **values)
                except ConfigError as error:
                    return html(template, 400, **values, error=str(error))
                except NotFoundError as error:
                    return html("error.html", 404, **values, error=str(error), heading="Not found", status=404)
                except StoreError as error:
                    return html("error.html", 503, **values, error=f"the store is unavailable: {error}",
                                heading="Unavailable", status=503)  # fmt: skip
                except Exception as error:
                    if getattr(error, "status", None) == 401:
                        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        return RedirectResponse(f"/login?{urlencode({'next': here})}", 303)
                    if getattr(error, "status", None) == 403:
                        return html("error.html", 403, **values, error=str(error), heading="Forbidden", status=403)
                    logger.exception("tracehouse UI: %s failed", request.url.path)
                    message = "something went wrong; the collector's log says what"
                    return html("error.html", 500, **values, error=message, heading="Error", status=500)

            return handler

        return wrap

    def api(build: Callable[[Request, str], Awaitable[Any]]) -> Callable[..., Any]:
        async def handler(request: Request) -> Response:
            project, _ = await context(request)
            return Response(orjson.dumps(await build(request, project), default=str), media_type="application/json")

        return handler

    run = asyncio.to_thread

    # --- the data of each page (shared by the page and its JSON endpoint) -------------------------
    async def dashboard_data(request: Request, project: str) -> dict[str, Any]:
        window, by = dashboard_args(request.query_params)
        return await run(data.dashboard, store, project, window, by)

    async def traces_data(request: Request, project: str) -> dict[str, Any]:
        window, filters, before = trace_args(request.query_params)
        return await run(data.traces, store, project, window, filters, before)

    async def trace_data(request: Request, project: str) -> dict[str, Any]:
        return await run(data.trace, store, project, request.path_params["trace_id"])

    async def runs_data(request: Request, project: str) -> dict[str, Any]:
        return await run(data.runs, store, project, *runs_args(request.query_params))

    async def run_data(request: Request, project: str) -> dict[str, Any]:
        return await run(data.run, store, project, request.path_params["run_id"])

    async def compare_data(request: Request, project: str) -> dict[str, Any]:
        ids = [i for raw in request.query_params.getlist("ids") for i in raw.split(",") if i]
        return await run(data.compare, store, project, ids)

    async def sweeps_data(request: Request, project: str) -> dict[str, Any]:
        return await run(data.sweeps, store, project)

    async def sweep_data(request: Request, project: str) -> dict[str, Any]:
        return await run(data.sweep, sweeps, project, request.path_params["sweep_id"])

    for path, build in (("dashboard", dashboard_data), ("traces", traces_data), ("traces/{trace_id}", trace_data),
                        ("runs", runs_data), ("runs/compare", compare_data), ("runs/{run_id}", run_data),
                        ("sweeps", sweeps_data), ("sweeps/{sweep_id}", sweep_data)):  # fmt: skip
        app.add_api_route(f"/api/v1/ui/{path}", api(build), methods=["GET"])

    @app.get("/api/v1/projects")
    async def project_list(request: Request) -> Response:
        projects = await visible_projects(await principal(request))
        return Response(orjson.dumps({"projects": projects}), media_type="application/json")

    # --- pages ------------------------------------------------------------------------------------
    @page("dashboard.html", "dashboard")
    async def dashboard_page(request: Request, project: str) -> dict[str, Any]:
        params = request.query_params
        values: dict[str, Any] = {
            "range": params.get("range") or "1h", "by": params.get("by") or "name",
            "start_input": params.get("start") or "", "end_input": params.get("end") or "",
        }  # fmt: skip
        result = await dashboard_data(request, project)
        return {**values, "data": result, "charts": _dashboard_charts(result)}

    @page("traces.html", "traces")
    async def traces_page(request: Request, project: str) -> dict[str, Any]:
        params = dict(request.query_params)
        values: dict[str, Any] = {"params": {"range": "24h", **params}, "kinds": uq.KINDS}
        result = await traces_data(request, project)
        next_url = "/traces?" + urlencode({**params, "project": project, "before": result["next"] or ""})
        return {**values, "data": result, "next_url": next_url}

    @page("trace.html", "traces")
    async def trace_page(request: Request, project: str) -> dict[str, Any]:
        result = await trace_data(request, project)
        wanted = request.query_params.get("span")
        selected = next((s for s in result["spans"] if s["span_id"] == wanted), result["spans"][0])
        return {"trace_id": request.path_params["trace_id"], "data": result, "selected": selected}

    @page("runs.html", "runs")
    async def runs_page(request: Request, project: str) -> dict[str, Any]:
        params = dict(request.query_params)
        result = await runs_data(request, project)

        def sort_url(column: str) -> str:
            desc = "0" if result["sort"] == column and result["desc"] else "1"
            keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("sort", "desc")]
            return "/runs?" + urlencode([*keep, ("sort", column), ("desc", desc)])

        return {"params": params, "data": result, "sort_url": sort_url}

    @page("compare.html", "runs")
    async def compare_page(request: Request, project: str) -> dict[str, Any]:
        result = await compare_data(request, project)
        charts = [
            line_chart(
                key,
                [
                    Series(f"{r['name']} ({r['run_id']})", [(p[0], p[1]) for p in r["metrics"].get(key, [])])
                    for r in result["runs"]
                ],
                chart_id=f"metric-{key}",
            )
            for key in result["keys"]
        ]
        return {"data": result, "charts": charts}

    @page("run.html", "runs")
    async def run_page(request: Request, project: str) -> dict[str, Any]:
        params = request.query_params
        x = params.get("x") or "step"
        if x not in ("step", "time"):
            raise ConfigError("x", f"expected step or time, got {x!r}")
        weight = _float(params, "smooth") or 0.0
        if not 0 <= weight < 1:
            raise ConfigError("smooth", f"expected a smoothing weight from 0 to 0.99, got {weight}")
        result = await run_data(request, project)
        return {"run_id": result["run_id"], "data": result, "params": {"x": x, "smooth": weight},
                "charts": _run_charts(result["metrics"], x, weight)}  # fmt: skip

    @page("sweeps.html", "sweeps")
    async def sweeps_page(request: Request, project: str) -> dict[str, Any]:
        return {"data": await sweeps_data(request, project)}

    @page("sweep.html", "sweeps")
    async def sweep_page(request: Request, project: str) -> dict[str, Any]:
        result = await sweep_data(request, project)
        scored = [t for t in result["trials"] if t["metric"] is not None]
        metric = result["metric"] or "metric"
        charts = [
            line_chart(f"{metric} by trial", [Series(metric, [(t["trial"], t["metric"]) for t in scored])],
                       chart_id="metric-by-trial"),
            parallel_coordinates("Parameters and metric", result["param_names"],
                                 [{**t["params"], metric: t["metric"], "run_id": t["run_id"]} for t in scored],
                                 metric, result["goal"]),
        ]  # fmt: skip
        return {"sweep_id": result["sweep_id"], "data": result, "charts": charts}

    for path, handler in (("/", dashboard_page), ("/traces", traces_page), ("/traces/{trace_id}", trace_page),
                          ("/runs", runs_page), ("/runs/compare", compare_page), ("/runs/{run_id}", run_page),
                          ("/sweeps", sweeps_page), ("/sweeps/{sweep_id}", sweep_page)):  # fmt: skip
        app.add_api_route(path, handler, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)

    @app.get("/static/ui.js", include_in_schema=False)
    async def script() -> Response:
        return Response(UI_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    # --- keys for browsers ---------------------------------------------------------------------------
    def login_page(status: int, target: str, error: Optional[str] = None) -> HTMLResponse:
        token = secrets.token_urlsafe(24)  # double-submit: the form's copy must match the cookie's
        page = html("login.html", status, page="login", project="", projects=[], request_path="/login",
                    next=target, csrf=token, error=error)  # fmt: skip
        page.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return page

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> HTMLResponse:
        return login_page(200, request.query_params.get("next") or "/")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return html("error.html", 415, page="login", project="", projects=[], request_path="/login",
                        error="expected a form", heading="Unsupported", status=415)  # fmt: skip
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key, target = (form.get("key") or [""])[0].strip(), (form.get("next") or ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        sent, expected = (form.get("csrf") or [""])[0], request.cookies.get(CSRF_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return html("error.html", 403, page="login", project="", projects=[], request_path="/login",
                        error="this form expired or came from another site; open the sign-in page again",
                        heading="Forbidden", status=403)  # fmt: skip
        if verify_key is not None and (not key or await run(verify_key, key) is None):
            return login_page(401, target, error="unknown or revoked key")
        response = RedirectResponse(target, 303)
        response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict")
        response.delete_cookie(CSRF_COOKIE, path="/login")
        return response


__all__ = ["KEY_COOKIE", "add_ui_routes"]
