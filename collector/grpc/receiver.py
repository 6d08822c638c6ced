"""OTLP/gRPC in: opentelemetry-proto's TraceService, LogsService and MetricsService on grpcio's asyncio server.

The receiver shares the HTTP edge's rules (`collector/http/ingest.py`, `accept_decoded`): the same
keys (`authorization: Bearer <key>` metadata, checked as `Authorization` is over HTTP), the same
decoders, and an answer only once the request is durable in the write-ahead log. Where HTTP would
answer 503 (a full queue, a store that is down) gRPC answers UNAVAILABLE, and where it would answer
507 (a full disk) RESOURCE_EXHAUSTED, both with a `google.rpc.RetryInfo` delay in the trailers, so
the stock exporters retry after it; 401/403 become UNAUTHENTICATED/PERMISSION_DENIED, a malformed
request INVALID_ARGUMENT. gzip-compressed requests are read by grpcio; a message over the HTTP
body limit is refused by grpcio with RESOURCE_EXHAUSTED.

Logs and metrics are registered with the stubs' `add_*Servicer_to_server` (grpcio parses their
messages). Spans are the bulk of the traffic: TraceService is registered under the same method
name but takes the request's bytes as they are, for the collector's fast span decoder.

The server runs on a thread of its own with its own event loop; decoding and WAL appends run on
the collector's ingest threads, as for HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse._errors import ConfigError, StoreError
from tracehouse.collector.http.deps import AuthError, principal_of
from tracehouse.collector.http.guard import is_disk_full
from tracehouse.collector.http.ingest import PROTOBUF, SIGNALS, Signal, accept_decoded
from tracehouse.collector.ingest.batch_writer import Overloaded
from tracehouse.collector.otlp.common import DecodedSpans, OtlpError
from tracehouse.collector.otlp.decode import decode_traces
from tracehouse.collector.otlp.logs import log_records
from tracehouse.collector.otlp.metrics import metric_records

if TYPE_CHECKING:
    from tracehouse.collector.http.deps import Collector

logger = logging.getLogger("tracehouse")
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def _presented_key(context: Any) -> str:
    """The key in the call's metadata: `authorization: Bearer <key>` (or `x-tracehouse-key`)."""
    found = {key.lower(): value for key, value in (context.invocation_metadata() or ())}
    header = str(found.get("authorization", ""))
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return str(found.get("x-tracehouse-key", "")).strip()


def _retry_trailer(seconds: float) -> tuple[tuple[str, bytes], ...]:
    from google.protobuf.duration_pb2 import Duration
    from google.rpc.error_details_pb2 import RetryInfo

    delay = Duration(seconds=int(seconds), nanos=int((seconds - int(seconds)) * 1e9))
    return (("google.rpc.retryinfo-bin", RetryInfo(retry_delay=delay).SerializeToString()),)


class _Services:
    """The three Export methods over one collector."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    async def _export(
        self, context: Any, signal: Signal, decode: Callable[[str], DecodedSpans],
        forward: Callable[[], tuple[bytes, str, Optional[str]]],
    ) -> tuple[int, str]:  # fmt: skip
        import grpc

        collector = self.collector
        try:
            who = await principal_of(collector, _presented_key(context))
            decoded = await collector.ingest(decode, who.project or collector.config.default_project)
            return await accept_decoded(collector, who, signal, decoded, forward)
        except AuthError as error:
            code = grpc.StatusCode.UNAUTHENTICATED if error.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, str(error))
        except OtlpError as error:
            collector.counters["requests_rejected"] += 1
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if error.status == 413 else grpc.StatusCode.INVALID_ARGUMENT
            await context.abort(code, str(error))
        except Overloaded as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error), _retry_trailer(error.retry_after))
        except (StoreError, OSError) as error:
            if is_disk_full(error):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the collector's disk is full: {error}",
                                    _retry_trailer(30))  # fmt: skip
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the collector could not write: {error}",
                                _retry_trailer(5))  # fmt: skip
        raise AssertionError("context.abort returned")  # pragma: no cover

    async def traces(self, request: bytes, context: Any) -> bytes:
        """TraceService/Export, on the request's bytes (the collector's fast span decoder reads them)."""
        limit = self.collector.config.max_body_bytes * 4
        signal = SIGNALS["traces"]
        rejected, message = await self._export(
            context, signal, lambda project: decode_traces(request, PROTOBUF, None, project, max_bytes=limit),
            lambda: (request, PROTOBUF, None),
        )  # fmt: skip
        return bytes(signal.response_message(rejected, message).SerializeToString())

    async def logs(self, request: Any, context: Any) -> Any:
        """LogsService/Export."""
        signal = SIGNALS["logs"]
        rejected, message = await self._export(context, signal, lambda project: log_records(request, project),
                                               lambda: (request.SerializeToString(), PROTOBUF, None))  # fmt: skip
        return signal.response_message(rejected, message)

    async def metrics(self, request: Any, context: Any) -> Any:
        """MetricsService/Export."""
        signal = SIGNALS["metrics"]
        rejected, message = await self._export(context, signal, lambda project: metric_records(request, project),
                                               lambda: (request.SerializeToString(), PROTOBUF, None))  # fmt: skip
        return signal.response_message(rejected, message)


def _register(server: Any, services: _Services) -> None:
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
        Export = staticmethod(services.logs)

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
        Export = staticmethod(services.metrics)

    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    assert hasattr(trace_service_pb2_grpc, "TraceServiceServicer")  # the service we stand in for
    raw = grpc.unary_unary_rpc_method_handler(services.traces, request_deserializer=None, response_serializer=None)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": raw}),))


class GrpcReceiver:
    """The OTLP/gRPC server of a collector, on a thread with its own event loop."""

    def __init__(self, collector: Collector, host: str, port: int) -> None:
        self.collector, self.host, self.port = collector, host, port
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="tracehouse-grpc", daemon=True)

    def start(self) -> int:
        """Bind and start serving; the port bound (the system's choice for port 0). ConfigError if it cannot bind."""
        try:
            import grpc  # noqa: F401
        except ImportError as error:
            raise ConfigError("grpc-port", "OTLP/gRPC needs grpcio: pip install 'tracehouse[server]' "
                                           "(or --grpc-port 0 to serve OTLP/HTTP only)") from error  # fmt: skip
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self.port

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start()
            self._failure = self._failure or error
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        import grpc

        limit = self.collector.config.max_body_bytes
        options = [("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(options=options)
        _register(server, _Services(self.collector))
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            bound = server.add_insecure_port(f"{host}:{self.port}")
            if not bound:  # older grpcio answer 0 instead of raising
                raise RuntimeError("the address could not be bound")
            self.port = bound
        except RuntimeError as error:
            self._failure = ConfigError(
                "grpc-port", f"cannot listen for OTLP/gRPC on {self.host}:{self.port} ({error}): is it in use? "
                             "choose another with --grpc-port, or 0 to turn gRPC off",
            )  # fmt: skip
            return
        self._stop = asyncio.Event()
        await server.start()
        self._ready.set()
        await self._stop.wait()
        await server.stop(grace=10)  # requests in flight finish (their records are durable when answered)

    def stop(self) -> None:
        """Stop taking calls, finish those in flight, then return."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(30)


__all__ = ["TRACE_SERVICE", "GrpcReceiver"]
