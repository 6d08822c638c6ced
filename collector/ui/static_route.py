"""The UI's static files beyond `ui.js`: the chart script and the vendored uPlot (scripts/vendor-uplot).

Only the files named here are served, read once at import, each with a fixed media type, so no
request path reaches the file system. The pages' CSP (`script-src 'self'`) allows these scripts
and no inline script; chart data travels in `<script type="application/json">` blocks, which
browsers never execute.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from tracehouse._errors import NotFoundError

_STATIC = Path(__file__).with_name("static")
_TYPES = {".js": "text/javascript", ".css": "text/css"}
FILES = ("charts.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")
_CONTENT = {name: ((_STATIC / name).read_bytes(), _TYPES[Path(name).suffix]) for name in FILES}
router = APIRouter(include_in_schema=False)


@router.get("/static/{name:path}")
async def static_file(name: str) -> Response:
    """One of the listed static files (404 for anything else)."""
    if name not in _CONTENT:
        raise NotFoundError(f"no static file {name!r}")
    body, media_type = _CONTENT[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


__all__ = ["FILES", "router"]
