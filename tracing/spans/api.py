"""Module-level configuration API: configure, get_settings, flush, stats."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from tracehouse._errors import ConfigError
from tracehouse.spans.config import Settings, resolve_settings
from tracehouse.spans.runtime import runtime as _runtime


def configure(
    *,
    project: Optional[str] = None,
    data_dir: Union[str, Any, None] = None,
    endpoint: Optional[str] = None,
    api_key: Optional[str] = None,
    capture_content: Optional[bool] = None,
    max_payload_bytes: Optional[int] = None,
    redact: Optional[Callable[[str], str]] = None,
    disabled: Optional[bool] = None,
    service_name: Optional[str] = None,
    clickhouse_url: Optional[str] = None,
    database: Optional[str] = None,
    blob_url: Optional[str] = None,
    max_spool_bytes: Union[int, str, None] = None,
    flush_timeout: Optional[float] = None,
    silent: Optional[bool] = None,
    otlp_endpoint: Optional[str] = None,
) -> Settings:
    """Set tracehouse's options; anything not given comes from its environment variable, else its default.

    Options (environment variable, default): project (TRACEHOUSE_PROJECT, "default"), data_dir
    (TRACEHOUSE_DIR, ~/.tracehouse), endpoint (TRACEHOUSE_ENDPOINT), api_key (TRACEHOUSE_API_KEY),
    capture_content (TRACEHOUSE_CAPTURE_CONTENT, true), max_payload_bytes
    (TRACEHOUSE_MAX_PAYLOAD_BYTES, 65536), redact (a callable str -> str), disabled
    (TRACEHOUSE_DISABLED, false), service_name (OTEL_SERVICE_NAME), clickhouse_url
    (TRACEHOUSE_CLICKHOUSE_URL), database (TRACEHOUSE_DATABASE, "tracehouse"), blob_url
    (TRACEHOUSE_BLOB_URL, an fsspec URL for artifact and media files; default `blobs/` in data_dir),
    max_spool_bytes (TRACEHOUSE_MAX_SPOOL_BYTES, 4GiB: disk the spool may use while records wait;
    past it they are counted in `stats()`, not written; 0 = no limit), flush_timeout
    (TRACEHOUSE_FLUSH_TIMEOUT, 5 s), silent (TRACEHOUSE_SILENT, or W&B's WANDB_SILENT, false: `init()`
    prints no line naming the run and where to look at it), otlp_endpoint (another OTLP backend's base
    URL that gets every span as well; the standard OTEL_EXPORTER_OTLP_* variables do the same while
    tracehouse runs its own TracerProvider). A bad value raises ConfigError naming the option; the
    previous settings then stay in force. Calling it is optional.
    """
    settings = resolve_settings(
        project=project, data_dir=data_dir, endpoint=endpoint, api_key=api_key, capture_content=capture_content,
        max_payload_bytes=max_payload_bytes, redact=redact, disabled=disabled, service_name=service_name,
        clickhouse_url=clickhouse_url, database=database, blob_url=blob_url, max_spool_bytes=max_spool_bytes,
        flush_timeout=flush_timeout, silent=silent, otlp_endpoint=otlp_endpoint,
    )  # fmt: skip
    _runtime.apply(settings)
    _runtime.ensure_provider()  # so OTel spans started before the first tracehouse span are recorded too
    return settings


def get_settings() -> Settings:
    """The settings in force."""
    return _runtime.settings


def stats() -> dict[str, int]:
    """What this process recorded and where it is: records queued in memory, written to the spool,
    not written (over `max_spool_bytes`, or dropped while the disk refused writes and memory was
    full), spool bytes on disk, failed writes, and records shipped to a collector."""
    return _runtime.stats()


def flush(timeout: Optional[float] = None) -> bool:
    """Write every finished span to the spool and fsync it; False if `timeout` (seconds) ran out."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise ConfigError("timeout", f"expected a non-negative number of seconds, got {timeout!r}")
    return _runtime.flush(timeout)
