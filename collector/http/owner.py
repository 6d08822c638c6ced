"""`POST /api/v1/owner`: the collector as the store's owner for the processes of its data dir.

`tracehouse serve` / `ui` advertises itself in the embedded store's directory with a per-start
secret (see `collector/owner/ownership.py`); a local process presenting that secret is admin on every route, and on
this one runs the operations of `collector/owner/access.py` (reads, SQL, sweeps, keys, catch-up) as an SDK owner
would. No API key opens this route: only the secret, which only processes that can read the
data dir have.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import TYPE_CHECKING, Awaitable, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tracehouse.collector.owner.access import CatchUpReport, StoreAccess, dispatch, dumps, parse_request
from tracehouse.collector.owner.ownership import OWNER_KEY_ID
from tracehouse.collector.store.keys import Principal

if TYPE_CHECKING:
    from tracehouse.collector.server import SpoolFollower
    from tracehouse.collector.store.keys import KeyStore
    from tracehouse.collector.store.store import Store
    from tracehouse.collector.sweeps.controller import SweepController

OWNER = Principal(project=None, key_id=OWNER_KEY_ID)


def is_owner_secret(secret: str, presented: str) -> bool:
    """Whether `presented` is the owner secret (constant time)."""
    return hmac.compare_digest(presented.encode(), secret.encode())


def add_owner_routes(
    app: FastAPI,
    store: Store,
    principal: Callable[[Request], Awaitable[Principal]],
    follower: Optional[SpoolFollower],
    sweeps: Callable[[], SweepController],
    keys: Callable[[], KeyStore],
) -> None:
    """Register `POST /api/v1/owner` on `app`."""

    def catch_up() -> CatchUpReport:
        return CatchUpReport(rows=follower.catch_up() if follower is not None else 0)

    access = StoreAccess(store, catch_up, sweeps, keys)
    info = {"pid": os.getpid(), "kind": "collector", "store": store.url}

    @app.post("/api/v1/owner", include_in_schema=False)
    async def owner(request: Request) -> Response:
        who = await principal(request)
        if who.key_id != OWNER_KEY_ID:
            return Response(dumps({"error": "this route takes only the owner secret of the data dir"}), 403,
                            media_type="application/json")  # fmt: skip
        op, database, args = parse_request(await request.body())
        if op == "release":
            return Response(dumps({"error": "a collector does not hand the store over"}), 409,
                            media_type="application/json")  # fmt: skip
        if database and database != store.database:
            return Response(dumps({"error": f"database: this collector serves {store.database!r}, not {database!r}",
                                   "option": "database", "problem": f"this collector serves {store.database!r}"}),
                            400, media_type="application/json")  # fmt: skip
        status, body = await asyncio.to_thread(dispatch, access, op, args, info)
        return Response(body, status, media_type="application/json")


__all__ = ["OWNER", "add_owner_routes", "is_owner_secret"]
