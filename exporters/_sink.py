"""The in-process exporter: finished spans queue in memory, a worker thread appends them to the spool.

`submit` is the hot path: one deque append and a length check. The worker wakes when a batch is
full or every `interval` seconds, encodes the batch as one JSON frame and appends it to this
process's spool segment; it fsyncs at most every `fsync_interval` seconds and on `flush`. When the
worker falls behind and `max_pending` records are waiting, the submitting thread writes the queue
to the spool itself: memory stays bounded and nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional, Union

import orjson

from tracehouse._deferred import critical
from tracehouse._internal_errors import log_internal_error
from tracehouse._json import JSON_OPTIONS, json_default, json_safe
from tracehouse.collector.ingest.frames import encode_frames
from tracehouse.collector.ingest.spool import SpoolWriter
from tracehouse.exporters._budget import EveryInterval, SpoolBudget
from tracehouse.exporters._records import SpanRecord, record_to_dict

Record = Union[SpanRecord, dict[str, Any]]  # a finished span, or a ready record (a run's metrics or state)

logger = logging.getLogger("tracehouse")


def _encode_batch(batch: list[dict[str, Any]]) -> bytes:
    """One JSON array; a record that cannot be encoded is scrubbed, never allowed to sink its batch."""
    try:
        return orjson.dumps(batch, default=json_default, option=JSON_OPTIONS)
    except Exception:
        return b"[" + b",".join(_encode_one(record) for record in batch) + b"]"


def _encode_one(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, default=json_default, option=JSON_OPTIONS)
    except Exception:  # lone surrogates, integers over 64 bits: store the record with them replaced
        logger.warning("tracehouse: span %r had values JSON cannot hold; they were converted", record.get("name"))
    try:
        return orjson.dumps(json_safe(record), option=JSON_OPTIONS)
    except Exception as error:  # keep the span itself, say what was lost
        kept = {k: v for k, v in record.items() if k not in ("attributes", "events", "resource", "links")}
        kept["attributes"] = {"tracehouse.encoding_error": f"attributes dropped: {error}"}
        return orjson.dumps(json_safe(kept), option=JSON_OPTIONS)


class SpoolSink:
    """Batches span records into spool frames on a background thread."""

    def __init__(
        self,
        spool_dir: Path,
        batch_size: int = 4096,
        max_pending: int = 65536,
        interval: float = 0.5,
        fsync_interval: float = 1.0,
        on_written: Optional[Callable[[int], None]] = None,
        max_spool_bytes: int = 0,
    ) -> None:
        self.spool = SpoolWriter(spool_dir)
        self.budget = SpoolBudget(spool_dir, max_spool_bytes)
        self.over_cap = 0  # records not written: the spool was at max_spool_bytes
        self._over_cap_warning = EveryInterval()
        self._dropped_warning = EveryInterval(level=logging.ERROR)
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.interval = interval
        self.fsync_interval = fsync_interval
        self.written = 0  # records appended to the spool so far
        self.failed_writes = 0
        self._backoff = 0.0
        self._retry_at = 0.0  # after a failed write, no new attempt before this (time.monotonic)
        self.worker_errors = 0
        self.dropped = 0  # only ever non-zero when the disk refuses writes
        self._on_written = on_written
        self._queue: deque[Record] = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._stopped = False
        self._last_sync = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="tracehouse-spool", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        """Queue one finished span or ready record (hot path)."""
        queue = self._queue
        queue.append(record)
        if len(queue) >= self.batch_size:
            if len(queue) >= self.max_pending:
                if time.monotonic() < self._retry_at:
                    self._shed_overflow()  # the disk is failing: do not retry it on every span
                else:
                    self._drain(self.interval * 10)  # overflow goes to disk, from this thread
            elif not self._wake.is_set():
                self._wake.set()
        if self._stopped:  # ended after shutdown (a late thread, an exit hook): write it now
            self._drain(self.interval)

    def pending(self) -> int:
        """Records queued in memory, not yet in the spool."""
        return len(self._queue)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                if time.monotonic() >= self._retry_at:
                    self._drain(None)
                if time.monotonic() - self._last_sync >= self.fsync_interval:
                    self._sync()
            except Exception:  # the worker must outlive any bug: a dead worker would strand the queue
                self.worker_errors += 1
                logger.exception("tracehouse spool worker error; it keeps running")

    def _drain(self, timeout: Optional[float]) -> bool:
        """Write everything queued to the spool; False if the lock was not had or the disk failed."""
        with critical:  # a sweep's SIGTERM must not land between a pop and its write
            if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
                return False
            try:
                queue = self._queue
                while queue:
                    records = [queue.popleft() for _ in range(min(len(queue), self.batch_size))]
                    if not self._write(records):  # it put back what it could not write
                        return False
                return True
            finally:
                self._write_lock.release()

    def _write(self, records: list[Record]) -> bool:
        """Append `records` as frames of bounded size; on a disk error the unwritten ones go back
        to the front of the queue (the written ones are not repeated)."""
        batch = [record if type(record) is dict else record_to_dict(record) for record in records]  # type: ignore[arg-type]
        done = 0
        try:
            for payload, count in encode_frames(batch, _encode_batch):
                if not self.budget.take(len(payload)):
                    self._refuse_over_cap(count)
                else:
                    self.spool.append(payload)
                    self._count_written(count)
                done += count
        except OSError as error:  # the disk refused (full, read-only, removed): keep the records queued
            self._queue.extendleft(reversed(records[done:]))
            self._failed(error, len(records) - done)
            return False
        self._backoff = 0.0
        self._retry_at = 0.0
        return True

    def _refuse_over_cap(self, count: int) -> None:
        self.over_cap += count
        self._over_cap_warning.warn(
            "tracehouse: the spool at %s holds %d bytes, its limit (max_spool_bytes=%d); records are counted in "
            "th.stats() but not written until the collector or a reader takes what waits: %d record(s) so far",
            self.budget.directory, self.budget.size, self.budget.max_bytes, self.over_cap, count=count,
        )  # fmt: skip

    def stats(self) -> dict[str, int]:
        """This sink's counters (see `th.stats`)."""
        return {"queued": len(self._queue), "written": self.written, "not_written_over_cap": self.over_cap,
                "dropped_disk_refused": self.dropped, "failed_writes": self.failed_writes,
                "spool_bytes": self.budget.size}  # fmt: skip

    def _count_written(self, count: int) -> None:
        if count:
            self.written += count
            if self._on_written is not None:
                self._on_written(count)

    def _failed(self, error: OSError, waiting: int) -> None:
        self.failed_writes += 1
        self._backoff = min(max(self._backoff * 2, 0.1), 5.0)
        self._retry_at = time.monotonic() + self._backoff
        if self.failed_writes & (self.failed_writes - 1) == 0:  # 1st, 2nd, 4th, 8th... failure
            logger.warning(
                "tracehouse could not write to the spool (%s; %d failures so far); %d spans wait in memory",
                error, self.failed_writes, len(self._queue) + waiting,
            )  # fmt: skip

    def _shed_overflow(self) -> None:
        """Only while the disk refuses writes: drop the oldest batch to bound memory, and say so."""
        excess = len(self._queue) - self.max_pending + self.batch_size
        dropped = 0
        while dropped < excess and self._queue:
            self._queue.popleft()
            dropped += 1
        if dropped:
            self.dropped += dropped
            self._dropped_warning.warn(
                "tracehouse dropped %d spans (%d in all, see th.stats()): the spool cannot be written and the "
                "memory queue is full", dropped, self.dropped, count=dropped,
            )  # fmt: skip

    def _sync(self) -> None:
        with self._write_lock:
            try:
                self.spool.sync()
            except OSError:
                log_internal_error("spool fsync")
            self._last_sync = time.monotonic()

    def flush(self, timeout: float) -> bool:
        """Write all queued records to the spool and fsync; False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        try:
            if not self._drain(timeout):
                return False
            remaining = max(0.0, deadline - time.monotonic())
            if not self._write_lock.acquire(timeout=remaining):
                return False
            try:
                self.spool.sync()
                self._last_sync = time.monotonic()
            finally:
                self._write_lock.release()
            return True
        except Exception:
            log_internal_error("flush")
            return False

    def shutdown(self, timeout: float) -> bool:
        """Flush, stop the worker and close the segment (its lock is released for readers)."""
        flushed = self.flush(timeout)
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout)
        if self._write_lock.acquire(timeout=timeout):
            try:
                self.spool.close()
            except OSError:
                log_internal_error("spool close")
            finally:
                self._write_lock.release()
        return flushed
