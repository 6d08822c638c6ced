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

import orjson

from tracehouse.collector.store.rows.runs import RUN_RECORD_TYPES
from tracehouse.collector.store.rows.spans import span_columns
from tracehouse.collector.store.store import BadRowsError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

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
    """Insert span records and run records (metrics, state, values, files, artifacts), one batch per
    table (deduplicated by `token`).

    Refused span rows are isolated, not fatal; refused run values and records are reported.
    """
    runs = [r for r in records if r.get("type") in RUN_RECORD_TYPES]
    columns, result = map_records([r for r in records if r.get("type") not in RUN_RECORD_TYPES])
    refused = insert_columns(store, columns, token)
    result.rows -= len(refused)
    result.rejected.extend(refused.values())
    if runs:
        result.rows += _write_run_records(store, runs, token, result)
    return result


def _write_run_records(store: Store, records: list[dict[str, Any]], token: Optional[str], result: WriteResult) -> int:
    from tracehouse.collector.store.rows.artifacts import ARTIFACT_TYPES, write_artifact_records
    from tracehouse.collector.store.rows.evals import EVAL_TYPES, write_eval_records
    from tracehouse.collector.store.rows.runs import file_columns, metric_columns, run_columns, value_columns
    from tracehouse.collector.store.rows.sweeps import SWEEP_TABLES, sweep_columns

    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["type"], []).append(record)
    metrics, metrics_refused = metric_columns(by_type.get("metrics", ()))
    runs, runs_refused = run_columns(by_type.get("run", ()))
    values, tables, values_refused = value_columns(by_type.get("values", ()))
    files, files_refused = file_columns(by_type.get("file", ()))
    sweeps, sweeps_refused = sweep_columns(r for r in records if r["type"] in SWEEP_TABLES)
    for table, columns in (("metrics", metrics), ("run_values", values), ("run_tables", tables),
                           ("run_files", files), ("runs", runs), *sweeps.items()):  # fmt: skip
        if columns[next(iter(columns))]:
            store.insert(table, columns, dedup_token=token)
    artifacts = [r for r in records if r["type"] in ARTIFACT_TYPES]
    _, artifacts_refused = write_artifact_records(store, artifacts, token) if artifacts else (0, [])
    evals = [r for r in records if r["type"] in EVAL_TYPES]
    _, evals_refused = write_eval_records(store, evals, token) if evals else (0, [])
    artifacts_refused += evals_refused + sweeps_refused
    result.rejected.extend(metrics_refused + runs_refused + values_refused + files_refused + artifacts_refused)
    return len(records) - len(runs_refused) - len(files_refused) - len(artifacts_refused)


class BadBatch(ValueError):
    """A batch of records that is not a JSON array of record objects (400)."""


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """A JSON array of record objects; BadBatch with the reason otherwise."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadBatch(f"body is not JSON: {error}") from error
    if not isinstance(decoded, list) or not all(isinstance(r, dict) for r in decoded):
        raise BadBatch("expected a JSON array of record objects")
    return decoded


def check_projects(records: list[dict[str, Any]], allowed_project: Optional[str]) -> None:
    """PermissionError naming the other projects when records are not all of `allowed_project`."""
    if allowed_project is None:
        return
    others = {str(r.get("project")) for r in records} - {allowed_project}
    if others:
        raise PermissionError(sorted(others))


def write_json(
    store: Store, body: bytes, token: Optional[str], allowed_project: Optional[str] = None
) -> Optional[WriteResult]:
    """Insert a JSON array of records mapped inside the embedded store (see collector/store/rows/span_sql.py).

    None when that path does not apply (a ClickHouse server, or records ClickHouse cannot read in
    the expected shape): the caller then decodes the batch and uses `write_records`.
    """
    if not store.embedded:
        return None
    from tracehouse.collector.store.rows.span_sql import check_and_insert_json

    try:
        found = check_and_insert_json(store, body, token, allowed_project)
    except (ValueError, BadRowsError):
        return None
    return WriteResult(
        rows=found.spans - len(found.rejected), rejected=found.rejected, unknown_types=found.unknown_types
    )


def write_body(store: Store, body: bytes, token: Optional[str], allowed_project: Optional[str] = None) -> WriteResult:
    """Insert a JSON array of records: mapped by the store when it can, else decoded and mapped here."""
    result = write_json(store, body, token, allowed_project)
    if result is not None:
        return result
    records = parse_records(body)
    check_projects(records, allowed_project)
    return write_records(store, records, token)


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
    body: Optional[bytes] = None  # a JSON batch, written alone by write_body
    allowed_project: Optional[str] = None


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
        self._stores = [store] + [store.another_client() for _ in range(threads - 1)]
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
        return self._enqueue(_Submission(records, token, Future(), map_records(records), len(records)))

    def submit_json(
        self, body: bytes, token: Optional[str], allowed_project: Optional[str] = None
    ) -> Future[WriteResult]:
        """Queue a JSON array of records as it is (see write_body): inserted alone, mapped by the store.

        The future fails with BadBatch for a body that is not such an array and with PermissionError
        when it holds a project other than `allowed_project`; nothing of that batch is written then.
        """
        rows = body.count(b'"type":')  # an estimate for the queue's bound, before anything is parsed
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
            if first.token is None and first.body is None:
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
                    if self._queue[0].token is not None or self._queue[0].body is not None:
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
        assert item.body is not None
        started = time.monotonic()
        try:
            result = write_body(store, item.body, item.token, item.allowed_project)
        except (BadBatch, PermissionError) as error:
            item.future.set_exception(error)
        except Exception as error:
            with self._cond:
                self.stats.failed_inserts += 1
            logger.warning("tracehouse collector: insert of a JSON batch failed: %s", error)
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
        if batch[0].body is not None:
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
            for extra in self._stores[1:]:
                extra.close()
        return stopped
