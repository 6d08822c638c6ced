"""API keys (admin only): `POST /api/v1/keys` `{"project", "name"}` or `{"admin": true}` (the key is in
the answer, once), `GET /api/v1/keys`, `DELETE /api/v1/keys/{key_id}`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse.collector.http.deps import Caller, CollectorDep, admin_only, error_response, json_response
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.store import queries as q

router = APIRouter()


@router.post("/api/v1/keys")
async def create_key(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """A new key for a project (or admin)."""
    admin_only(who)
    payload = await read_json(request, default={})
    if not isinstance(payload, dict) or (not payload.get("admin") and not isinstance(payload.get("project"), str)):
        return error_response(400, 'expected {"project": "...", "name": "..."} or {"admin": true}')
    project = None if payload.get("admin") else q.check_project(payload["project"])
    key_id, key = await collector.read(collector.keys.create, project, str(payload.get("name", "")))
    return json_response({"key_id": key_id, "key": key, "project": project, "admin": project is None})


@router.get("/api/v1/keys")
async def list_keys(collector: CollectorDep, who: Caller) -> Response:
    """Every key, never its secret."""
    admin_only(who)
    return json_response({"keys": await collector.read(collector.keys.list)})


@router.delete("/api/v1/keys/{key_id}")
async def revoke_key(key_id: str, collector: CollectorDep, who: Caller) -> Response:
    """Revoke a key by id."""
    admin_only(who)
    if not await collector.read(collector.keys.revoke, key_id):
        return error_response(404, f"no key {key_id!r}")
    return json_response({"revoked": key_id})


__all__ = ["router"]
