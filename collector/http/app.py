"""The collector's HTTP face: OTLP/HTTP traces, tracehouse records, reads, health and metrics.

Errors map to statuses at this edge: 400 with a reason for bad input, 404 for unknown ids, 413
for size, 415 for a content type or encoding it does not speak, 503 with Retry-After when the
writer's queue is full or the store is unavailable.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from tracehouse._errors import ConfigError, NotFoundError, StoreError
from tracehouse.collector.http.guard import LOOPBACK_HOSTS, BodyError, EdgeGuard, EdgePolicy, is_disk_full, read_json
from tracehouse.collector.http.owner import OWNER, add_owner_routes, is_owner_secret
from tracehouse.collector.http.runs import add_run_routes
from tracehouse.collector.http.sweeps import add_sweep_routes
from tracehouse.collector.ingest.writer import BadBatch, BatchWriter, Overloaded, WriteResult
from tracehouse.collector.otlp.decode import OtlpError, decode_traces
from tracehouse.collector.owner.access import MAX_OWNER_BODY, encode_frame
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.keys import ANONYMOUS_ADMIN, KeyStore, Principal
from tracehouse.collector.store.readonly import QueryLimits
from tracehouse.collector.store.store import Store
from tracehouse.collector.sweeps.controller import SweepController
from tracehouse.collector.ui.pages import add_ui_routes

if TYPE_CHECKING:
    from tracehouse.collector.blobs import BlobStore
    from tracehouse.collector.ingest.wal import CollectorWal
    from tracehouse.collector.server import SpoolFollower

PROTOBUF = "application/x-protobuf"
# FastAPI 0.16x traces every request through the global OpenTelemetry provider; in the collector
# that provider may be tracehouse's own, so each request would write spans into the store it serves.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


@dataclass(frozen=True)
class CollectorConfig:
    """What the collector's endpoints need to know."""

    default_project: str = "default"
    max_body_bytes: int = 32 * 1024 * 1024
    max_backlog: int = 2_000_000  # spans answered but not yet inserted; past it, 503
    query_max_rows: int = 10_000
    query_timeout: float = 30.0
    max_blob_bytes: int = 64 * 1024**3  # one artifact file or media blob
    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS  # Host header names answered (see collector/http/guard.py)
    body_timeout: float = 30.0  # a request body that stops arriving this long is answered 408
    owner_secret: str = ""  # the per-start secret of the store's advertisement: local processes' admin key

    def edge_policy(self) -> EdgePolicy:
        """Hosts and body limits for the edge guard."""
        limits = (
            ("/v1/traces", self.max_body_bytes),
            ("/api/v1/records", self.max_body_bytes),
            ("/api/v1/blobs/", self.max_blob_bytes),
            ("/api/v1/owner", MAX_OWNER_BODY),
            ("/login", 16 * 1024),
        )
        return EdgePolicy(self.allowed_hosts, limits, 1024 * 1024, self.body_timeout)  # fmt: skip


def _json(value: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> Response:
    body = orjson.dumps(value, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(value)


def _error(status: int, message: str, retry_after: Optional[float] = None) -> Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return _json({"error": message}, status, headers)


def frame_json(frame: Any) -> dict[str, Any]:
    """A DataFrame as {"columns": [...], "dtypes": [...], "rows": [[...]]} with NULLs as null."""
    return encode_frame(frame)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise OtlpError(413, f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise OtlpError(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _store_records(writer: BatchWriter, records: list[dict[str, Any]], token: Optional[str]) -> WriteResult:
    future = await asyncio.to_thread(writer.submit, records, token)  # maps records: CPU off the event loop
    return await asyncio.wrap_future(future)


class AuthError(Exception):
    """401 (no or a bad key) or 403 (a key acting outside its project)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _presented_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return (request.headers.get("x-tracehouse-key") or request.cookies.get("tracehouse_key") or "").strip()


def _check_projects(principal: Principal, records: list[dict[str, Any]]) -> None:
    if principal.admin:
        return
    others = {str(r.get("project")) for r in records} - {principal.project}
    if others:
        raise AuthError(403, f"this key writes only project {principal.project!r}, not {sorted(others)}")


def _read_project(principal: Principal, project: Optional[str], default: str) -> str:
    if project is not None:
        q.check_project(project)  # a list or a number is a bad argument, never a query
    if principal.admin:
        return project or default
    if project not in (None, principal.project):
        raise AuthError(403, f"this key reads only project {principal.project!r}")
    return str(principal.project)


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
    counters = {"requests_rejected": 0, "spans_rejected_at_decode": 0}
    key_store = keys if keys is not None else KeyStore(store)  # keys exist even when none is required

    def backlog() -> int:
        return wal.appended - follower.ingested if wal is not None and follower is not None else 0

    async def caught_up() -> None:
        if follower is not None:
            await asyncio.to_thread(follower.catch_up)

    async def accept_otlp(records: list[dict[str, Any]]) -> WriteResult:
        if wal is None or follower is None:
            return await _store_records(writer, records, None)
        waiting = backlog()
        if waiting + len(records) > config.max_backlog:
            writer.stats.overloaded += 1
            raise Overloaded(retry_after=max(1.0, waiting / 20_000))
        await asyncio.to_thread(wal.append, records)
        return WriteResult(rows=len(records))

    async def principal(request: Request) -> Principal:
        presented = _presented_key(request)
        if config.owner_secret and presented and is_owner_secret(config.owner_secret, presented):
            return OWNER
        if keys is None:
            return ANONYMOUS_ADMIN
        if not presented:
            raise AuthError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        found = await asyncio.to_thread(keys.verify, presented)
        if found is None:
            raise AuthError(401, "unknown or revoked API key")
        return found

    def admin_only(who: Principal) -> None:
        if not who.admin:
            raise AuthError(403, "this endpoint needs an admin key")

    @app.exception_handler(BodyError)
    async def _body(request: Request, error: BodyError) -> Response:
        return _error(error.status, str(error))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, error: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return _json({"error": str(error)}, error.status, headers)

    @app.exception_handler(ConfigError)
    async def _bad_argument(request: Request, error: ConfigError) -> Response:
        return _error(400, str(error))

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, error: NotFoundError) -> Response:
        return _error(404, str(error))

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, error: StoreError) -> Response:
        if is_disk_full(error):
            return _error(507, f"the collector's disk is full: {error}")
        return _error(503, str(error), retry_after=5)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, error: OSError) -> Response:
        if is_disk_full(error):
            return _error(507, f"the collector's disk is full ({error.strerror or error}); nothing of this request "
                               "was kept, free some space and send it again")  # fmt: skip
        return _error(503, f"the collector could not write: {error}", retry_after=5)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, error: Overloaded) -> Response:
        return _error(503, str(error), retry_after=error.retry_after)

    @app.post("/v1/traces")
    async def otlp_traces(request: Request) -> Response:
        who = await principal(request)
        content_type = request.headers.get("content-type", "")
        try:
            body = await _read_body(request, config.max_body_bytes)
            decoded = await asyncio.to_thread(  # CPU work off the event loop
                decode_traces, body, content_type, request.headers.get("content-encoding"),
                who.project or config.default_project, max_bytes=config.max_body_bytes * 4,
            )  # fmt: skip
        except OtlpError as error:
            counters["requests_rejected"] += 1
            return _error(error.status, str(error))
        _check_projects(who, decoded.records)
        counters["spans_rejected_at_decode"] += decoded.rejected
        result = await accept_otlp(decoded.records) if decoded.records else WriteResult()
        rejected = decoded.rejected + len(result.rejected)
        message = "; ".join((decoded.errors + result.rejected)[:20])
        return _otlp_response("protobuf" in content_type.lower(), rejected, message)

    @app.post("/api/v1/records")
    async def records(request: Request) -> Response:
        """tracehouse's own records (spool frames from SDK senders); X-Tracehouse-Batch makes resends no-ops."""
        who = await principal(request)
        try:
            body = await _read_body(request, config.max_body_bytes)
        except OtlpError as error:
            return _error(error.status, str(error))
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "expected application/json: a JSON array of records")
        if body.lstrip()[:1] != b"[":
            return _error(400, "expected a JSON array of record objects")
        token = request.headers.get("x-tracehouse-batch") or None
        # Passed on undecoded: the embedded store parses and maps it (see store/rows/span_sql.py), off the GIL.
        future = writer.submit_json(body, token, None if who.admin else who.project)
        try:
            result = await asyncio.wrap_future(future)
        except BadBatch as error:
            return _error(400, str(error))
        except PermissionError as error:
            raise AuthError(403, f"this key writes only project {who.project!r}, not {error.args[0]}") from error
        return _json({"accepted": result.rows, "rejected": len(result.rejected), "errors": result.rejected[:20],
                      "unknown_types": result.unknown_types})  # fmt: skip

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        if not store.ping():
            return _error(503, "the store does not answer", retry_after=5)
        return _json({"status": "ready", "queued_rows": writer.queued_rows + backlog()})

    @app.get("/metrics")
    def metrics() -> Response:
        stats = writer.stats
        lines = [
            ("tracehouse_records_received_total", "counter", "Records accepted into the write queue", stats.received),
            ("tracehouse_records_written_total", "counter", "Records stored", stats.written),
            (
                "tracehouse_records_rejected_total",
                "counter",
                "Records refused (bad values)",
                stats.rejected + counters["spans_rejected_at_decode"],
            ),
            ("tracehouse_requests_rejected_total", "counter", "Requests refused whole", counters["requests_rejected"]),
            ("tracehouse_overloaded_total", "counter", "Submissions refused with 503", stats.overloaded),
            ("tracehouse_queue_rows", "gauge", "Records accepted, not yet inserted", writer.queued_rows + backlog()),
            ("tracehouse_inserts_total", "counter", "Inserts into the store", stats.inserts),
            ("tracehouse_insert_failures_total", "counter", "Inserts that failed", stats.failed_inserts),
            ("tracehouse_insert_seconds_total", "counter", "Time spent inserting", round(stats.insert_seconds, 6)),
        ]
        text = "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n} {v}\n" for n, t, h, v in lines)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.post("/api/v1/query")
    async def query(request: Request) -> Response:
        admin_only(await principal(request))
        payload = await read_json(request)
        await caught_up()
        sql, parameters = (
            (payload.get("sql"), payload.get("parameters") or {}) if isinstance(payload, dict) else (None, None)
        )
        if not isinstance(sql, str) or not sql.strip() or not isinstance(parameters, dict):
            return _error(400, 'expected {"sql": "...", "parameters": {...}}')
        limits = _query_limits(payload, config)
        frame = await asyncio.to_thread(store.query_readonly_df, sql, parameters, limits)
        return _json(frame_json(frame))

    @app.get("/api/v1/traces")
    async def traces(
        request: Request,
        project: Optional[str] = None,
        limit: int = 20,
        since: str = "24h",
        name: Optional[str] = None,
        status: Optional[str] = None,
    ) -> Response:
        bound = _read_project(await principal(request), project, config.default_project)
        await caught_up()
        frame = await asyncio.to_thread(q.traces, store, bound, limit=limit, since=since, name=name, status=status)
        return _json(frame_json(frame))

    @app.get("/api/v1/traces/{trace_id}")
    async def trace_tree(request: Request, trace_id: str, project: Optional[str] = None) -> Response:
        bound = _read_project(await principal(request), project, config.default_project)
        await caught_up()
        return _json(await asyncio.to_thread(q.trace_tree, store, bound, trace_id))

    @app.get("/api/v1/latency")
    async def latency(request: Request, project: Optional[str] = None, by: str = "name", since: str = "1h") -> Response:
        bound = _read_project(await principal(request), project, config.default_project)
        await caught_up()
        return _json(frame_json(await asyncio.to_thread(q.latency, store, bound, by=by, since=since)))

    def bind_project(who: Principal, project: Optional[str]) -> str:
        return _read_project(who, project, config.default_project)

    add_run_routes(app, store, blobs, principal, bind_project, caught_up, frame_json, config.max_blob_bytes)

    # the sweep controller records its claims in the collector's write-ahead log (durable on return)
    def record(record: dict[str, Any]) -> None:
        if wal is not None:
            wal.append([record])
        else:
            writer.submit([record]).result()

    sweeps = SweepController(store, submit=record)
    add_sweep_routes(app, sweeps, principal, bind_project, caught_up)
    add_ui_routes(app, store, sweeps, principal, bind_project, caught_up, keys.verify if keys is not None else None)

    @app.post("/api/v1/keys")
    async def create_key(request: Request) -> Response:
        admin_only(await principal(request))
        payload = await read_json(request, default={})
        if not isinstance(payload, dict) or (not payload.get("admin") and not isinstance(payload.get("project"), str)):
            return _error(400, 'expected {"project": "...", "name": "..."} or {"admin": true}')
        project = None if payload.get("admin") else q.check_project(payload["project"])
        key_id, key = await asyncio.to_thread(key_store.create, project, str(payload.get("name", "")))
        return _json({"key_id": key_id, "key": key, "project": project, "admin": project is None})

    @app.get("/api/v1/keys")
    async def list_keys(request: Request) -> Response:
        admin_only(await principal(request))
        return _json({"keys": await asyncio.to_thread(key_store.list)})

    @app.delete("/api/v1/keys/{key_id}")
    async def revoke_key(request: Request, key_id: str) -> Response:
        admin_only(await principal(request))
        if not await asyncio.to_thread(key_store.revoke, key_id):
            return _error(404, f"no key {key_id!r}")
        return _json({"revoked": key_id})

    add_owner_routes(app, store, principal, follower, lambda: sweeps, lambda: key_store)
    return app


def _query_limits(payload: dict[str, Any], config: CollectorConfig) -> QueryLimits:
    """The collector's limits, lowered (never raised) by `max_rows` / `timeout` in the request."""
    rows, timeout = payload.get("max_rows"), payload.get("timeout")
    limits = QueryLimits(max_rows=config.query_max_rows, timeout=config.query_timeout)
    asked = QueryLimits(max_rows=rows if rows is not None else limits.max_rows,
                        timeout=timeout if timeout is not None else limits.timeout).checked()  # fmt: skip
    return QueryLimits(max_rows=int(min(asked.max_rows, limits.max_rows)), timeout=min(asked.timeout, limits.timeout))


def _otlp_response(protobuf: bool, rejected: int, message: str) -> Response:
    """ExportTraceServiceResponse, with partial_success when some spans were refused."""
    if protobuf:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return Response(response.SerializeToString(), media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": message}
    return _json(body)


__all__ = ["CollectorConfig", "create_app", "frame_json"]
