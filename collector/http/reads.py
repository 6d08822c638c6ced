"""Reads: `POST /api/v1/query` (free SQL, admin keys, read-only and bounded), `GET /api/v1/traces`,
`GET /api/v1/traces/{trace_id}`, `GET /api/v1/latency`. Every read catches up with the write-ahead
log first, so what was answered is what it sees. The lists take a window as `since` (a duration) or
`start` / `end` (ISO 8601 or epoch milliseconds); a bad or inverted one is a 400 naming it."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse.collector.http.config import CollectorConfig
from tracehouse.collector.http.deps import Caller, CollectorDep, admin_only, error_response, frame_json, json_response
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.readonly import QueryLimits

router = APIRouter()


@router.post("/api/v1/query")
async def query(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """`{"sql", "parameters", "max_rows"?, "timeout"?}`: one read-only statement (see store/sql_guard.py)."""
    admin_only(who)
    payload = await read_json(request)
    await collector.caught_up()
    sql, parameters = (
        (payload.get("sql"), payload.get("parameters") or {}) if isinstance(payload, dict) else (None, None)
    )
    if not isinstance(sql, str) or not sql.strip() or not isinstance(parameters, dict):
        return error_response(400, 'expected {"sql": "...", "parameters": {...}}')
    limits = query_limits(payload, collector.config)
    frame = await collector.read(collector.store.query_readonly_df, sql, parameters, limits)
    return json_response(frame_json(frame))


def query_limits(payload: dict[str, Any], config: CollectorConfig) -> QueryLimits:
    """The collector's limits, lowered (never raised) by `max_rows` / `timeout` in the request."""
    rows, timeout = payload.get("max_rows"), payload.get("timeout")
    limits = QueryLimits(max_rows=config.query_max_rows, timeout=config.query_timeout)
    asked = QueryLimits(
        max_rows=rows if rows is not None else limits.max_rows,
        timeout=timeout if timeout is not None else limits.timeout,
    ).checked()
    return QueryLimits(max_rows=int(min(asked.max_rows, limits.max_rows)), timeout=min(asked.timeout, limits.timeout))


@router.get("/api/v1/traces")
async def traces(
    collector: CollectorDep,
    who: Caller,
    project: Optional[str] = None,
    limit: int = 20,
    since: Optional[str] = None,
    name: Optional[str] = None,
    status: Optional[str] = None,
    sort: Optional[str] = None,
    order: Optional[str] = None,
    error: Optional[str] = None,
    start: Optional[str] = None,
    end: Optional[str] = None,
) -> Response:
    """Recent traces of a project, newest first (default window: the last 24h); `sort` (start, duration,
    tokens, cost) and `order` (desc, asc) choose another order, `error=1` keeps only traces with an
    error (`error=0` those without)."""
    bound = collector.bind_project(who, project)
    window = q.resolve(_since(since), start, end, default_since="24h")  # a bad window: 400 before any wait
    await collector.caught_up()
    frame = await collector.read(q.traces, collector.store, bound, limit=limit, name=name, status=status,
                                 start=window.start, end=window.end, sort=sort or "start", order=order or "desc",
                                 error=error)  # fmt: skip
    return json_response(frame_json(frame))


def _since(value: Optional[str]) -> Any:
    """A `since` query parameter: absent is "not given" (present but blank is a malformed one)."""
    return q.UNSET if value is None else value


@router.get("/api/v1/traces/{trace_id}")
async def trace_tree(trace_id: str, collector: CollectorDep, who: Caller, project: Optional[str] = None) -> Response:
    """One trace's spans as a tree."""
    bound = collector.bind_project(who, project)
    await collector.caught_up()
    return json_response(await collector.read(q.trace_tree, collector.store, bound, trace_id))


@router.get("/api/v1/latency")
async def latency(
    collector: CollectorDep,
    who: Caller,
    project: Optional[str] = None,
    by: str = "name",
    since: Optional[str] = None,
    start: Optional[str] = None,
    end: Optional[str] = None,
) -> Response:
    """Latency percentiles, errors, tokens and cost per group (default window: the last hour)."""
    bound = collector.bind_project(who, project)
    window = q.resolve(_since(since), start, end, default_since="1h")
    await collector.caught_up()
    frame = await collector.read(q.latency, collector.store, bound, by=by, start=window.start, end=window.end)
    return json_response(frame_json(frame))


__all__ = ["query_limits", "router"]
