"""The collector's edge: loopback is not a trust boundary.

`EdgeGuard` is an ASGI middleware in front of every route:

- **Host allowlist**: only `localhost`, `127.0.0.1`, `[::1]`, the address `serve` binds and the
  hosts it was told to accept (`--allowed-host`); anything else is 403, so a page whose DNS name
  was rebound to 127.0.0.1 gets nothing.
- **Origin checks**: a state-changing request (anything but GET / HEAD / OPTIONS) and every SQL
  request must come from the collector's own origin or from no browser at all (no `Origin`,
  `Sec-Fetch-Site` absent or `same-origin` / `none`); a cross-site form POST is 403.
- **Bounded bodies**: each route has a body limit (413 naming it, from `Content-Length` or while the
  body streams), and a body that stops arriving for `body_timeout` seconds is 408.
- **Security headers** on every response: a CSP without inline script (`frame-ancestors 'none'`),
  `X-Content-Type-Options: nosniff`, `Referrer-Policy`, `X-Frame-Options`.

JSON endpoints read their body with `read_json`, which also requires `Content-Type:
application/json` (415): a browser cannot send that cross-site without a CORS preflight, which the
collector never grants.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlsplit

import orjson

from tracehouse._errors import ConfigError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyError(Exception):
    """A request body over its limit (413) or too slow to arrive (408)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class EdgePolicy:
    """What the edge accepts: hosts, body limits by route, how long a body may take."""

    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS  # lowercase names without port; "*" accepts any
    body_limits: tuple[tuple[str, int], ...] = field(default_factory=tuple)  # (path prefix, bytes), first match
    default_body_limit: int = 1024 * 1024
    body_timeout: float = 30.0
    sql_paths: frozenset[str] = frozenset({"/api/v1/query"})

    def body_limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.body_limits if path.startswith(prefix)), self.default_body_limit)


def allowed_hosts(bind_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Loopback names, the bound address (unless it is a wildcard) and the extra names."""
    hosts = set(LOOPBACK_HOSTS) | {h.strip().lower().strip("[]") for h in extra if h.strip()}
    bound = bind_host.strip().lower().strip("[]")
    try:
        wildcard = ipaddress.ip_address(bound).is_unspecified
    except ValueError:
        wildcard = False
    if bound and not wildcard:
        hosts.add(bound)
    return frozenset(hosts)


def host_name(header: str) -> str:
    """The host part of a Host header, lowercase, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class EdgeGuard:
    """The ASGI middleware described above."""

    def __init__(self, app: Any, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        limit = self.policy.body_limit(scope.get("path", ""))
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _respond(send, 413, f"body of {declared} bytes is over this route's limit of {limit:,} bytes")
            return
        await self.app(scope, _bounded_receive(receive, limit, self.policy.body_timeout), _with_headers(send))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Optional[tuple[int, str]]:
        host = host_name(headers.get("host", ""))
        if "*" not in self.policy.allowed_hosts and host not in self.policy.allowed_hosts:
            return 403, f"Host {headers.get('host', '')!r} is not one this collector answers (see --allowed-host)"
        if scope["method"] in SAFE_METHODS and scope.get("path") not in self.policy.sql_paths:
            return None
        origin, fetch_site = headers.get("origin"), headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return 403, f"a {fetch_site} request may not change anything or run SQL here"
        if origin is not None:
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
            parts = urlsplit(origin.lower())
            if origin == "null" or f"{parts.scheme}://{parts.netloc}" != own:
                return 403, f"a request from {origin!r} may not change anything or run SQL here"
        return None


def _bounded_receive(receive: Receive, limit: int, timeout: float) -> Receive:
    state = {"size": 0, "done": False}

    async def bounded() -> dict[str, Any]:
        if state["done"]:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except asyncio.TimeoutError:
            raise BodyError(408, f"the request body stopped arriving for {timeout:g} s") from None
        if message["type"] == "http.request":
            state["size"] += len(message.get("body", b""))
            if state["size"] > limit:
                raise BodyError(413, f"body is over this route's limit of {limit:,} bytes")
            state["done"] = not message.get("more_body", False)
        else:
            state["done"] = True
        return message

    return bounded


def _with_headers(send: Send) -> Send:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers") or []}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = {**message, "headers": [*(message.get("headers") or []), *extra]}
        await send(message)

    return sending


async def _respond(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *SECURITY_HEADERS]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(error: BaseException) -> bool:
    """Whether an error (an OSError, or a store error about its disk) means there is no space left."""
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS:
            return True
    text = str(error)
    return "No space left on device" in text or "NOT_ENOUGH_SPACE" in text or "Disk quota exceeded" in text


async def read_json(request: Any, default: Any = None) -> Any:
    """The JSON body of a request (the edge bounds its size and time): 415 unless it is sent as
    application/json, ConfigError("body") when it does not parse. An empty body is `default`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body.strip() and default is not None:
        return default
    if content_type != "application/json":
        raise BodyError(415, "expected Content-Type: application/json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ConfigError("body", "expected a JSON body") from None


__all__ = ["BodyError", "EdgeGuard", "EdgePolicy", "allowed_hosts", "host_name", "is_disk_full", "read_json"]
