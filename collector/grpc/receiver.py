"""OTLP/gRPC in: opentelemetry-proto's TraceService, LogsService and MetricsService on grpcio's server.

The receiver shares the HTTP edge's rules (`collector/http/ingest.py`, `accept_decoded_now`): the
same keys (`authorization: Bearer <key>` metadata, checked as `Authorization` is over HTTP), the same
decoders, and an answer only once the request is durable in the write-ahead log. Where HTTP would
answer 503 (a full queue, a store that is down) gRPC answers UNAVAILABLE, and where it would answer
507 (a full disk) RESOURCE_EXHAUSTED, both with a `google.rpc.RetryInfo` delay in the trailers, so
the stock exporters retry after it; 401/403 become UNAUTHENTICATED/PERMISSION_DENIED, a malformed
request INVALID_ARGUMENT. gzip-compressed requests are read by grpcio; a message over the HTTP
body limit is refused by grpcio with RESOURCE_EXHAUSTED.

Logs and metrics are registered with the stubs' `add_*Servicer_to_server` (grpcio parses their
messages). Spans are the bulk of the traffic: TraceService is registered under the same method
name but takes the request's bytes as they are, for the collector's fast span decoder.

grpcio's thread-pool server, not its asyncio one: each call decodes and appends to the WAL on its
worker thread (the WAL's group commit shares fsyncs between them). Handing each step to the
collector's ingest threads through an event loop, as HTTP does, measured slower here (bench/ingest.py).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional

from tracehouse._errors import ConfigError, StoreError
from tracehouse.collector.http.deps import AuthError, principal_now
from tracehouse.collector.http.guard import is_disk_full
from tracehouse.collector.http.ingest import PROTOBUF, SIGNALS, Signal, accept_decoded_now
from tracehouse.collector.ingest.batch_writer import Overloaded
from tracehouse.collector.otlp.common import DecodedSpans, OtlpError
from tracehouse.collector.otlp.decode import decode_traces
from tracehouse.collector.otlp.logs import log_records
from tracehouse.collector.otlp.metrics import metric_records

if TYPE_CHECKING:
    from tracehouse.collector.http.deps import Collector

logger = logging.getLogger("tracehouse")
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
WORKERS = 8  # calls handled at once (more wait in grpcio's queue)


def _presented_key(context: Any) -> str:
    """The key in the call's metadata: `authorization: Bearer <key>` (or `x-tracehouse-key`)."""
    found = {key.lower(): value for key, value in (context.invocation_metadata() or ())}
    header = str(found.get("authorization", ""))
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return str(found.get("x-tracehouse-key", "")).strip()


def _abort(context: Any, code: Any, message: str, retry_after: Optional[float] = None) -> NoReturn:
    if retry_after is not None:
        from google.protobuf.duration_pb2 import Duration
        from google.rpc.error_details_pb2 import RetryInfo

        delay = Duration(seconds=int(retry_after), nanos=int((retry_after - int(retry_after)) * 1e9))
        context.set_trailing_metadata((("google.rpc.retryinfo-bin", RetryInfo(retry_delay=delay).SerializeToString()),))
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover


class _Services:
    """The three Export methods over one collector."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def _export(
        self, context: Any, signal: Signal, decode: Callable[[str], DecodedSpans],
        forward: Callable[[], tuple[bytes, str, Optional[str]]],
    ) -> tuple[int, str]:  # fmt: skip
        import grpc

        collector = self.collector
        try:
            who = principal_now(collector, _presented_key(context))
            decoded = decode(who.project or collector.config.default_project)
            return accept_decoded_now(collector, who, signal, decoded, forward)
        except AuthError as error:
            code = grpc.StatusCode.UNAUTHENTICATED if error.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            _abort(context, code, str(error))
        except OtlpError as error:
            collector.counters["requests_rejected"] += 1
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if error.status == 413 else grpc.StatusCode.INVALID_ARGUMENT
            _abort(context, code, str(error))
        except Overloaded as error:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(error), error.retry_after)
        except (StoreError, OSError) as error:
            if is_disk_full(error):
                _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"the collector's disk is full: {error}", 30)
            _abort(context, grpc.StatusCode.UNAVAILABLE, f"the collector could not write: {error}", 5)

    def traces(self, request: bytes, context: Any) -> bytes:
        """TraceService/Export, on the request's bytes (the collector's fast span decoder reads them)."""
        limit = self.collector.config.max_body_bytes * 4
        signal = SIGNALS["traces"]
        rejected, message = self._export(
            context, signal, lambda project: decode_traces(request, PROTOBUF, None, project, max_bytes=limit),
            lambda: (request, PROTOBUF, None),
        )  # fmt: skip
        return bytes(signal.response_message(rejected, message).SerializeToString())

    def logs(self, request: Any, context: Any) -> Any:
        """LogsService/Export."""
        signal = SIGNALS["logs"]
        rejected, message = self._export(context, signal, lambda project: log_records(request, project),
                                         lambda: (request.SerializeToString(), PROTOBUF, None))  # fmt: skip
        return signal.response_message(rejected, message)

    def metrics(self, request: Any, context: Any) -> Any:
        """MetricsService/Export."""
        signal = SIGNALS["metrics"]
        rejected, message = self._export(context, signal, lambda project: metric_records(request, project),
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
    """The OTLP/gRPC server of a collector."""

    def __init__(self, collector: Collector, host: str, port: int) -> None:
        self.collector, self.host, self.port = collector, host, port
        self._server: Any = None

    def start(self) -> int:
        """Bind and start serving; the port bound (the system's choice for port 0). ConfigError if it cannot bind."""
        try:
            import grpc
        except ImportError as error:
            raise ConfigError("grpc-port", "OTLP/gRPC needs grpcio: pip install 'tracehouse[server]' "
                                           "(or --grpc-port 0 to serve OTLP/HTTP only)") from error  # fmt: skip
        limit = self.collector.config.max_body_bytes
        options = [("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)]
        server = grpc.server(ThreadPoolExecutor(WORKERS, "tracehouse-grpc"), options=options)
        _register(server, _Services(self.collector))
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            bound = server.add_insecure_port(f"{host}:{self.port}")
            if not bound:  # older grpcio answer 0 instead of raising
                raise RuntimeError("the address could not be bound")
        except RuntimeError as error:
            server.stop(None)
            raise ConfigError(
                "grpc-port", f"cannot listen for OTLP/gRPC on {self.host}:{self.port} ({error}): is it in use? "
                             "choose another with --grpc-port, or 0 to turn gRPC off",
            ) from None  # fmt: skip
        server.start()
        self._server, self.port = server, int(bound)
        return self.port

    def stop(self, grace: float = 10.0) -> None:
        """Stop taking calls and let those in flight finish (their records are durable when answered)."""
        if self._server is not None:
            self._server.stop(grace).wait(grace + 5)
            self._server = None


__all__ = ["TRACE_SERVICE", "GrpcReceiver"]
