"""The report pages: `/reports` (a project's reports), `/reports/new`, `/reports/{id}` (the stable URL;
`?version=` shows an earlier one), `/reports/{id}/edit` (the editor), `/reports/{id}/export` (one static
HTML file, as an attachment), and `/static/reports.js` (the editor's script; the editor works without it).

Saving and deleting are form POSTs: the edge guard refuses cross-site requests, and each form carries
a CSRF token matching a cookie only this origin sets (double submit, as the trace page's score form).
A report belongs to one project; a project key sees and edits only its own project's reports (another
project's report is a 404, as if it did not exist). The JSON API is `reports_api.py`.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehouse._errors import ConfigError, ConflictError, NotFoundError, StoreError
from tracehouse.collector.http.deps import Collector, parts, principal
from tracehouse.collector.store.keys import Principal
from tracehouse.collector.ui import reports_api, reports_form, reports_store
from tracehouse.collector.ui.render import api, html, page, visible_projects
from tracehouse.collector.ui.reports_blocks import MAX_MARKDOWN, PANELS, X_AXES, check_report
from tracehouse.collector.ui.reports_export import export_html, filename
from tracehouse.collector.ui.reports_panels import block_markup

CSRF_COOKIE = "tracehouse_csrf_reports"
CSRF_PATH = "/reports"
SCRIPT = (Path(__file__).with_name("static") / "reports.js").read_bytes()
router = APIRouter(include_in_schema=False)
router.include_router(reports_api.router, include_in_schema=True)
Handler = Callable[[Request], Awaitable[Response]]


@router.get("/static/reports.js")
async def reports_script() -> Response:
    """The editor's script: add, remove and move blocks in the page."""
    return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


async def drawn(collector: Collector, report: dict[str, Any], links: bool = True) -> list[str]:
    """The report's blocks as markup, the panels drawn side by side on the read threads."""
    store, project = collector.store, report["project"]
    return list(await asyncio.gather(*(collector.read(block_markup, store, project, block, index, links)
                                       for index, block in enumerate(report["blocks"]))))  # fmt: skip


def _version(request: Request) -> Optional[int]:
    raw = request.query_params.get("version") or ""
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise ConfigError("version", f"expected a version number from the report's history, got {raw[:30]!r}")
    return int(raw)


# --- pages ------------------------------------------------------------------------------------------------
async def list_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return {"project": project, "reports": await collector.read(reports_store.listing, collector.store, project)}


async def list_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return {"data": await list_data(request, collector, project)}


async def view_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    who = await principal(request)
    version = _version(request)
    report = await collector.read(
        reports_store.readable, collector.store, who, request.path_params["report_id"], version
    )
    history = await collector.read(reports_store.versions, collector.store, report["project"], report["report_id"])
    return {"project": report["project"], "report": report, "blocks": await drawn(collector, report),
            "history": history, "old_version": version is not None}  # fmt: skip


def csrf_token(request: Request) -> str:
    """The editor form's token: the cookie's when the browser has one, else a new one (set on the answer)."""
    token = request.cookies.get(CSRF_COOKIE) or ""
    if len(token) < 24:
        token = secrets.token_urlsafe(24)
    request.state.csrf = token
    return token


def _editor(request: Request, draft: dict[str, Any], report: Optional[dict[str, Any]], project: str,
            base: Optional[int] = None) -> dict[str, Any]:  # fmt: skip
    """The editor's values; `base` is the version the draft was made from (the report's own by default)."""
    action = f"/reports/{report['report_id']}/edit" if report else "/reports/new"
    base_version = base if base is not None else (report or {}).get("version", "")
    return {"draft": draft, "report": report, "form_action": action, "csrf": csrf_token(request),
            "base_version": base_version,
            "panels": {kind: label for kind, (label, _) in PANELS.items()}, "templates": reports_form.templates(),
            "x_axes": X_AXES, "groups": ("name", "model", "kind", "service"), "max_markdown": MAX_MARKDOWN,
            "project": project}  # fmt: skip


async def new_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    draft = reports_form.editor_blocks(None)
    draft["blocks"] = [reports_form.new_block("markdown")]
    return _editor(request, draft, None, project)


async def edit_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    who = await principal(request)
    report = await collector.read(reports_store.readable, collector.store, who, request.path_params["report_id"])
    return _editor(request, reports_form.editor_blocks(report), report, report["project"])


def _with_cookie(handler: Handler) -> Handler:
    async def handled(request: Request) -> Response:
        return _with_csrf(request, await handler(request))

    return handled


# --- form posts -------------------------------------------------------------------------------------------
def _refused(status: int, heading: str, error: str, project: str = "") -> Response:
    return html("error.html", status, page="reports", project=project, projects=[], request_path="/reports",
                error=error, heading=heading, status=status)  # fmt: skip


async def _form(request: Request) -> dict[str, list[str]]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise _Refusal(415, "Unsupported", "expected a form")
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    sent, expected = (form.get("csrf") or [""])[0], request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise _Refusal(403, "Forbidden", "this form expired or came from another site; open the editor again")
    return form


class _Refusal(Exception):
    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading = status, heading


def _posted(handler: Callable[[Request, Collector, Principal, dict[str, list[str]]], Awaitable[Response]]) -> Handler:
    """A form POST: the form and its token checked, the caller known; errors as pages, never a trace."""

    async def handled(request: Request) -> Response:
        try:
            form = await _form(request)
            collector = parts(request)
            who = await principal(request)
            return await handler(request, collector, who, form)
        except _Refusal as refusal:
            return _refused(refusal.status, refusal.heading, str(refusal))
        except NotFoundError as error:
            return _refused(404, "Not found", str(error))
        except ConfigError as error:
            return _refused(400, "Bad request", str(error))
        except StoreError as error:
            return _refused(503, "Unavailable", f"the store is unavailable: {error}")
        except Exception as error:
            status = getattr(error, "status", None)
            if status in (401, 403):
                return _refused(status, "Forbidden" if status == 403 else "Sign in", str(error))
            raise

    return handled


async def _save(request: Request, collector: Collector, who: Principal, form: dict[str, list[str]],
                report: Optional[dict[str, Any]], project: str) -> Response:  # fmt: skip
    draft = reports_form.parse_form(form)
    action = (form.get("action") or ["save"])[0]
    base = reports_form.base_version(form) if report is not None else None
    status = 200
    values: dict[str, Any] = {}
    try:
        if action == "save":
            body = check_report(reports_form.body_of(draft))
            author = await collector.read(reports_store.author_of, collector.store, who)
            if report is None:
                saved = await collector.read(reports_store.create, collector.store, project, body, author)
            else:
                saved = await collector.read(reports_store.update, collector.store, project, report["report_id"],
                                             body, author, base)  # fmt: skip
            return RedirectResponse(f"/reports/{saved['report_id']}", 303)
        draft = reports_form.apply(draft, action)
    except ConfigError as error:
        status, values = 400, {"error": str(error)}
    except ConflictError as error:  # the draft stays on the page; saving again replaces the newer version
        assert report is not None
        status, base = 409, report["version"]
        values = {"error": f"{error}. Your draft is below: Save again to replace that version with it."}
    known = await visible_projects(collector, who)
    page_values = {"page": "reports", "projects": known, "request_path": request.url.path, "unsaved": True,
                   **_editor(request, draft, report, project, base), **values}  # fmt: skip
    return _with_csrf(request, html("reports_edit.html", status, **page_values))


def _with_csrf(request: Request, response: Response) -> Response:
    token = getattr(request.state, "csrf", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path=CSRF_PATH)
    return response


@router.post("/reports/new")
async def create_form(request: Request) -> Response:
    """The new-report editor's form: save creates the report (and its stable URL)."""

    async def create(request: Request, collector: Collector, who: Principal, form: dict[str, list[str]]) -> Response:
        project = collector.bind_project(who, (form.get("project") or [""])[0] or None)
        return await _save(request, collector, who, form, None, project)

    return await _posted(create)(request)


@router.post("/reports/{report_id}/edit")
async def edit_form(request: Request, report_id: str) -> Response:
    """The editor's form: save writes a new version of the report."""

    async def edit(request: Request, collector: Collector, who: Principal, form: dict[str, list[str]]) -> Response:
        report = await collector.read(reports_store.readable, collector.store, who, report_id)
        return await _save(request, collector, who, form, report, report["project"])

    return await _posted(edit)(request)


@router.post("/reports/{report_id}/delete")
async def delete_form(request: Request, report_id: str) -> Response:
    """Delete a report (soft: its history stays) and go back to the project's reports."""

    async def delete(request: Request, collector: Collector, who: Principal, form: dict[str, list[str]]) -> Response:
        report = await collector.read(reports_store.readable, collector.store, who, report_id)
        author = await collector.read(reports_store.author_of, collector.store, who)
        await collector.read(reports_store.delete, collector.store, report["project"], report_id, author)
        return RedirectResponse(f"/reports?project={quote(report['project'], safe='')}", 303)

    return await _posted(delete)(request)


@router.get("/reports/{report_id}/export")
async def export(request: Request, report_id: str) -> Response:
    """The report as one self-contained HTML file, downloaded."""
    collector = parts(request)
    try:
        who = await principal(request)
        await collector.caught_up()
        report = await collector.read(reports_store.readable, collector.store, who, report_id, _version(request))
    except NotFoundError as error:
        return _refused(404, "Not found", str(error))
    except ConfigError as error:
        return _refused(400, "Bad request", str(error))
    body = export_html(report, await drawn(collector, report, links=False))
    disposition = f'attachment; filename="{filename(report)}"'
    return Response(body, media_type="text/html; charset=utf-8", headers={"Content-Disposition": disposition})


# (page path, template, page values); /reports/new before /reports/{report_id}
PAGES: tuple[tuple[str, str, Callable[[Request, Collector, str], Awaitable[dict[str, Any]]]], ...] = (
    ("/reports", "reports.html", list_page),
    ("/reports/new", "reports_edit.html", new_page),
    ("/reports/{report_id}", "reports_view.html", view_page),
    ("/reports/{report_id}/edit", "reports_edit.html", edit_page),
)
router.add_api_route("/api/v1/ui/reports", api(list_data), methods=["GET"])
for _path, _template, _values in PAGES:
    router.add_api_route(_path, _with_cookie(page(_template, "reports", _values)), methods=["GET"],
                         response_class=HTMLResponse)  # fmt: skip


__all__ = ["CSRF_COOKIE", "PAGES", "drawn", "router"]
