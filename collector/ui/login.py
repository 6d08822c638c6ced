"""Keys for browsers: `/login` asks for a key (a collector that requires keys) and keeps it in an
HttpOnly, SameSite=Strict cookie; the form carries a CSRF token (double submit: the form's copy
must match a cookie only this origin can set). Also the UI's one script, `/static/ui.js`."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tracehouse.collector.http.deps import parts
from tracehouse.collector.ui.render import html

KEY_COOKIE = "tracehouse_key"
CSRF_COOKIE = "tracehouse_csrf"
UI_SCRIPT = (Path(__file__).with_name("static") / "ui.js").read_bytes()
router = APIRouter(include_in_schema=False)


@router.get("/static/ui.js")
async def script() -> Response:
    """The pages' script (the project picker); no page has inline script."""
    return Response(UI_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


def _form(status: int, target: str, error: Optional[str] = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)  # double-submit: the form's copy must match the cookie's
    page = html("login.html", status, page="login", project="", projects=[], request_path="/login", next=target,
                csrf=token, error=error)  # fmt: skip
    page.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return page


def _refused(status: int, heading: str, error: str) -> HTMLResponse:
    return html("error.html", status, page="login", project="", projects=[], request_path="/login", error=error,
                heading=heading, status=status)  # fmt: skip


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return _form(200, request.query_params.get("next") or "/")


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the key and the form's token, then keep the key in a cookie and go where the user was."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _refused(415, "Unsupported", "expected a form")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key, target = (form.get("key") or [""])[0].strip(), (form.get("next") or ["/"])[0]
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    sent, expected = (form.get("csrf") or [""])[0], request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _refused(403, "Forbidden", "this form expired or came from another site; open the sign-in page again")
    collector = parts(request)
    if collector.require_keys and (not key or await collector.read(collector.keys.verify, key) is None):
        return _form(401, target, error="unknown or revoked key")
    response = RedirectResponse(target, 303)
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/login")
    return response


__all__ = ["CSRF_COOKIE", "KEY_COOKIE", "router"]
