"""The collector's endpoints for runs and artifacts: named reads and the blob store.

- `POST /api/v1/read` `{"name", "project", "parameters"}`: one of the named reads of
  `collector/store/reads.py`, bound to the project (a project key reads only its own), as a frame.
- `HEAD|GET|PUT /api/v1/blobs/{sha256}`: artifact, file and media contents by digest. A PUT body
  is hashed as it streams to disk and refused (400) unless it matches the digest in the path. A
  project key reads (and learns of) a blob only when a row of its project references it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.http.deps import Caller, Collector, CollectorDep, error_response, frame_json, json_response
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.store.keys import Principal
from tracehouse.collector.store.reads import is_admin_read, run_read

if TYPE_CHECKING:
    from tracehouse.collector.blobs import BlobStore
    from tracehouse.collector.store.store import Store

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_REFERENCES = (
    "(SELECT 1 FROM artifact_files WHERE project = {p:String} AND digest = {d:String} LIMIT 1)",
    "(SELECT 1 FROM run_files WHERE project = {p:String} AND blob = {d:String} LIMIT 1)",
    "(SELECT 1 FROM run_values WHERE project = {p:String} AND position(value, {d:String}) > 0 LIMIT 1)",
    "(SELECT 1 FROM run_tables WHERE project = {p:String} AND position(row, {d:String}) > 0 LIMIT 1)",
)
router = APIRouter()


def blob_referenced(store: Store, project: str, digest: str) -> bool:
    """Whether a row of `project` (an artifact file, a saved file, a logged image) references `digest`."""
    _, rows = store.query_rows(f"SELECT count() FROM ({' UNION ALL '.join(_REFERENCES)})", {"p": project, "d": digest})
    return bool(rows and rows[0][0])


@router.post("/api/v1/read")
async def read(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """A named read bound to the caller's project."""
    payload = await read_json(request)
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise ConfigError("body", 'expected {"name": "...", "project": "...", "parameters": {...}}')
    project = collector.bind_project(who, payload.get("project"))
    if is_admin_read(payload["name"]) and not who.admin:
        return error_response(403, f"the read {payload['name']!r} looks across projects: it needs an admin key")
    await collector.caught_up()
    frame = await collector.read(run_read, collector.store, payload["name"], project, payload.get("parameters") or {})
    return json_response(frame_json(frame))


def _blob_store(collector: Collector) -> BlobStore:
    if collector.blobs is None:
        raise ConfigError("blobs", "this collector has no blob store")
    return collector.blobs


def _check(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise ConfigError("digest", f"expected 64 lowercase hex digits (SHA-256), got {digest!r}")
    return digest


async def _readable(collector: Collector, who: Principal, digest: str) -> bool:
    """Whether the caller may know of this blob: admin always, a project key only when a row of
    its project references the digest (so nobody learns what other projects hold)."""
    _check(digest)
    if who.admin:
        return True
    await collector.caught_up()
    return await collector.read(blob_referenced, collector.store, str(who.project), digest)


@router.head("/api/v1/blobs/{digest}")
async def has_blob(digest: str, collector: CollectorDep, who: Caller) -> Response:
    """200 when the blob is there (and the caller may know it), else 404."""
    if not await _readable(collector, who, digest):
        return Response(status_code=404)
    found = await collector.read(_blob_store(collector).exists, digest)
    return Response(status_code=200 if found else 404)


@router.get("/api/v1/blobs/{digest}")
async def get_blob(digest: str, collector: CollectorDep, who: Caller) -> Response:
    """A blob's bytes."""
    if not await _readable(collector, who, digest):
        raise NotFoundError(f"blob {digest} is not in this project's blob store")
    blobs = _blob_store(collector)
    local = blobs.local_path(digest)
    if local is not None:
        if not local.is_file():
            raise NotFoundError(f"blob {digest} is not in the collector's blob store")
        return FileResponse(local, media_type="application/octet-stream")
    return Response(await collector.read(blobs.read_bytes, digest), media_type="application/octet-stream")


@router.put("/api/v1/blobs/{digest}")
async def put_blob(request: Request, digest: str, collector: CollectorDep, who: Caller) -> Response:
    """Store a blob; its body must hash to `digest`."""
    blobs, limit = _blob_store(collector), collector.config.max_blob_bytes
    _check(digest)
    handle, path = tempfile.mkstemp(prefix="tracehouse-blob-")
    try:
        sha, size = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return error_response(413, f"blob is over the limit of {limit} bytes")
                sha.update(chunk)
                out.write(chunk)
        if sha.hexdigest() != digest:
            raise ConfigError("digest", f"the body's SHA-256 is {sha.hexdigest()}, not {digest}")
        await collector.read(blobs.put_file, path)
        return json_response({"digest": digest, "size": size})
    finally:
        os.unlink(path)


__all__ = ["blob_referenced", "router"]
