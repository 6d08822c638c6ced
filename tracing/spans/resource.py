"""The OpenTelemetry resource tracehouse's spans carry: the app's, never a name of our own unless none is set.

Precedence for `service.name`: `configure(service_name=...)` or `OTEL_SERVICE_NAME` (the setting), then
the resource of the app's own TracerProvider when tracehouse joined one, then `OTEL_RESOURCE_ATTRIBUTES`,
and only when none of these names the service, `tracehouse-app`. Every other attribute comes from the
app's provider (when joined) or from `OTEL_RESOURCE_ATTRIBUTES`, as the OpenTelemetry SDK reads it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from tracehouse._version import VERSION

FALLBACK_SERVICE_NAME = "tracehouse-app"
_UNNAMED = "unknown_service"  # what the SDK's Resource.create() puts when nothing names the service


def resource_attributes(
    service_name: Optional[str], app_resource: Optional[Mapping[str, Any]] = None
) -> dict[str, Any]:
    """The resource attributes of tracehouse's spans (see the module docstring for the precedence)."""
    if app_resource is None:
        app_resource = _environment_resource()
    attributes = dict(app_resource)
    named = str(attributes.get("service.name") or "")
    if service_name:
        attributes["service.name"] = service_name
    elif not named or named.startswith(_UNNAMED):
        attributes["service.name"] = FALLBACK_SERVICE_NAME
    attributes.setdefault("telemetry.sdk.language", "python")
    attributes["telemetry.distro.name"] = "tracehouse"
    attributes["telemetry.distro.version"] = VERSION
    return attributes


def _environment_resource() -> dict[str, Any]:
    """The SDK's telemetry.sdk.* attributes and what OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME say.

    Not `Resource.create()`: that runs every installed detector on a thread pool, on each configure()
    and even at interpreter exit."""
    from opentelemetry.sdk.resources import OTELResourceDetector
    from opentelemetry.sdk.version import __version__ as sdk_version

    attributes: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
    }
    attributes.update(OTELResourceDetector().detect().attributes)
    return attributes


def sdk_resource(attributes: Mapping[str, Any]) -> Any:
    """An SDK `Resource` of exactly these attributes (no detectors run again)."""
    from opentelemetry.sdk.resources import Resource

    return Resource(dict(attributes))
