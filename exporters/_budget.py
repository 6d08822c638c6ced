"""How much a spool directory may hold on disk, and warnings that come once per interval.

With the collector down (or nothing reading an embedded store) the spool is where records wait,
so it grows; past `max_spool_bytes` new records are not written but counted, and a warning says
so at most once a minute. Space that comes back (the shipper delivered, a reader ingested) is
used again at once: the size is measured from the directory at most once a second.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("tracehouse")
WARN_INTERVAL = 60.0


def directory_bytes(directory: Path) -> int:
    """Bytes of the files in `directory` and its quarantine/ (0 when it does not exist)."""
    total = 0
    for folder in (directory, directory / "quarantine"):
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


class SpoolBudget:
    """The room left in a spool directory under `max_bytes` (0: no limit)."""

    def __init__(self, directory: Path, max_bytes: int, measure_every: float = 1.0) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.measure_every = measure_every
        self._size = 0
        self._measured_at = float("-inf")

    @property
    def size(self) -> int:
        """The directory's size as last measured, plus what was written since."""
        return self._size

    def take(self, incoming: int) -> bool:
        """Whether `incoming` more bytes fit; if so they are counted as written."""
        if not self.max_bytes:
            return True
        now = time.monotonic()
        stale = now - self._measured_at
        if stale >= self.measure_every or (self._size + incoming > self.max_bytes and stale >= 0.2):
            self._size = directory_bytes(self.directory)  # a full spool is measured more often: room comes back
            self._measured_at = now
        if self._size + incoming > self.max_bytes:
            return False
        self._size += incoming
        return True


class EveryInterval:
    """A warning logged at most once per `interval` seconds, saying how often it happened meanwhile."""

    def __init__(self, interval: float = WARN_INTERVAL, level: int = logging.WARNING) -> None:
        self.interval = interval
        self.level = level
        self._last = float("-inf")
        self._since = 0

    def warn(self, message: str, *args: Any, count: int = 1) -> None:
        """Count `count` occurrences; log `message % args` with the count when the interval allows."""
        self._since += count
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        logger.log(self.level, message + " (%d since the last warning)", *args, self._since)
        self._last, self._since = now, 0
