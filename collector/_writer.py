"""The collector's one writer: records in, batched inserts out, acknowledged only once stored.

`write_records` is the single path from span records to the `spans` table (the embedded reader,
the spool ingest of `tracehouse serve` and the HTTP endpoints all use it). `BatchWriter` is the
collector's queue in front of it: submissions wait in a bounded queue, a thread merges them into
inserts bounded in rows and time, and each submission's future resolves when its rows are stored.
A full queue refuses new work (`Overloaded`, which the HTTP edge turns into 503 + Retry-After).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ._span_rows import span_columns
from ._store import BadRowsError

if TYPE_CHECKING:
    from ._store import Store

logger = logging.getLogger("tracehouse")


@dataclass
class WriteResult:
    """What became of a batch of records."""

    rows: int = 0
    rejected: list[str] = field(default_factory=list)  # one reason per refused record
    unknown_types: int = 0


def map_records(records: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], WriteResult]:
    """Span records to `spans` columns; the result counts unknown record types and refused records."""
    spans = [r for r in records if r.get("type") == "span"]
    columns, rejected = span_columns(spans)
    return columns, WriteResult(
        rows=len(columns["span_id"]), rejected=rejected, unknown_types=len(records) - len(spans)
    )


def insert_columns(store: Store, columns: dict[str, list[Any]], token: Optional[str]) -> dict[str, str]:
    """Insert `spans` columns; return {span_id: reason} for rows the store refused (isolated by bisection).

    The halves get tokens derived from the batch's, so a redo after a crash splits the same way and
    ClickHouse still drops what already landed.
    """
    count = len(columns["span_id"])
    if not count:
        return {}
    try:
        store.insert("spans", columns, dedup_token=token)
        return {}
    except BadRowsError as error:
        if count == 1:
            return {columns["span_id"][0]: f"span {columns['name'][0]!r}: {error}"}
    middle = count // 2
    refused: dict[str, str] = {}
    for i, half in enumerate(
        ({k: v[:middle] for k, v in columns.items()}, {k: v[middle:] for k, v in columns.items()})
    ):
        refused.update(insert_columns(store, half, f"{token}/{i}" if token else None))
    return refused


def write_records(store: Store, records: list[dict[str, Any]], token: Optional[str]) -> WriteResult:
    """Insert span records as one batch (deduplicated by `token`); refused rows are isolated, not fatal."""
    columns, result = map_records(records)
    refused = insert_columns(store, columns, token)
    result.rows -= len(refused)
    result.rejected.extend(refused.values())
    return result


class Overloaded(Exception):
    """The writer's queue is full: try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"the collector is busy; retry after {retry_after:.0f} s")


@dataclass
class _Submission:
    records: list[dict[str, Any]]
    token: Optional[str]
    future: Future[WriteResult]
    mapped: tuple[dict[str, list[Any]], WriteResult]


@dataclass
class WriterStats:
    """Counters for /metrics."""

    received: int = 0
    written: int = 0
    rejected: int = 0
    inserts: int = 0
    insert_seconds: float = 0.0
    overloaded: int = 0
    failed_inserts: int = 0


class BatchWriter:
    """A bounded queue of submissions and a thread that inserts them in merged batches."""

    def __init__(
        self, store: Store, max_batch_rows: int = 20_000, max_delay: float = 0.002, max_queued_rows: int = 200_000
    ) -> None:
        self.store = store
        self.max_batch_rows = max_batch_rows
        self.max_delay = max_delay
        self.max_queued_rows = max_queued_rows
        self.stats = WriterStats()
        self._queue: deque[_Submission] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tracehouse-writer", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        """Records waiting to be inserted."""
        return self._queued_rows

    def submit(self, records: list[dict[str, Any]], token: Optional[str] = None) -> Future[WriteResult]:
        """Queue records; the future resolves once they are stored. Raises Overloaded when full.

        Submissions without a token are merged with others; one with a token is inserted alone, so
        a resend with the same token is dropped by ClickHouse as a duplicate. Records are mapped to
        columns here, in the caller's thread, so mapping overlaps the writer's inserts.
        """
        future: Future[WriteResult] = Future()
        mapped = map_records(records)
        with self._cond:
            if self._stopping:
                raise Overloaded(retry_after=5)
            if self._queued_rows and self._queued_rows + len(records) > self.max_queued_rows:
                self.stats.overloaded += 1
                raise Overloaded(retry_after=max(1.0, self._queued_rows / max(self._rate(), 1.0)))
            self._queue.append(_Submission(records, token, future, mapped))
            self._queued_rows += len(records)
            self.stats.received += len(records)
            self._cond.notify()
        return future

    def _rate(self) -> float:
        """Rows per second the store has been taking (for Retry-After)."""
        return self.stats.written / self.stats.insert_seconds if self.stats.insert_seconds else 10_000.0

    def _next_batch(self) -> list[_Submission]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return []
            first = self._queue.popleft()
            batch, rows = [first], len(first.records)
            if first.token is None:
                # Group commit: merge what queued up while the last insert ran; wait only a moment
                # for more (senders wait for their answer, so a long wait only adds latency).
                deadline = time.monotonic() + self.max_delay
                while rows < self.max_batch_rows and not self._stopping:
                    if not self._queue:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                        continue
                    if self._queue[0].token is not None:
                        break
                    item = self._queue.popleft()
                    batch.append(item)
                    rows += len(item.records)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            self._write(batch)

    def _write(self, batch: list[_Submission]) -> None:
        mapped = [item.mapped for item in batch]
        columns = mapped[0][0]
        if len(mapped) > 1:  # merged submissions carry no token: ClickHouse drops a resent block by its hash
            columns = {name: [v for cols, _ in mapped for v in cols[name]] for name in columns}
        received = sum(len(item.records) for item in batch)
        started = time.monotonic()
        try:
            refused = insert_columns(self.store, columns, batch[0].token if len(batch) == 1 else None)
        except Exception as error:
            self.stats.failed_inserts += 1
            logger.warning("tracehouse collector: insert of %d records failed: %s", received, error)
            for item in batch:
                item.future.set_exception(error)
        else:
            self.stats.inserts += 1
            self.stats.insert_seconds += time.monotonic() - started
            for item, (item_columns, result) in zip(batch, mapped, strict=True):
                mine = [refused[i] for i in item_columns["span_id"] if i in refused]
                result.rows -= len(mine)
                result.rejected.extend(mine)
                self.stats.written += result.rows
                self.stats.rejected += len(result.rejected)
                item.future.set_result(result)
        finally:
            with self._cond:
                self._queued_rows -= received

    def close(self, timeout: float = 30.0) -> bool:
        """Insert everything queued, then stop; False if `timeout` ran out first."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()
