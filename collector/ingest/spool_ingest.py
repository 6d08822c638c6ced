"""The in-process path into the embedded store: ingest spool segments, exactly once.

For each segment, a small `.ack` file beside it records how far the store has accepted it
(`committed`) and the range being inserted now (`inflight`). The intent is written before the
insert, and the insert carries a deduplication token made of the segment name and range, so a
reader killed between insert and commit redoes the same range with the same token and ClickHouse
drops the duplicate. A segment is deleted once its writer is gone and all of it is committed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

import orjson

from tracehouse.collector.ingest.spool import (
    NEW_SUFFIX,
    Frame,
    SegmentScan,
    fsync_directory,
    join_json_arrays,
    list_segments,
    scan_segment,
    segment_is_live,
)

if TYPE_CHECKING:
    from tracehouse.collector.ingest.writer import WriteResult
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
QUARANTINE = "quarantine"
FINISHED = 2**62  # the progress of a segment that was read to its end and removed (or set aside)
_LOCK_NAME = ".ingest.lock"


@dataclass
class IngestReport:
    """What one pass over a spool directory did."""

    rows: int = 0
    segments_done: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    damaged_bytes: int = 0  # unreadable bytes skipped (the frames after them were read)
    by_segment: dict[str, int] = field(default_factory=dict)  # records taken, by segment name
    requeued: int = 0  # quarantined segments put back to be read again (`sync --quarantine`)
    set_aside: int = 0  # ranges the destination refused for good, moved to quarantine/

    def merge(self, other: IngestReport) -> None:
        """Add another report's counts to this one."""
        self.rows += other.rows
        self.segments_done += other.segments_done
        self.rejected += other.rejected
        self.problems.extend(other.problems)
        self.damaged_bytes += other.damaged_bytes
        self.requeued += other.requeued
        self.set_aside += other.set_aside
        for name, taken in other.by_segment.items():
            self.by_segment[name] = self.by_segment.get(name, 0) + taken


@dataclass
class _Ack:
    committed: int = 0
    inflight: list[tuple[int, int]] = field(default_factory=list)  # ranges sent, not yet committed, in order

    @staticmethod
    def path_for(segment: Path) -> Path:
        return segment.with_name(segment.name + ".ack")

    @classmethod
    def load(cls, segment: Path) -> _Ack:
        try:
            data = orjson.loads(cls.path_for(segment).read_bytes())
            inflight = data.get("inflight") or []
            if inflight and not isinstance(inflight[0], list):  # the one-range form of earlier versions
                inflight = [inflight]
            return cls(int(data.get("committed", 0)), [(int(a), int(b)) for a, b in inflight])
        except FileNotFoundError:
            return cls()
        except Exception:
            logger.warning(
                "tracehouse: unreadable ack file for %s; re-ingesting it from the start (rows may repeat)", segment.name
            )
            return cls()

    def save(self, segment: Path) -> None:
        path = self.path_for(segment)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps({"committed": self.committed, "inflight": self.inflight}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)  # else a power cut can roll the ack back and the range be re-read


def _remove_abandoned_new_segments(spool_dir: Path, min_age_seconds: float = 60.0) -> None:
    """A writer killed while creating a segment leaves `*.seg.new` (a header, no frames): remove it."""
    now = time.time()
    for path in spool_dir.glob("*" + NEW_SUFFIX):
        try:
            if now - path.stat().st_mtime > min_age_seconds and not segment_is_live(path):
                path.unlink()
        except FileNotFoundError:
            continue


# Problems already reported by this process, so a foreign file is not warned about on every read.
_reported: set[tuple[str, str]] = set()


def _report(report: IngestReport, path: Path, problem: str) -> None:
    message = f"{path}: {problem}"
    report.problems.append(message)
    if (str(path), problem) not in _reported:
        if len(_reported) > 10_000:  # a long-lived reader must not grow without bound
            _reported.clear()
        _reported.add((str(path), problem))
        logger.warning("tracehouse spool: %s", message)


class Destination(Protocol):
    """Where an ingester delivers records: the store itself, or a collector over HTTP.

    A destination may also have `write_raw(payloads, token, rows) -> WriteResult | None`, taking the
    frames' JSON payloads undecoded (`rows`: their records, counted once by the ingester); None from
    it means "decode them and call `write`".
    """

    def write(self, records: list[dict[str, Any]], token: str) -> WriteResult:
        """Store `records` exactly once per `token`; raise if they could not be delivered."""
        ...


class StoreDestination:
    """Delivers straight into a Store (the process that owns it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, records: list[dict[str, Any]], token: str) -> WriteResult:
        """Insert through the collector's single write path."""
        from tracehouse.collector.ingest.writer import write_records

        return write_records(self.store, records, token)

    def write_raw(self, payloads: list[bytes], token: str, rows: Optional[int] = None) -> Optional[WriteResult]:
        """The frames as they are, mapped inside the embedded store; None where that does not apply."""
        from tracehouse.collector.ingest.writer import write_json

        body = join_json_arrays(payloads, rows)
        return None if body is None else write_json(self.store, body, token)


class SpoolIngester:
    """Moves records from spool segments to a destination (a Store, or anything with `write`)."""

    def __init__(
        self,
        destination: Union[Store, Destination],
        max_rows_per_insert: int = 20_000,
        max_bytes_per_insert: int = 64 * 1024 * 1024,
        max_inflight: int = 1,
        on_progress: Optional[Callable[[str, int], None]] = None,
    ) -> None:
        self.destination: Destination = (
            destination if hasattr(destination, "write") else StoreDestination(destination)  # type: ignore[arg-type]
        )
        self.max_rows_per_insert = max_rows_per_insert
        self.max_bytes_per_insert = max_bytes_per_insert
        self.max_inflight = max_inflight  # ranges delivered at once (a collector overlaps their work)
        # a scan reads what one round of ranges in flight takes: the frames read stay in memory until
        # their range is stored, and a 64 MiB scan held ~3 ranges' frames waiting behind the two in flight
        self._records_per_scan = max_rows_per_insert * max_inflight
        self._deadline: Optional[float] = None
        # (segment name, bytes read so far) after each commit; FINISHED once a segment is done with
        self.on_progress = on_progress

    def ingest(self, spool_dir: Path, seconds: Optional[float] = None) -> IngestReport:
        """One pass over `spool_dir`: every complete frame is inserted; finished segments are deleted.

        With `seconds`, the pass stops starting new ranges after that long (a read's catch-up must
        not chase frames that keep arriving); what is left waits for the next pass."""
        self._deadline = None if seconds is None else time.monotonic() + seconds
        report = IngestReport()
        segments, others = list_segments(spool_dir)
        for other in others:
            if other.name != _LOCK_NAME:
                _report(report, other, "not a spool segment; skipped")
        _remove_abandoned_new_segments(spool_dir)
        if not segments:
            return report
        with open(spool_dir / _LOCK_NAME, "a") as lock:  # one ingester per spool directory at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            for segment in segments:
                if self._past_deadline():
                    break
                try:
                    report.merge(self._ingest_segment(segment))
                except FileNotFoundError:
                    continue  # another reader finished it meanwhile
        return report

    def _ingest_segment(self, segment: Path) -> IngestReport:
        report = IngestReport()
        live = segment_is_live(segment)
        ack = _Ack.load(segment)
        if self.on_progress is not None:
            self.on_progress(segment.name, ack.committed)  # what earlier passes (or processes) stored
        for start, end in list(ack.inflight):  # a reader died mid-insert: redo exactly those ranges
            scan = scan_segment(segment, start, max_bytes=end - start)
            self._deliver_ranges(segment, ack, [([f for f in scan.frames if f.end <= end], start, end)], report)
        damaged = False
        while True:
            scan = scan_segment(segment, ack.committed, finished=not live, max_records=self._records_per_scan)
            if scan.skipped_frames:
                _report(report, segment, f"{scan.skipped_frames} frame(s) with a bad checksum skipped")
            if scan.damaged_bytes:
                damaged = True
                report.damaged_bytes += scan.damaged_bytes
                _report(report, segment, f"{scan.damaged_bytes} damaged byte(s) at byte {scan.damaged_at[0]} "
                                         "skipped; the frames after them were read")  # fmt: skip
            if scan.frames or scan.end > ack.committed:
                self._insert_in_batches(segment, ack, scan.frames, scan.end, report)
            if scan.problem is not None:
                if not live:
                    _report(report, segment, f"{scan.problem} at byte {scan.end}; moved to {QUARANTINE}/")
                    self._quarantine(segment)
                return report
            if not scan.frames or self._past_deadline():
                break
        if not live and not scan.frames:
            self._finish_segment(segment, scan, damaged, report)
        return report

    def _finish_segment(self, segment: Path, scan: SegmentScan, damaged: bool, report: IngestReport) -> None:
        """A finished segment read to its end: deleted, or kept in quarantine/ when bytes of it were damaged."""
        if scan.incomplete_tail:
            _report(report, segment, f"torn tail of {scan.incomplete_tail} bytes skipped (writer was killed?)")
        if damaged:
            _report(report, segment, f"its readable frames are stored; kept in {QUARANTINE}/ for inspection")
            self._quarantine(segment)
        else:
            segment.unlink(missing_ok=True)
            _Ack.path_for(segment).unlink(missing_ok=True)
        report.segments_done += 1
        if self.on_progress is not None:
            self.on_progress(segment.name, FINISHED)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    def _insert_in_batches(self, segment: Path, ack: _Ack, frames: list[Frame], end: int, report: IngestReport) -> None:
        ranges: list[tuple[list[Frame], int, int]] = []
        start = ack.committed
        batch: list[Frame] = []
        rows = size = 0
        for frame in frames:
            batch.append(frame)
            rows += frame.records
            size += len(frame.payload)
            if rows >= self.max_rows_per_insert or size >= self.max_bytes_per_insert:
                ranges.append((batch, start, frame.end))
                start, batch, rows, size = frame.end, [], 0, 0
        if end > start or batch:
            ranges.append((batch, start, end))
        self._deliver_ranges(segment, ack, ranges, report)

    def _deliver_ranges(
        self, segment: Path, ack: _Ack, ranges: list[tuple[list[Frame], int, int]], report: IngestReport
    ) -> None:
        """Deliver ranges, up to `max_inflight` at once, committing them in order.

        Each range is in the ack's `inflight` list (fsync'd) before it is sent, under a token made of
        its bounds, so whatever was sent when a reader dies is redone with the same tokens and the
        destination drops what it already has. A failure stops the pass after the ranges in flight.
        """
        workers = min(self.max_inflight, len(ranges))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="tracehouse-send") if workers > 1 else None
        pending: deque[tuple[int, int, Future[WriteResult]]] = deque()
        try:
            for frames, start, end in ranges:
                if end <= ack.committed and (start, end) not in ack.inflight:
                    continue
                if (start, end) not in ack.inflight:
                    ack.inflight.append((start, end))
                    ack.save(segment)
                token = f"{segment.name}:{start}:{end}"
                future: Future[WriteResult]
                if pool is None:
                    future = Future()
                    future.set_result(self._deliver(frames, token, report, segment))
                else:
                    future = pool.submit(self._deliver, frames, token, report, segment)
                pending.append((start, end, future))
                while len(pending) >= workers:
                    self._commit(segment, ack, *pending.popleft(), report)
            while pending:
                self._commit(segment, ack, *pending.popleft(), report)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)  # on failure: let the ranges in flight finish before the pass ends

    def _commit(
        self, segment: Path, ack: _Ack, start: int, end: int, future: Future[WriteResult], report: IngestReport
    ) -> None:
        try:
            result = future.result()  # raises the delivery's error: the range stays in flight for a redo
        except Exception as error:
            if not getattr(error, "refused_for_good", False) or segment.parent.name == QUARANTINE:
                raise
            result = self._set_aside(segment, start, end, error, report)
        if result.set_aside:
            self._keep_refused(segment, result.set_aside, report)
        if result.unknown_types:
            _report(report, segment, f"{result.unknown_types} record(s) of an unknown type skipped")
        for reason in result.rejected[:5]:
            _report(report, segment, f"rejected {reason}")
        report.rejected += len(result.rejected)
        report.rows += result.rows
        report.by_segment[segment.name] = report.by_segment.get(segment.name, 0) + result.rows + len(result.rejected)
        ack.inflight.remove((start, end))
        ack.committed = max(ack.committed, end)  # ranges commit in order, so all before `end` is in
        ack.save(segment)
        if self.on_progress is not None:
            self.on_progress(segment.name, ack.committed)

    @staticmethod
    def _set_aside(segment: Path, start: int, end: int, error: Exception, report: IngestReport) -> WriteResult:
        """A range the destination refuses for good: its frames go to a segment in quarantine/ (for
        `tracehouse sync --quarantine` once the cause is fixed) and the spool moves on."""
        from tracehouse.collector.ingest.spool import SpoolWriter
        from tracehouse.collector.ingest.writer import WriteResult

        frames = scan_segment(segment, start, max_bytes=end - start).frames
        payloads = [frame.payload for frame in frames if frame.end <= end]
        if payloads:
            writer = SpoolWriter(segment.parent / QUARANTINE)
            writer.append_all(payloads)
            writer.close()
        _report(report, segment, f"bytes {start}-{end} refused ({error}); set aside in {QUARANTINE}/")
        report.set_aside += 1
        return WriteResult()

    @staticmethod
    def _keep_refused(segment: Path, records: list[dict[str, Any]], report: IngestReport) -> None:
        """Records of a range the destination refused for good one by one (the rest was taken): kept
        in a segment in quarantine/ for `tracehouse sync --quarantine`."""
        from tracehouse.collector.ingest.frames import encode_frames
        from tracehouse.collector.ingest.spool import SpoolWriter

        writer = SpoolWriter(segment.parent / QUARANTINE)
        writer.append_all([payload for payload, _ in encode_frames(records, orjson.dumps)])
        writer.close()
        _report(report, segment, f"{len(records)} record(s) refused by the destination; set aside in {QUARANTINE}/")
        report.set_aside += 1

    def _deliver(self, frames: list[Frame], token: str, report: IngestReport, segment: Path) -> WriteResult:
        """Frames as they are when the destination takes raw payloads, else decoded (bad frames skipped)."""
        if not frames:  # a range of skipped frames only: nothing to send, just move past it
            from tracehouse.collector.ingest.writer import WriteResult

            return WriteResult()
        write_raw = getattr(self.destination, "write_raw", None)
        if write_raw is not None:
            payloads = [frame.payload for frame in frames]
            result: Optional[WriteResult] = write_raw(payloads, token, rows=sum(frame.records for frame in frames))
            if result is not None:
                return result
        records: list[dict[str, Any]] = []
        for frame in frames:
            try:
                decoded = orjson.loads(frame.payload)
            except orjson.JSONDecodeError:
                _report(report, segment, f"frame at byte {frame.start} is not JSON; skipped")
                continue
            if isinstance(decoded, list):
                records.extend(r for r in decoded if isinstance(r, dict))
        return self.destination.write(records, token)

    def _quarantine(self, segment: Path) -> None:
        """Move a segment (and how far it was read) to quarantine/: `tracehouse sync --quarantine`
        reads it again from there, resyncing past what is damaged. One read from there stays."""
        if self.on_progress is not None:
            self.on_progress(segment.name, FINISHED)
        if segment.parent.name == QUARANTINE:
            return
        target = segment.parent / QUARANTINE
        target.mkdir(exist_ok=True)
        ack = _Ack.path_for(segment)
        if ack.exists():
            shutil.move(str(ack), str(target / ack.name))
        shutil.move(str(segment), str(target / segment.name))
        fsync_directory(target)
