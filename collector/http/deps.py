"""What every route depends on: the collector's parts, who is asking, and the shapes of answers.

`create_app` puts one `Collector` on `app.state`; routes take it and the caller's `Principal`
as FastAPI dependencies (`Depends(parts)`, `Depends(principal)`), so each area's routes live in a
module of their own with no closures.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response

from tracehouse.collector.http.config import CollectorConfig
from tracehouse.collector.owner.access import dumps, encode_frame
from tracehouse.collector.owner.ownership import OWNER_KEY_ID
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.keys import ANONYMOUS_ADMIN, KeyStore, Principal

if TYPE_CHECKING:
    from tracehouse.collector.blobs import BlobStore
    from tracehouse.collector.ingest.batch_writer import BatchWriter
    from tracehouse.collector.ingest.follower import SpoolFollower
    from tracehouse.collector.ingest.wal import CollectorWal
    from tracehouse.collector.otlp.forward import OtlpForwarder
    from tracehouse.collector.owner.access import StoreAccess
    from tracehouse.collector.store.store import Store
    from tracehouse.collector.sweeps.controller import SweepController

OWNER = Principal(project=None, key_id=OWNER_KEY_ID)
T = TypeVar("T")


@dataclass
class Collector:
    """A running collector's parts, as its routes see them."""

    store: Store
    writer: BatchWriter
    config: CollectorConfig
    keys: KeyStore  # keys exist even when none is required (`tracehouse keys create` beside the UI)
    require_keys: bool
    wal: Optional[CollectorWal] = None
    follower: Optional[SpoolFollower] = None
    blobs: Optional[BlobStore] = None
    sweeps: Optional[SweepController] = None
    owner_access: Optional[StoreAccess] = None
    forwarder: Optional[OtlpForwarder] = None  # `serve --forward-otlp`: tees what was received
    counters: dict[str, int] = field(default_factory=lambda: {"requests_rejected": 0, "spans_rejected_at_decode": 0})
    # Reads and ingest have threads of their own: a slow dashboard query never holds up OTLP decoding
    # and WAL appends (the event loop's default pool would make them queue behind each other).
    read_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, "tracehouse-read"))
    ingest_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, "tracehouse-ingest"))

    def backlog(self) -> int:
        """Spans answered (in the WAL) and not yet inserted (local processes' segments not counted)."""
        if self.wal is None or self.follower is None:
            return 0
        return max(0, self.wal.appended - self.follower.wal_ingested)

    async def read(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on a read thread."""
        return await asyncio.get_running_loop().run_in_executor(self.read_pool, partial(function, *args, **kwargs))

    async def ingest(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function(*args, **kwargs)` on an ingest thread (decoding, WAL appends)."""
        return await asyncio.get_running_loop().run_in_executor(self.ingest_pool, partial(function, *args, **kwargs))

    async def caught_up(self) -> None:
        """Wait until what the WAL and the data dir's spool held is stored, so a read sees every
        answered request (bounded: see SpoolFollower.catch_up)."""
        if self.follower is not None:
            await self.read(self.follower.catch_up)

    def close(self) -> None:
        """Stop the read and ingest threads (after what they are doing)."""
        self.read_pool.shutdown(wait=True)
        self.ingest_pool.shutdown(wait=True)

    def record(self, record: dict[str, Any]) -> None:
        """A record of the collector itself (the sweep controller's claims), durable on return."""
        if self.wal is not None:
            self.wal.append([record])
        else:
            self.writer.submit([record]).result()

    def bind_project(self, who: Principal, project: Any) -> str:
        """The project a request acts on: the one asked for (admin) or the key's own (403 for another)."""
        if project is not None:
            q.check_project(project)  # a list or a number is a bad argument, never a query
        if who.admin:
            return str(project or self.config.default_project)
        if project not in (None, who.project):
            raise AuthError(403, f"this key reads only project {who.project!r}")
        return str(who.project)


class AuthError(Exception):
    """401 (no or a bad key) or 403 (a key acting outside its project)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parts(request: Request) -> Collector:
    """The collector serving this request."""
    found: Collector = request.app.state.collector
    return found


LANGFUSE_OTLP_PREFIX = "/api/public/otel/"  # where Langfuse's SDK (v3 and later) posts its OTLP


def presented_key(request: Request) -> str:
    """The key a request carries: `Authorization: Bearer`, `X-Tracehouse-Key` or the UI's cookie; on
    Langfuse's OTLP path also `Authorization: Basic` (public key:secret key), the secret key being ours."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if header[:6].lower() == "basic " and request.url.path.startswith(LANGFUSE_OTLP_PREFIX):
        return basic_password(header[6:])
    return (request.headers.get("x-tracehouse-key") or request.cookies.get("tracehouse_key") or "").strip()


def basic_password(credentials: str) -> str:
    """The password of HTTP Basic credentials (base64 of user:password); "" when they are not such."""
    import base64
    import binascii

    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    _, colon, password = decoded.partition(":")
    return password.strip() if colon else ""


async def principal(request: Request) -> Principal:
    """Who is asking: the owner (its secret), admin on a keyless collector, else the key's principal."""
    return await principal_of(parts(request), presented_key(request))


async def principal_of(collector: Collector, presented: str) -> Principal:
    """The principal of a presented key; AuthError(401) when it is missing or unknown."""
    found = _without_lookup(collector, presented)
    return found if found is not None else _verified(await asyncio.to_thread(collector.keys.verify, presented))


def principal_now(collector: Collector, presented: str) -> Principal:
    """`principal_of` on the calling thread (the gRPC receiver's workers): the same checks."""
    found = _without_lookup(collector, presented)
    return found if found is not None else _verified(collector.keys.verify(presented))


def _without_lookup(collector: Collector, presented: str) -> Optional[Principal]:
    """The owner (its secret) or admin on a keyless collector; None when the key store must be asked."""
    secret = collector.config.owner_secret
    if secret and presented and hmac.compare_digest(presented.encode(), secret.encode()):
        return OWNER
    if not collector.require_keys:
        return ANONYMOUS_ADMIN
    if not presented:
        raise AuthError(401, "an API key is required: send 'Authorization: Bearer <key>'")
    return None


def _verified(found: Optional[Principal]) -> Principal:
    if found is None:
        raise AuthError(401, "unknown or revoked API key")
    return found


CollectorDep = Annotated[Collector, Depends(parts)]  # a route's collector
Caller = Annotated[Principal, Depends(principal)]  # who calls a route


def admin_only(who: Principal) -> None:
    """403 unless the caller is admin."""
    if not who.admin:
        raise AuthError(403, "this endpoint needs an admin key")


def json_response(value: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> Response:
    """A JSON answer (datetimes, numpy values and NaN handled)."""
    return Response(dumps(value), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, retry_after: Optional[float] = None) -> Response:
    """`{"error": message}` with `status`, and `Retry-After` when given."""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return json_response({"error": message}, status, headers)


def frame_json(frame: Any) -> dict[str, Any]:
    """A DataFrame as {"columns": [...], "dtypes": [...], "rows": [[...]]} with NULLs as null."""
    return encode_frame(frame)


__all__ = [
    "OWNER",
    "AuthError",
    "Caller",
    "Collector",
    "CollectorDep",
    "admin_only",
    "error_response",
    "frame_json",
    "json_response",
    "parts",
    "presented_key",
    "principal",
    "principal_now",
    "principal_of",
]
