"""What the collector's routes need to know: limits, hosts, the owner secret."""

from __future__ import annotations

from dataclasses import dataclass

from tracehouse.collector.http.guard import LOOPBACK_HOSTS, EdgePolicy
from tracehouse.collector.owner.access import MAX_OWNER_BODY


@dataclass(frozen=True)
class CollectorConfig:
    """The collector's settings, built once by `serve` (tests build their own)."""

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
            ("/api/public/otel/v1/traces", self.max_body_bytes),
            ("/v1/logs", self.max_body_bytes),
            ("/v1/metrics", self.max_body_bytes),
            ("/api/v1/records", self.max_body_bytes),
            ("/api/v1/blobs/", self.max_blob_bytes),
            ("/api/v1/owner", MAX_OWNER_BODY),
            ("/login", 16 * 1024),
        )
        return EdgePolicy(self.allowed_hosts, limits, 1024 * 1024, self.body_timeout)


__all__ = ["CollectorConfig"]
