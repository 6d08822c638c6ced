"""The collector's HTTP app: the edge guard, the error mapping, and one router per area.

| module | routes |
|---|---|
| `ingest` | `POST /v1/traces`, `/v1/logs`, `/v1/metrics` (OTLP/HTTP), `POST /api/v1/records` (the SDK's senders) |
| `reads` | `POST /api/v1/query`, `GET /api/v1/traces`, `GET /api/v1/traces/{id}`, `GET /api/v1/latency` |
| `runs` | `POST /api/v1/read`, `HEAD/GET/PUT /api/v1/blobs/{sha256}` |
| `sweeps` | `/api/v1/sweeps...` (create, status, next, heartbeat, control) |
| `keys` | `/api/v1/keys` |
| `owner` | `POST /api/v1/owner` (local processes, with the owner secret) |
| `health` | `/healthz`, `/readyz`, `/metrics` |
| `ui.pages` | the web UI and its JSON twins under `/api/v1/ui/` |
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Optional

from fastapi import FastAPI

from tracehouse.collector.http import health, ingest, keys, owner, reads, runs, sweeps
from tracehouse.collector.http.config import CollectorConfig
from tracehouse.collector.http.deps import Collector, frame_json
from tracehouse.collector.http.errors import install_error_handlers
from tracehouse.collector.http.guard import EdgeGuard
from tracehouse.collector.store.keys import KeyStore
from tracehouse.collector.sweeps.controller import SweepController
from tracehouse.collector.ui import pages

if TYPE_CHECKING:
    from tracehouse.collector.blobs import BlobStore
    from tracehouse.collector.ingest.batch_writer import BatchWriter
    from tracehouse.collector.ingest.follower import SpoolFollower
    from tracehouse.collector.ingest.wal import CollectorWal
    from tracehouse.collector.store.store import Store

# FastAPI 0.16x traces every request through the global OpenTelemetry provider; in the collector
# that provider may be tracehouse's own, so each request would write spans into the store it serves.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
ROUTERS = (ingest.router, reads.router, runs.router, sweeps.router, keys.router, owner.router, health.router,
           pages.router)  # fmt: skip


def create_app(
    store: Store,
    writer: BatchWriter,
    config: CollectorConfig,
    keys: Optional[KeyStore] = None,
    wal: Optional[CollectorWal] = None,
    follower: Optional[SpoolFollower] = None,
    blobs: Optional[BlobStore] = None,
) -> FastAPI:
    """The FastAPI application of `tracehouse serve`; with `keys`, every data endpoint needs an API key.

    With a `wal` (and its `follower`), OTLP requests are answered once durable in the collector's
    spool and inserted in large batches; reads first catch up with the follower. `blobs` serves
    artifact and media contents (`/api/v1/blobs`).
    """
    app = FastAPI(title="tracehouse collector", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  **_NO_TELEMETRY)  # fmt: skip
    app.add_middleware(EdgeGuard, policy=config.edge_policy())
    collector = Collector(store, writer, config, keys if keys is not None else KeyStore(store), keys is not None,
                          wal, follower, blobs)  # fmt: skip
    # the sweep controller records its claims in the collector's write-ahead log (durable on return)
    collector.sweeps = SweepController(store, submit=collector.record)
    collector.owner_access = owner.owner_access(collector)
    app.state.collector = collector
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


__all__ = ["CollectorConfig", "create_app", "frame_json"]
