"""The collector's spool follower: moves its write-ahead log (and local processes' segments) into the store.

One thread ingests the spool directory, back to back while there is work, else every `interval`.
Reads do not ingest themselves: `catch_up` notes how far each segment reached when the read came
in and waits, at most `timeout` seconds, until the follower has stored that much. So a read sees
every request answered before it, never chases frames that arrive after it, and a heavy ingest
is never doubled by reads running passes of their own.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from tracehouse.collector.ingest.spool import list_segments, segment_pid
from tracehouse.collector.ingest.spool_ingest import FINISHED, IngestReport, SpoolIngester

if TYPE_CHECKING:
    from tracehouse.collector.ingest.batch_writer import BatchWriter
    from tracehouse.collector.ingest.writer import WriteResult

logger = logging.getLogger("tracehouse")


class WriterDestination:
    """Spool ingest through the collector's writer (so the store keeps a single writer)."""

    def __init__(self, writer: BatchWriter, timeout: float = 60.0) -> None:
        self.writer = writer
        self.timeout = timeout

    def write(self, records: list[dict[str, Any]], token: str) -> WriteResult:
        """Submit and wait until stored."""
        return self.writer.submit(records, token).result(self.timeout)

    def write_raw(self, payloads: list[bytes], token: str, rows: Optional[int] = None) -> Optional[WriteResult]:
        """Submit the frames undecoded (the store maps them) and wait until stored; `rows` bounds the queue."""
        from tracehouse.collector.ingest.spool import join_json_arrays

        body = join_json_arrays(payloads, rows)
        return None if body is None else self.writer.submit_json(body, token).result(self.timeout)


class SpoolFollower(threading.Thread):
    """Ingests a spool directory until stopped; `catch_up` waits for what was there when it was called."""

    def __init__(self, writer: BatchWriter, spool_dir: Path, interval: float, catch_up_timeout: float = 10.0) -> None:
        super().__init__(name="tracehouse-spool-follower", daemon=True)
        self.spool_dir, self.interval, self.catch_up_timeout = spool_dir, interval, catch_up_timeout
        self.ingested = 0  # records taken from the spool (stored or rejected)
        self.wal_ingested = 0  # of those, from this process's own segments: its write-ahead log
        self.damaged_bytes = 0  # unreadable spool bytes skipped (the frames after them were read)
        self.set_aside = 0  # ranges the store refused for good, moved to quarantine/
        # two ranges at once: the writer's two threads insert them side by side. Ranges of up to 40k rows: under
        # a backlog, half as many inserts of twice the size took ~25% less CPU per span (fewer parts written,
        # fsync'd and merged) and peaked no higher (bench/ingest.py); with no backlog a range is what is there.
        self._ingester = SpoolIngester(
            WriterDestination(writer), max_rows_per_insert=40_000, max_inflight=2, on_progress=self._progressed
        )
        self._pass_lock = threading.Lock()  # one pass at a time
        self._cond = threading.Condition()  # guards the counters and `_progress`
        self._progress: dict[str, int] = {}  # segment name -> bytes stored so far (FINISHED when done)
        self._wake = threading.Event()
        self._stop_event = threading.Event()

    def _progressed(self, segment: str, end: int) -> None:
        with self._cond:
            self._progress[segment] = end
            self._cond.notify_all()

    def ingest_pass(self) -> int:
        """One pass over the spool now; records taken."""
        with self._pass_lock:
            report = self._ingester.ingest(self.spool_dir)
        return self._count(report)

    def _count(self, report: IngestReport) -> int:
        taken = report.rows + report.rejected
        own = sum(rows for name, rows in report.by_segment.items() if segment_pid(name) == os.getpid())
        with self._cond:
            self.ingested += taken
            self.wal_ingested += own
            self.damaged_bytes += report.damaged_bytes
            self.set_aside += report.set_aside
            for name in [n for n, end in self._progress.items() if end == FINISHED]:
                del self._progress[name]  # done with; a finished name never comes back
        return taken

    def catch_up(self, timeout: Optional[float] = None) -> int:
        """Wait until what the spool held when called is stored (at most `timeout` s); records taken meanwhile.

        Without the follower thread running (stopped, or never started) the pass runs here.
        """
        if not self.is_alive():
            return self.ingest_pass()
        wanted = self._sizes_now()
        before = self.ingested
        self._wake.set()
        with self._cond:
            self._cond.wait_for(lambda: self._reached(wanted), self.catch_up_timeout if timeout is None else timeout)
        return self.ingested - before

    def _sizes_now(self) -> dict[str, int]:
        sizes = {}
        for segment in list_segments(self.spool_dir)[0]:
            try:
                sizes[segment.name] = segment.stat().st_size
            except FileNotFoundError:
                continue
        return sizes

    def _reached(self, wanted: dict[str, int]) -> bool:
        for name, size in wanted.items():
            if self._progress.get(name, 0) < size and (self.spool_dir / name).exists():
                return False
        return True

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                if self.ingest_pass():
                    continue
            except Exception as error:  # the store is busy or down: the spool keeps the records
                logger.warning("tracehouse collector: spool ingest paused: %s", error)
            self._wake.wait(self.interval)
            self._wake.clear()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after a last pass, so everything in the spool is inserted."""
        self._stop_event.set()
        self._wake.set()
        self.join(timeout)
        try:
            self.ingest_pass()
        except Exception as error:
            logger.warning("tracehouse collector: %s; the spool keeps the rest for the next start", error)
