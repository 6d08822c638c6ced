"""Records in: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` (OTLP/HTTP, protobuf or JSON) and
`POST /api/v1/records` (the SDK's). The OTLP/gRPC receiver (`collector/grpc/`) shares `accept_decoded`.

An OTLP request is answered once its spans are durable in the collector's write-ahead log (they
are inserted in large batches right after); past `max_backlog` spans waiting, 503 with
Retry-After. Records from SDK senders travel undecoded to the store's writer, and their batch
token (`X-Tracehouse-Batch`) makes a resend a no-op.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracehouse.collector.http.deps import AuthError, Caller, Collector, CollectorDep, error_response, json_response
from tracehouse.collector.ingest.batch_writer import Overloaded
from tracehouse.collector.ingest.writer import BadBatch, WriteResult
from tracehouse.collector.otlp.common import DecodedSpans
from tracehouse.collector.otlp.decode import OtlpError, decode_traces
from tracehouse.collector.otlp.logs import decode_logs
from tracehouse.collector.otlp.metrics import decode_metrics
from tracehouse.collector.store.keys import Principal

PROTOBUF = "application/x-protobuf"
Forwarded = Callable[[], tuple[bytes, str, Optional[str]]]  # the request as received: body, type, encoding
router = APIRouter()


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


def _check_projects(who: Principal, records: list[dict[str, Any]]) -> None:
    if who.admin:
        return
    others = {str(r.get("project")) for r in records} - {who.project}
    if others:
        raise AuthError(403, f"this key writes only project {who.project!r}, not {sorted(others)}")


def _check_backlog(collector: Collector, count: int) -> None:
    """Overloaded (503 / UNAVAILABLE) past `max_backlog` records answered and not yet inserted."""
    waiting = collector.backlog()
    if waiting + count > collector.config.max_backlog:
        collector.writer.stats.overloaded += 1
        raise Overloaded(retry_after=max(1.0, waiting / 20_000))


async def _accept(collector: Collector, records: list[dict[str, Any]]) -> WriteResult:
    """Durable in the WAL (or stored, without one) before the request is answered."""
    if collector.wal is None or collector.follower is None:
        future = await collector.ingest(collector.writer.submit, records, None)  # maps records off the loop
        return await asyncio.wrap_future(future)
    _check_backlog(collector, len(records))
    await collector.ingest(collector.wal.append, records)
    return WriteResult(rows=len(records))


def _accept_now(collector: Collector, records: list[dict[str, Any]]) -> WriteResult:
    """`_accept` on the calling thread (the gRPC receiver's workers): durable when it returns."""
    if collector.wal is None or collector.follower is None:
        return collector.writer.submit(records).result()
    _check_backlog(collector, len(records))
    collector.wal.append(records)
    return WriteResult(rows=len(records))


@dataclass(frozen=True)
class Signal:
    """One OTLP signal: its decoder, its response message and how that names what was refused."""

    name: str  # traces, logs, metrics: the path /v1/<name> and the forwarder's
    decode: Callable[..., DecodedSpans]  # (body, content type, content encoding, project, max_bytes=)
    response: str  # module:class of the Export*ServiceResponse
    rejected_field: str  # partial_success's count of refused items (protobuf name)
    json_field: str  # the same in OTLP JSON
    counter: str  # collector.counters key of items refused at decode

    def response_message(self, rejected: int, message: str) -> Any:
        """The Export*ServiceResponse, with partial_success when something was refused."""
        module, _, name = self.response.partition(":")
        response = getattr(importlib.import_module(module), name)()
        if rejected:
            setattr(response.partial_success, self.rejected_field, rejected)
            response.partial_success.error_message = message
        return response


SIGNALS = {
    "traces": Signal("traces", decode_traces, "opentelemetry.proto.collector.trace.v1.trace_service_pb2:"
                     "ExportTraceServiceResponse", "rejected_spans", "rejectedSpans", "spans_rejected_at_decode"),
    "logs": Signal("logs", decode_logs, "opentelemetry.proto.collector.logs.v1.logs_service_pb2:"
                   "ExportLogsServiceResponse", "rejected_log_records", "rejectedLogRecords",
                   "logs_rejected_at_decode"),
    "metrics": Signal("metrics", decode_metrics, "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2:"
                      "ExportMetricsServiceResponse", "rejected_data_points", "rejectedDataPoints",
                      "points_rejected_at_decode"),
}  # fmt: skip


async def accept_decoded(
    collector: Collector, who: Principal, signal: Signal, decoded: DecodedSpans, forward: Optional[Forwarded] = None
) -> tuple[int, str]:
    """Make decoded records durable (the acknowledgement rule of every OTLP edge, HTTP and gRPC), then
    tee the request to the forwarder; (items refused, why). Raises AuthError, Overloaded, OSError."""
    _admit(collector, who, signal, decoded)
    result = await _accept(collector, decoded.records) if decoded.records else WriteResult()
    if forward is not None and collector.forwarder is not None:  # it appends to a file: off the event loop
        return await collector.ingest(_answered, collector, signal, decoded, result, forward)
    return _answered(collector, signal, decoded, result, forward)


def accept_decoded_now(
    collector: Collector, who: Principal, signal: Signal, decoded: DecodedSpans, forward: Optional[Forwarded] = None
) -> tuple[int, str]:
    """`accept_decoded` on the calling thread (the gRPC receiver's workers), under the same rules."""
    _admit(collector, who, signal, decoded)
    result = _accept_now(collector, decoded.records) if decoded.records else WriteResult()
    return _answered(collector, signal, decoded, result, forward)


def _admit(collector: Collector, who: Principal, signal: Signal, decoded: DecodedSpans) -> None:
    _check_projects(who, decoded.records)
    collector.counters[signal.counter] = collector.counters.get(signal.counter, 0) + decoded.rejected


def _answered(
    collector: Collector, signal: Signal, decoded: DecodedSpans, result: WriteResult, forward: Optional[Forwarded]
) -> tuple[int, str]:
    """Durable: tee the request to the forwarder; (items refused, why)."""
    if forward is not None and decoded.records and collector.forwarder is not None:
        collector.forwarder.offer(signal.name, *forward())
    return decoded.rejected + len(result.rejected), "; ".join((decoded.errors + result.rejected)[:20])


async def _otlp(request: Request, collector: Collector, who: Principal, signal: Signal) -> Response:
    config = collector.config
    content_type = request.headers.get("content-type", "")
    encoding = request.headers.get("content-encoding")
    try:
        body = await _read_body(request, config.max_body_bytes)
        decoded = await collector.ingest(  # CPU work off the event loop
            signal.decode, body, content_type, encoding, who.project or config.default_project,
            max_bytes=config.max_body_bytes * 4,
        )  # fmt: skip
    except OtlpError as error:
        collector.counters["requests_rejected"] += 1
        return error_response(error.status, str(error))
    rejected, message = await accept_decoded(collector, who, signal, decoded, lambda: (body, content_type, encoding))
    if "protobuf" in content_type.lower():
        return Response(signal.response_message(rejected, message).SerializeToString(), media_type=PROTOBUF)
    answer: dict[str, Any] = {}
    if rejected:
        answer["partialSuccess"] = {signal.json_field: rejected, "errorMessage": message}
    return json_response(answer)


@router.post("/v1/traces")
@router.post("/api/public/otel/v1/traces")  # Langfuse's SDK posts here (its secret key as our key, Basic auth)
async def otlp_traces(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """OTLP/HTTP spans from any OpenTelemetry SDK; refused spans are reported in partial_success."""
    return await _otlp(request, collector, who, SIGNALS["traces"])


@router.post("/v1/logs")
async def otlp_logs(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """OTLP/HTTP log records (GenAI events fold into their spans when read); refused ones in partial_success."""
    return await _otlp(request, collector, who, SIGNALS["logs"])


@router.post("/v1/metrics")
async def otlp_metrics(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """OTLP/HTTP metrics: gauges, sums, histograms (other kinds are refused in partial_success)."""
    return await _otlp(request, collector, who, SIGNALS["metrics"])


@router.post("/api/v1/records")
async def records(request: Request, collector: CollectorDep, who: Caller) -> Response:
    """tracehouse's own records (spool frames from SDK senders); X-Tracehouse-Batch makes resends no-ops."""
    try:
        body = await _read_body(request, collector.config.max_body_bytes)
    except OtlpError as error:
        return error_response(error.status, str(error))
    if not request.headers.get("content-type", "").startswith("application/json"):
        return error_response(415, "expected application/json: a JSON array of records")
    if body.lstrip()[:1] != b"[":
        return error_response(400, "expected a JSON array of record objects")
    sent = request.headers.get("x-tracehouse-batch") or None
    if sent is not None and len(sent) > 512:
        return error_response(400, "X-Tracehouse-Batch: at most 512 characters")
    # scoped to the caller's project: a key of another project cannot make this batch look resent
    token = None if sent is None else f"{who.project or '*'}|{sent}"
    # Passed on undecoded: the embedded store parses and maps it (see store/rows/span_sql.py), off the GIL.
    future = collector.writer.submit_json(body, token, None if who.admin else who.project)
    try:
        result = await asyncio.wrap_future(future)
    except BadBatch as error:
        return error_response(400, str(error))
    except PermissionError as error:
        raise AuthError(403, f"this key writes only project {who.project!r}, not {error.args[0]}") from error
    return json_response({"accepted": result.rows, "rejected": len(result.rejected), "errors": result.rejected[:20],
                          "unknown_types": result.unknown_types})  # fmt: skip


__all__ = ["PROTOBUF", "SIGNALS", "Signal", "accept_decoded", "accept_decoded_now", "router"]
