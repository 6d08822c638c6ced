"""`GET /runs/{run_id}/media/{digest}`: a blob the run logged (an image, audio, video, a mask, a
file value), for the run page's `<img>` / `<audio>` / `<video>` elements.

Only a blob that one of the run's values (or table cells) references is served, to a caller who
may read the run's project. Its Content-Type comes from a fixed list by the value's type and
stored format, never from the bytes or the request: inline images (png, jpeg, gif, webp, bmp),
audio and video; anything else (HTML, SVG, 3D objects, molecules, JSON) is an attachment of type
`application/octet-stream`. Every answer says `nosniff` and carries a sandboxing CSP, so a logged
file can never run script in the UI's origin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from tracehouse._errors import NotFoundError
from tracehouse.collector.http.deps import parts, principal
from tracehouse.collector.http.runs import _blob_store, _check
from tracehouse.collector.ui.run_values import media_of
from tracehouse.collector.ui.value_views import INLINE_IMAGES

router = APIRouter()
AUDIO = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac", "m4a": "audio/mp4"}
VIDEO = {"mp4": "video/mp4", "webm": "video/webm", "ogg": "video/ogg", "gif": "image/gif"}
_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600"}  # fmt: skip


def media_type(kind: str, fmt: str) -> tuple[str, bool]:
    """(Content-Type, inline) for a value of `kind` stored in format `fmt`."""
    fmt = fmt.lower()
    if kind == "image" and fmt in INLINE_IMAGES:
        return INLINE_IMAGES[fmt], True
    if kind == "audio" and fmt in AUDIO:
        return AUDIO[fmt], True
    if kind == "video" and fmt in VIDEO:
        return VIDEO[fmt], True
    return "application/octet-stream", False


@router.get("/runs/{run_id}/media/{digest}", include_in_schema=False)
async def run_media(request: Request, run_id: str, digest: str) -> Response:
    """The bytes of a blob run `run_id` logged, typed for the browser."""
    collector = parts(request)
    who = await principal(request)
    project = collector.bind_project(who, request.query_params.get("project"))
    _check(digest)
    await collector.caught_up()
    kind, fmt = await collector.read(media_of, collector.store, project, run_id, digest)
    content_type, inline = media_type(kind, fmt)
    name = f"{kind}-{digest[:12]}.{fmt or 'bin'}"
    headers = {**_HEADERS, "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"'}
    blobs = _blob_store(collector)
    local = blobs.local_path(digest)
    if local is not None:
        if not local.is_file():
            raise NotFoundError(f"blob {digest} is not in the collector's blob store")
        return FileResponse(local, media_type=content_type, headers=headers)
    return Response(await collector.read(blobs.read_bytes, digest), media_type=content_type, headers=headers)


__all__ = ["media_type", "router"]
