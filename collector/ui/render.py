"""Rendering pages: the templates, the project a page shows, and errors as messages on the page.

`page(template, name, build)` makes a route handler: it finds the caller and the project (a
project key sees only its own; an admin asking for an unknown project gets a 404 naming the
known ones), calls `build(request, collector, project)` for the template's values, and turns
errors into the page's message (400), a 404 or 503 page, a redirect to `/login` (401) or a 403
page; no stack trace ever reaches the browser. `api(build)` is the JSON twin.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehouse._errors import ConfigError, NotFoundError, StoreError
from tracehouse.collector.http.deps import Collector, parts, principal
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.keys import Principal

logger = logging.getLogger("tracehouse")
Build = Callable[[Request, Collector, str], Awaitable[dict[str, Any]]]


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    from tracehouse import _numbers

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )  # fmt: skip
    environment.filters["cost"] = _numbers.cost  # "$0.000256", "—" when unknown
    environment.filters["count"] = _numbers.count  # "1,234", "—" when unknown
    environment.filters["logged"] = logged_summary  # a logged table or image in the summary: what it is
    return environment


def logged_summary(value: Any) -> Any:
    """A summary value as the page shows it: a logged object (`_type`) as a short description (the
    run page's "Logged values" shows the thing itself), anything else as it is."""
    if not isinstance(value, dict) or "_type" not in value:
        return value
    kind = str(value["_type"])
    if kind == "table":
        chart = value.get("chart")
        what = f"{chart.get('kind')} chart" if isinstance(chart, dict) else "table"
        return f"{what}: {value.get('rows', '?')} rows × {len(value.get('columns') or [])} columns"
    if kind == "histogram":
        return f"histogram of {len(value.get('values') or [])} bins"
    if "width" in value and "height" in value:
        return f"{kind} {value['width']}×{value['height']} {value.get('format', '')}".strip()
    return f"{kind} {value.get('format', '')}".strip()


def html(template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered with `values` (every value escaped)."""
    return HTMLResponse(_environment().get_template(template).render(**values), status_code=http_status)


async def visible_projects(collector: Collector, who: Principal) -> list[str]:
    """The projects a caller may see: all for admin, only its own for a project key."""
    if not who.admin:
        return [str(who.project)]
    return await collector.read(q.known_projects, collector.store)


async def context(request: Request, collector: Collector) -> tuple[str, dict[str, Any]]:
    """The project a page shows, and the values every page has (project, picker, path)."""
    who = await principal(request)
    await collector.caught_up()
    known = await visible_projects(collector, who)
    asked = request.query_params.get("project") or None
    project = collector.bind_project(who, asked)
    if asked is None and who.admin and project not in known and known:
        project = known[0]  # no project named: the first one with data rather than an empty page
    elif asked is not None and who.admin and project not in known:
        listed = f"the projects are {', '.join(known[:20])}" if known else "the store holds no projects yet"
        raise NotFoundError(f"no project {project!r} in the store; {listed}")
    return project, {"project": project, "projects": known, "request_path": request.url.path}


def page(template: str, name: str, build: Build) -> Callable[[Request], Awaitable[Response]]:
    """A page handler: `build` returns the template's values; errors become messages."""

    async def handler(request: Request) -> Response:
        values: dict[str, Any] = {"page": name, "project": "", "projects": [], "request_path": "/"}
        try:
            collector = parts(request)
            project, base = await context(request, collector)
            values.update(base)
            values.update(await build(request, collector, project))
            return html(template, **values)
        except ConfigError as error:  # the page may say what it still shows (a form as typed): `page_values`
            return html(template, 400, **{**values, **getattr(error, "page_values", {})}, error=str(error))
        except NotFoundError as error:
            return html("error.html", 404, **values, error=str(error), heading="Not found", status=404)
        except StoreError as error:
            return html("error.html", 503, **values, error=f"the store is unavailable: {error}",
                        heading="Unavailable", status=503)  # fmt: skip
        except Exception as error:
            return _unexpected(request, error, values)

    return handler


def _unexpected(request: Request, error: Exception, values: dict[str, Any]) -> Response:
    status = getattr(error, "status", None)
    if status == 401:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': here})}", 303)
    if status == 403:
        return html("error.html", 403, **values, error=str(error), heading="Forbidden", status=403)
    logger.exception("tracehouse UI: %s failed", request.url.path)
    message = "something went wrong; the collector's log says what"
    return html("error.html", 500, **values, error=message, heading="Error", status=500)


def api(build: Callable[[Request, Collector, str], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    """The JSON twin of a page's data."""

    async def handler(request: Request) -> Response:
        collector = parts(request)
        project, _ = await context(request, collector)
        value = await build(request, collector, project)
        return Response(orjson.dumps(value, default=str), media_type="application/json")

    return handler


__all__ = ["api", "context", "html", "page", "visible_projects"]
