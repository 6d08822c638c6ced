"""Give the embedded engine's freed memory back to the system while ingest runs.

chDB's allocator (jemalloc) keeps pages that inserts and reads freed as "dirty" for seconds, for
reuse; under a steady OTLP load each batch lands on fresh pages first, so the process's resident
size climbs to several times what ClickHouse is using (measured: 540 MB resident for 40-80 MB
tracked). `SYSTEM JEMALLOC PURGE` returns those pages; running it after a write, at most once per
`interval` seconds, keeps the collector's peak near its working set for a small cost per batch.

Only for the in-process engine: a ClickHouse server's memory is the server's to manage.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger("tracehouse")
PURGE_INTERVAL_S = 0.25


class MemoryReturner:
    """Purges the engine's dirty pages after writes, at most once per `interval` seconds."""

    def __init__(self, interval: float = PURGE_INTERVAL_S) -> None:
        self.interval = interval
        self._last = float("-inf")
        self._lock = threading.Lock()
        self._working = True
        self.purges = 0

    def after_write(self, client: Client) -> None:
        """Purge through `client` when the last purge is older than the interval (never raises)."""
        if not self._working:
            return
        now = time.monotonic()
        if now - self._last < self.interval or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            client.command("SYSTEM JEMALLOC PURGE")
            self.purges += 1
        except Exception as error:  # an engine built without jemalloc: nothing to return, stop trying
            self._working = False
            logger.debug("tracehouse: SYSTEM JEMALLOC PURGE unavailable (%s); memory is left to the allocator", error)
        finally:
            self._lock.release()


# one engine per process (see engine.py), so one returner for all its clients
embedded_memory = MemoryReturner()
