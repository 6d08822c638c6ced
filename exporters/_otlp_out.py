"""What tracehouse records, also sent to another OTLP backend (Jaeger, Tempo, Honeycomb, an OTel Collector).

Configured by `configure(otlp_endpoint=...)` (a base URL such as `http://collector:4318`; `/v1/traces`
is added) or by the standard variables the OpenTelemetry exporters read: `OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, `..._PROTOCOL` (`http/protobuf`,
the default, or `grpc` when `opentelemetry-exporter-otlp-proto-grpc` is installed), `..._TIMEOUT`,
`..._COMPRESSION`. The variables are used only while tracehouse runs its own TracerProvider: an app
provider that tracehouse joined gets tracehouse's spans already, and its exporters read the same
variables, so reading them here too would send every span twice. `OTEL_TRACES_EXPORTER` without `otlp`
(e.g. `none`) switches the variables off. Spans go in batches on a background thread (the SDK's
BatchSpanProcessor: bounded queue, never blocking the app); the spool is written as before.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

logger = logging.getLogger("tracehouse")

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_PACKAGES = {
    "grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "http/protobuf": "opentelemetry-exporter-otlp-proto-http",
}


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how: a traces URL (http; a base URL gets `/v1/traces`) or a gRPC endpoint."""

    endpoint: str
    protocol: str
    from_environment: bool


def otlp_target(explicit: Optional[str], own_provider: bool, collector: Optional[str]) -> Optional[OtlpTarget]:
    """The backend to send to, or None. `own_provider`: tracehouse installed the global TracerProvider;
    `collector`: tracehouse's own collector URL (its spool ships there already, so never again over OTLP)."""
    protocol = next((os.environ[v].strip().lower() for v in _PROTOCOL_VARS if os.environ.get(v)), "http/protobuf")
    if explicit:
        return OtlpTarget(explicit, protocol, from_environment=False)
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not (traces or base):
        return None
    configured = traces or (_traces_url(base) if protocol != "grpc" else base)
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if exporters and "otlp" not in [e.strip().lower() for e in exporters.split(",")]:
        return None
    if not own_provider:
        logger.info("tracehouse leaves OTEL_EXPORTER_OTLP_* to your TracerProvider: its exporters get our spans")
        return None
    if collector and configured.rstrip("/").removesuffix("/v1/traces") == collector.rstrip("/"):
        return None  # the OTLP endpoint is tracehouse's own collector: the spool is shipped there
    return OtlpTarget(configured, protocol, from_environment=True)


def otlp_processor(target: OtlpTarget) -> Optional[Any]:
    """A BatchSpanProcessor exporting to `target`; None (and one error naming the fix) when it cannot."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = target.protocol
    if protocol not in _PACKAGES:
        logger.error(
            "tracehouse cannot send spans over OTLP protocol %r: use http/protobuf or grpc "
            "(OTEL_EXPORTER_OTLP_PROTOCOL); spans are not sent to %s",
            protocol, target.endpoint,
        )  # fmt: skip
        return None
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            exporter: Any = GrpcExporter(endpoint=target.endpoint)
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            exporter = HttpExporter(endpoint=_traces_url(target.endpoint))
    except ImportError:
        logger.error(
            "tracehouse cannot send spans over OTLP %s: pip install %s", protocol, _PACKAGES[protocol]
        )  # fmt: skip
        return None
    return BatchSpanProcessor(exporter)


def _traces_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"
