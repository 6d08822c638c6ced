"""The collector's write-ahead log for OTLP requests.

A stock OpenTelemetry exporter waits for each answer before sending its next batch, so answering
only after a ClickHouse insert would make every request pay an insert of a few hundred rows. The
collector instead appends each request's spans to its own spool (the same segment format as the
SDK's) and fsyncs before answering: from then on a crash loses nothing. The spool follower
inserts what accumulated in batches of up to 20,000 rows, exactly once (ack file + dedup token),
and every read first catches up with it, so an answered request is what reads see.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from tracehouse._json import JSON_OPTIONS, json_default
from tracehouse.collector.ingest.frames import encode_frames
from tracehouse.collector.ingest.spool import SpoolWriter


def _encode(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(records, default=json_default, option=JSON_OPTIONS)


class CollectorWal:
    """Appends record batches as fsync'd spool frames; thread-safe."""

    def __init__(self, spool_dir: Path) -> None:
        self._writer = SpoolWriter(spool_dir)
        self._lock = threading.Lock()  # guards writes
        self._sync_lock = threading.Lock()  # one fsync at a time; it covers every write before it
        self._written = 0  # frames written
        self._synced = 0  # frames known durable
        self.appended = 0  # records made durable so far

    def append(self, records: list[dict[str, Any]]) -> None:
        """Make `records` durable (written and fsync'd) before returning.

        Group commit: concurrent appends write one after another, and one fsync makes all the
        frames written before it durable, so a burst of requests shares fsyncs.
        """
        frames = encode_frames(records, _encode)  # bounded: a reader never refuses a frame as too big
        with self._lock:
            self._writer.append_all([payload for payload, _ in frames])
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced < mine:
                with self._lock:
                    target = self._written
                    self._writer.sync()
                self._synced = target
        with self._lock:
            self.appended += len(records)

    def close(self) -> None:
        """Close the segment (its lock is released; the follower then trims it when done)."""
        with self._lock:
            self._writer.close()
