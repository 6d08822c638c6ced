"""The trace pages and their JSON twins: `/traces` (sorted, paged both ways, totals, scores),
`/traces/{id}` (totals, errors with stack traces, documents, scores and the form adding one),
`/sessions`, `/sessions/{id}`, `/users`, `/users/{id}`.

Each page's data comes from one function, returned as it is by `/api/v1/ui/<path>`; the page adds
only links. The time window and filters are the ones `ui/params.py` reads for every trace view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tracehouse.collector.http.deps import Collector
from tracehouse.collector.ui import params as args
from tracehouse.collector.ui import people, ranges, trace_list, trace_scores, trace_view
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui.render import api, page

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

router = APIRouter()
router.include_router(trace_scores.router)
Data = Callable[[Request, Collector, str], Awaitable[dict[str, Any]]]
SORT_LABELS = {"start": "time", "duration": "duration ms", "tokens": "tokens", "cost": "cost"}


def trace_list_data(store: Store, project: str, window: uq.TimeRange, filters: uq.TraceFilters,
                    order: trace_list.ListOrder) -> dict[str, Any]:  # fmt: skip
    """A page of the trace list, its cursors, the totals of everything the filters keep (`totals`), and
    each listed trace's score summary."""
    found = trace_list.trace_page(store, project, window, filters, order)
    summaries = trace_scores.list_summaries(store, project, found["traces"])
    for row in found["traces"]:
        row["scores"] = summaries.get(row["trace_id"], [])
        row.pop("span_ids", None)
    paged = order.after is not None or order.before is not None
    filtered = paged or order.error is not None or any(v is not None for v in vars(filters).values())
    empty = None if filtered else ranges.empty_state(store, project, window, len(found["traces"]))
    return {"project": project, "range": window.label, "start": window.start.isoformat(),
            "end": window.end.isoformat(), "window": window.as_dict(), "sort": order.sort, "order": order.order,
            "error": order.error, "empty": empty, "score_names": trace_scores.numeric_score_names(store, project),
            **found}  # fmt: skip


async def traces_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    window, filters, _ = args.trace_args(request.query_params)
    order = trace_list.list_order(request.query_params)
    return await collector.read(trace_list_data, collector.store, project, window, filters, order)


async def trace_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    return await collector.read(trace_view.trace, collector.store, project, request.path_params["trace_id"])


def _url(request: Request, path: str, drop: tuple[str, ...], **changes: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in (*drop, *changes)]
    return f"{path}?{urlencode([*kept, *changes.items()])}"


def _page_labels(sort: str, desc: bool) -> tuple[str, str]:
    """(the link to the next page, to the previous one): older / newer when sorted by time."""
    if sort != "start":
        return "next →", "← previous"
    return ("older →", "← newer") if desc else ("newer →", "← older")


async def traces_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await traces_data(request, collector, project)
    paging = ("after", "before")
    desc = result["order"] == "desc"

    def sort_url(column: str) -> str:
        flip = "asc" if result["sort"] == column and desc else "desc"
        return _url(request, "/traces", paging, project=project, sort=column, order=flip)

    next_label, prev_label = _page_labels(result["sort"], desc)
    return {
        "params": {"range": "24h", **dict(request.query_params)}, "kinds": uq.KINDS, "data": result,
        "sort_url": sort_url, "sort_labels": SORT_LABELS, "next_label": next_label, "prev_label": prev_label,
        "next_url": _url(request, "/traces", paging, project=project, after=result["next"] or ""),
        "prev_url": _url(request, "/traces", paging, project=project, before=result["prev"] or ""),
        "picker": ranges.picker(args.trace_args(request.query_params)[0]),
        "empty": ranges.with_links(result.get("empty"), request.url.path, {**request.query_params, "project": project}),
        "base_url": str(request.base_url).rstrip("/"),
    }  # fmt: skip


async def trace_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
    result = await trace_data(request, collector, project)
    wanted = request.query_params.get("span")
    selected = next((s for s in result["spans"] if s["span_id"] == wanted), result["spans"][0])
    return {"trace_id": request.path_params["trace_id"], "data": result, "selected": selected,
            "csrf": trace_scores.csrf_token(request)}  # fmt: skip


def _group_pages(group: str) -> tuple[Data, Data, Data, Data]:
    async def list_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
        query = request.query_params
        window = args.trace_args(query)[0]
        limit = people.page_limit(query.get("limit"))
        after, before = query.get("after") or None, query.get("before") or None
        return await collector.read(people.groups, collector.store, project, window, group, limit, after, before)

    async def one_data(request: Request, collector: Collector, project: str) -> dict[str, Any]:
        window = args.trace_args(request.query_params)[0]
        member_id = request.path_params["member_id"]
        return await collector.read(people.member, collector.store, project, window, group, member_id)

    async def list_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
        data = await list_data(request, collector, project)
        path, paging = f"/{group}s", ("after", "before")
        return {"group": group, "params": {"range": "24h", **dict(request.query_params)}, "data": data,
                "next_url": _url(request, path, paging, project=project, after=data["next"]) if data["next"] else None,
                "prev_url": _url(request, path, paging, project=project, before=data["prev"]) if data["prev"] else None,
                }  # fmt: skip

    async def one_page(request: Request, collector: Collector, project: str) -> dict[str, Any]:
        return {"group": group, "params": {"range": "24h", **dict(request.query_params)},
                "data": await one_data(request, collector, project)}  # fmt: skip

    return list_data, one_data, list_page, one_page


def _with_cookie(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def handled(request: Request) -> Response:
        return trace_scores.with_csrf_cookie(request, await handler(request))

    return handled


_sessions = _group_pages("session")
_users = _group_pages("user")
# (page path, JSON twin path under /api/v1/ui/, template, navigation tab, page values, data)
PAGES: tuple[tuple[str, str, str, str, Data, Data], ...] = (
    ("/traces", "traces", "traces.html", "traces", traces_page, traces_data),
    ("/traces/{trace_id}", "traces/{trace_id}", "trace.html", "traces", trace_page, trace_data),
    ("/sessions", "sessions", "people.html", "sessions", _sessions[2], _sessions[0]),
    ("/sessions/{member_id:path}", "sessions/{member_id:path}", "person.html", "sessions", _sessions[3], _sessions[1]),
    ("/users", "users", "people.html", "users", _users[2], _users[0]),
    ("/users/{member_id:path}", "users/{member_id:path}", "person.html", "users", _users[3], _users[1]),
)
for _path, _api_path, _template, _tab, _values, _data in PAGES:
    router.add_api_route(f"/api/v1/ui/{_api_path}", api(_data), methods=["GET"])
    _handler = page(_template, _tab, _values)
    router.add_api_route(_path, _with_cookie(_handler) if _template == "trace.html" else _handler, methods=["GET"],
                         response_class=HTMLResponse, include_in_schema=False)  # fmt: skip


__all__ = ["router", "trace_list_data"]
