"""The collector's queue in front of the writer: batched inserts, acknowledged only once stored.

Submissions wait in a bounded queue, threads (each with a connection of its own) merge them into
inserts bounded in rows and time, and each submission's future resolves when its rows are stored.
A full queue refuses new work (`Overloaded`, which the HTTP edge turns into 503 + Retry-After).
Span-only submissions without a token are merged; a batch with a token, a JSON body or records of
other types (metrics, runs, artifacts...) is written alone through `write_body` / `write_records`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from tracehouse.collector.ingest.spool import JsonBody
from tracehouse.collector.ingest.writer import (
    BadBatch,
    WriteResult,
    insert_columns,
    map_records,
    write_body,
    write_records,
)

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")


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
    rows: int
    body: Optional[JsonBody] = None  # a JSON batch, written alone by write_body
    allowed_project: Optional[str] = None
    whole: bool = False  # records of any type, written alone by write_records

    @property
    def alone(self) -> bool:
        """Written by itself: a token must map to exactly this batch, a body or mixed records to their path."""
        return self.token is not None or self.body is not None or self.whole


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
    """A bounded queue of submissions and `threads` threads that insert them in merged batches.

    Each thread has its own connection to the store: ClickHouse runs their inserts side by side
    (and chDB's queries release the GIL), so two threads keep two cores busy.
    """

    def __init__(
        self,
        store: Store,
        max_batch_rows: int = 20_000,
        max_delay: float = 0.002,
        max_queued_rows: int = 200_000,
        threads: int = 2,
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
        # connections of their own: the store's client stays free for reads and the collector's commands
        self._stores = [store.another_client() for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._run, args=(each,), name=f"tracehouse-writer-{i}", daemon=True)
            for i, each in enumerate(self._stores)
        ]
        for thread in self._threads:
            thread.start()

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
        if any(record.get("type") != "span" for record in records):  # runs, metrics, artifacts...: written alone
            return self._enqueue(_Submission(records, token, Future(), ({}, WriteResult()), len(records), whole=True))
        return self._enqueue(_Submission(records, token, Future(), map_records(records), len(records)))

    def submit_json(
        self, body: JsonBody, token: Optional[str], allowed_project: Optional[str] = None
    ) -> Future[WriteResult]:
        """Queue a JSON array of records as it is (see write_body): inserted alone, mapped by the store.

        The future fails with BadBatch for a body that is not such an array and with PermissionError
        when it holds a project other than `allowed_project`; nothing of that batch is written then.
        """
        # an estimate for the queue's bound, before anything is parsed
        rows = body.count(b'"type":') if isinstance(body, bytes) else body.rows
        return self._enqueue(_Submission([], token, Future(), ({}, WriteResult()), rows, body, allowed_project))

    def _enqueue(self, item: _Submission) -> Future[WriteResult]:
        with self._cond:
            if self._stopping:
                raise Overloaded(retry_after=5)
            if self._queued_rows and self._queued_rows + item.rows > self.max_queued_rows:
                self.stats.overloaded += 1
                raise Overloaded(retry_after=max(1.0, self._queued_rows / max(self._rate(), 1.0)))
            self._queue.append(item)
            self._queued_rows += item.rows
            self.stats.received += item.rows
            self._cond.notify()
        return item.future

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
            batch, rows = [first], first.rows
            if not first.alone:
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
                    if self._queue[0].alone:
                        break
                    item = self._queue.popleft()
                    batch.append(item)
                    rows += item.rows
            return batch

    def _run(self, store: Store) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            self._write(batch, store)

    def _write_body(self, item: _Submission, store: Store) -> None:
        started = time.monotonic()
        try:
            if item.body is not None:
                result = write_body(store, item.body, item.token, item.allowed_project)
            else:
                result = write_records(store, item.records, item.token)
        except (BadBatch, PermissionError) as error:
            item.future.set_exception(error)
        except Exception as error:
            with self._cond:
                self.stats.failed_inserts += 1
            logger.warning("tracehouse collector: insert of a batch of %d records failed: %s", item.rows, error)
            item.future.set_exception(error)
        else:
            with self._cond:
                self.stats.inserts += 1
                self.stats.insert_seconds += time.monotonic() - started
                self.stats.written += result.rows
                self.stats.rejected += len(result.rejected)
            item.future.set_result(result)
        finally:
            with self._cond:
                self._queued_rows -= item.rows

    def _write(self, batch: list[_Submission], store: Store) -> None:
        if batch[0].body is not None or batch[0].whole:
            self._write_body(batch[0], store)
            return
        mapped = [item.mapped for item in batch]
        columns = mapped[0][0]
        if len(mapped) > 1:  # merged submissions carry no token: ClickHouse drops a resent block by its hash
            columns = {name: [v for cols, _ in mapped for v in cols[name]] for name in columns}
        received = sum(item.rows for item in batch)
        started = time.monotonic()
        try:
            refused = insert_columns(store, columns, batch[0].token if len(batch) == 1 else None)
        except Exception as error:
            with self._cond:
                self.stats.failed_inserts += 1
            logger.warning("tracehouse collector: insert of %d records failed: %s", received, error)
            for item in batch:
                item.future.set_exception(error)
        else:
            for item_columns, result in mapped:
                mine = [refused[i] for i in item_columns["span_id"] if i in refused]
                result.rows -= len(mine)
                result.rejected.extend(mine)
            with self._cond:
                self.stats.inserts += 1
                self.stats.insert_seconds += time.monotonic() - started
                self.stats.written += sum(result.rows for _, result in mapped)
                self.stats.rejected += sum(len(result.rejected) for _, result in mapped)
            for item, (_, result) in zip(batch, mapped, strict=True):
                item.future.set_result(result)
        finally:
            with self._cond:
                self._queued_rows -= received

    def close(self, timeout: float = 30.0) -> bool:
        """Insert everything queued, then stop; False if `timeout` ran out first."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if stopped:
            for own in self._stores:
                own.close()
        return stopped
