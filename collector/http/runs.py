"""The collector's endpoints for runs and artifacts: named reads and the blob store.

- `POST /api/v1/read` `{"name", "project", "parameters"}`: one of the named reads of `collector/store/reads.py`, bound
  to the project (a project key reads only its own), as a `{"columns", "rows"}` frame.
- `HEAD|GET|PUT /api/v1/blobs/{sha256}`: artifact, file and media contents by digest. A PUT body
  is hashed as it streams to disk and refused (400) unless it matches the digest in the path.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.http.guard import read_json
from tracehouse.collector.store.reads import is_admin_read, run_read

if TYPE_CHECKING:
    from tracehouse.collector.blobs import BlobStore
    from tracehouse.collector.store.keys import Principal
    from tracehouse.collector.store.store import Store

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_REFERENCES = (
    "(SELECT 1 FROM artifact_files WHERE project = {p:String} AND digest = {d:String} LIMIT 1)",
    "(SELECT 1 FROM run_files WHERE project = {p:String} AND blob = {d:String} LIMIT 1)",
    "(SELECT 1 FROM run_values WHERE project = {p:String} AND position(value, {d:String}) > 0 LIMIT 1)",
    "(SELECT 1 FROM run_tables WHERE project = {p:String} AND position(row, {d:String}) > 0 LIMIT 1)",
)


def blob_referenced(store: Store, project: str, digest: str) -> bool:
    """Whether a row of `project` (an artifact file, a saved file, a logged image) references `digest`."""
    _, rows = store.query_rows(f"SELECT count() FROM ({' UNION ALL '.join(_REFERENCES)})", {"p": project, "d": digest})
    return bool(rows and rows[0][0])


def add_run_routes(
    app: FastAPI,
    store: Store,
    blobs: Optional[BlobStore],
    principal: Callable[[Request], Awaitable[Principal]],
    read_project: Callable[[Principal, Optional[str]], str],
    caught_up: Callable[[], Awaitable[None]],
    frame_json: Callable[[Any], dict[str, Any]],
    max_blob_bytes: int,
) -> None:
    """Register the read and blob endpoints on `app`."""

    @app.post("/api/v1/read")
    async def read(request: Request) -> Response:
        who = await principal(request)
        payload = await read_json(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            raise ConfigError("body", 'expected {"name": "...", "project": "...", "parameters": {...}}')
        project = read_project(who, payload.get("project"))
        if is_admin_read(payload["name"]) and not who.admin:
            message = f"the read {payload['name']!r} looks across projects: it needs an admin key"
            return Response(orjson.dumps({"error": message}), 403, media_type="application/json")
        await caught_up()
        frame = await asyncio.to_thread(run_read, store, payload["name"], project, payload.get("parameters") or {})
        return Response(orjson.dumps(frame_json(frame), default=str), media_type="application/json")

    def blob_store() -> BlobStore:
        if blobs is None:
            raise ConfigError("blobs", "this collector has no blob store")
        return blobs

    def check(digest: str) -> str:
        if not DIGEST_RE.match(digest):
            raise ConfigError("digest", f"expected 64 lowercase hex digits (SHA-256), got {digest!r}")
        return digest

    async def readable(request: Request, digest: str) -> bool:
        """Whether the caller may know of this blob: admin always, a project key only when a row of
        its project references the digest (so nobody learns what other projects hold)."""
        who = await principal(request)
        check(digest)
        if who.admin:
            return True
        await caught_up()
        return await asyncio.to_thread(blob_referenced, store, str(who.project), digest)

    @app.head("/api/v1/blobs/{digest}")
    async def has_blob(request: Request, digest: str) -> Response:
        if not await readable(request, digest):
            return Response(status_code=404)
        found = await asyncio.to_thread(blob_store().exists, digest)
        return Response(status_code=200 if found else 404)

    @app.get("/api/v1/blobs/{digest}")
    async def get_blob(request: Request, digest: str) -> Response:
        if not await readable(request, digest):
            raise NotFoundError(f"blob {digest} is not in this project's blob store")
        store_ = blob_store()
        local = store_.local_path(check(digest))
        if local is not None:
            if not local.is_file():
                raise NotFoundError(f"blob {digest} is not in the collector's blob store")
            return FileResponse(local, media_type="application/octet-stream")
        data = await asyncio.to_thread(store_.read_bytes, digest)
        return Response(data, media_type="application/octet-stream")

    @app.put("/api/v1/blobs/{digest}")
    async def put_blob(request: Request, digest: str) -> Response:
        await principal(request)
        store_ = blob_store()
        check(digest)
        handle, path = tempfile.mkstemp(prefix="tracehouse-blob-")
        try:
            sha, size = hashlib.sha256(), 0
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_blob_bytes:
                        return Response(
                            orjson.dumps({"error": f"blob is over the limit of {max_blob_bytes} bytes"}), 413
                        )
                    sha.update(chunk)
                    out.write(chunk)
            if sha.hexdigest() != digest:
                raise ConfigError("digest", f"the body's SHA-256 is {sha.hexdigest()}, not {digest}")
            await asyncio.to_thread(store_.put_file, path)
            return Response(orjson.dumps({"digest": digest, "size": size}), media_type="application/json")
        finally:
            os.unlink(path)
