"""`POST /api/v1/owner`: the collector as the store's owner for the processes of its data dir.

`tracehouse serve` / `ui` advertises itself in the embedded store's directory with a per-start
secret (see `collector/owner/ownership.py`); a local process presenting that secret is admin on
every route, and on this one runs the operations of `collector/owner/access.py` (reads, SQL,
sweeps, keys, catch-up) as an SDK owner would. No API key opens this route: only the secret,
which only processes that can read the data dir have.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse.collector.http.deps import Caller, Collector, CollectorDep, error_response, json_response
from tracehouse.collector.owner.access import CatchUpReport, StoreAccess, dispatch, parse_request
from tracehouse.collector.owner.ownership import OWNER_KEY_ID
from tracehouse.collector.sweeps.controller import SweepController

router = APIRouter()


def owner_access(collector: Collector) -> StoreAccess:
    """The owner operations of a collector: its store, its follower's catch-up, its sweeps and keys."""
    follower = collector.follower

    def catch_up() -> CatchUpReport:
        return CatchUpReport(rows=follower.catch_up() if follower is not None else 0)

    def sweeps() -> SweepController:
        assert collector.sweeps is not None
        return collector.sweeps

    return StoreAccess(collector.store, catch_up, sweeps, lambda: collector.keys)


@router.post("/api/v1/owner", include_in_schema=False)
async def owner(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """One owner operation, for a process that holds the owner secret."""
    if who.key_id != OWNER_KEY_ID:
        return error_response(403, "this route takes only the owner secret of the data dir")
    op, database, args = parse_request(await request.body())
    if op == "release":
        return error_response(409, "a collector does not hand the store over")
    store = collector.store
    if database and database != store.database:
        problem = f"this collector serves {store.database!r}, not {database!r}"
        return json_response({"error": f"database: {problem}", "option": "database", "problem": problem}, 400)
    info = {"pid": os.getpid(), "kind": "collector", "store": store.url}
    assert collector.owner_access is not None
    status, body = await collector.read(dispatch, collector.owner_access, op, args, info)
    return Response(body, status, media_type="application/json")


__all__ = ["owner_access", "router"]
