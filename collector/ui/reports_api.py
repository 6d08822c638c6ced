"""The reports' JSON API: `GET /api/v1/reports?project=` (list), `POST /api/v1/reports` (create: `{"project",
"title", "description", "blocks"}`), `GET / PUT / DELETE /api/v1/reports/{id}` (read, replace, soft-delete),
`GET /api/v1/reports/{id}/versions` (the history). A PUT with `base_version` (or `If-Match`) is refused
with 409 when the report was saved by someone else since that version. Bodies are JSON (415 otherwise);
a bad one is a 400 naming the field (`reports_blocks.py`), an unknown report a 404 naming its id.
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse._errors import ConfigError
from tracehouse.collector.http.deps import Caller, CollectorDep, json_response
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.ui import reports_store

router = APIRouter()


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ConfigError("body", 'expected {"title": ..., "description": ..., "blocks": [...]}')
    return body


@router.get("/api/v1/reports")
async def list_reports(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """The project's reports (title, description, author, times, block count), most recently edited first."""
    project = collector.bind_project(who, request.query_params.get("project") or None)
    await collector.caught_up()
    found = await collector.read(reports_store.listing, collector.store, project)
    return json_response({"project": project, "reports": found})


@router.post("/api/v1/reports")
async def create_report(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """A new report; the answer holds it with its id (its page is `/reports/{id}`)."""
    body = await _body(request)
    project = collector.bind_project(who, body.get("project") or None)
    author = await collector.read(reports_store.author_of, collector.store, who)
    report = await collector.read(reports_store.create, collector.store, project, body, author)
    return json_response({**report, "url": f"/reports/{report['report_id']}"}, 201)


@router.get("/api/v1/reports/{report_id}")
async def get_report(request: Request, report_id: str, collector: CollectorDep, who: Caller) -> Response:
    """One report, its latest version (`?version=` an earlier one)."""
    raw = request.query_params.get("version") or ""
    if raw and (not raw.isascii() or not raw.isdigit() or len(raw) > 20):
        raise ConfigError("version", f"expected a version number, got {raw[:30]!r}")
    report = await collector.read(reports_store.readable, collector.store, who, report_id, int(raw) if raw else None)
    return json_response(report)


@router.put("/api/v1/reports/{report_id}")
async def update_report(request: Request, report_id: str, collector: CollectorDep, who: Caller) -> Response:
    """A new version of the report: title, description and blocks replaced. `base_version` in the body (or
    `If-Match: "<version>"`) is the version the change was made from: 409 when another was saved since."""
    body = await _body(request)
    base = base_version(body.pop("base_version", None), request.headers.get("if-match"))
    current = await collector.read(reports_store.readable, collector.store, who, report_id)
    body.pop("project", None)
    author = await collector.read(reports_store.author_of, collector.store, who)
    report = await collector.read(reports_store.update, collector.store, current["project"], report_id, body, author,
                                  base)  # fmt: skip
    return json_response(report)


def base_version(field: Any, if_match: Optional[str]) -> Optional[int]:
    """The version a change was made from (body field, else an If-Match entity tag); ConfigError when malformed."""
    if field is not None:
        if isinstance(field, bool) or not isinstance(field, int) or field < 0:
            raise ConfigError("base_version", f"expected the version number the change was made from, got {field!r}")
        return field
    if not if_match or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isascii() or not tag.isdigit() or len(tag) > 20:
        raise ConfigError("If-Match", f'expected "<version>", got {if_match[:40]!r}')
    return int(tag)


@router.delete("/api/v1/reports/{report_id}")
async def delete_report(report_id: str, collector: CollectorDep, who: Caller) -> Response:
    """Soft-delete the report (its versions stay in `report_versions`)."""
    current = await collector.read(reports_store.readable, collector.store, who, report_id)
    author = await collector.read(reports_store.author_of, collector.store, who)
    return json_response(await collector.read(reports_store.delete, collector.store, current["project"], report_id,
                                              author))  # fmt: skip


@router.get("/api/v1/reports/{report_id}/versions")
async def report_versions(report_id: str, collector: CollectorDep, who: Caller) -> Response:
    """Every saved version of the report, newest first."""
    current = await collector.read(reports_store.readable, collector.store, who, report_id)
    found = await collector.read(reports_store.versions, collector.store, current["project"], report_id)
    return json_response({"report_id": report_id, "versions": found})


__all__ = ["router"]
