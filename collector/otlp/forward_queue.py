"""The forwarder's queue: OTLP requests waiting to be sent on, in spool segments on disk.

A request is a frame (see collector/ingest/spool.py): a JSON line naming its signal, content type
and encoding, then the body as received. The queue is bounded in bytes on disk, not held in memory:
an endpoint that is down for an hour costs disk, never the collector's memory, and what was queued
when the collector stopped is sent after it starts again. How far each segment was sent is kept
beside it (`<segment>.ack`), so a restart resends at most the request that was in flight.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import orjson

from tracehouse.collector.ingest.spool import Frame, SpoolWriter, list_segments, scan_segment, segment_is_live

logger = logging.getLogger("tracehouse")
_SEGMENT_BYTES = 8 * 1024 * 1024
_SCAN_BYTES = 8 * 1024 * 1024  # what one read of a segment holds in memory (at least one whole request)


@dataclass
class Queued:
    """One request waiting to be sent, and where it is on disk."""

    signal: str
    body: bytes
    content_type: str
    content_encoding: Optional[str]
    segment: Path
    end: int  # the offset after its frame: where the segment's sending resumes once it is sent
    size: int  # its frame's payload bytes (what it counts against the queue's bound)


def _encode(signal: str, body: bytes, content_type: str, content_encoding: Optional[str]) -> bytes:
    head = orjson.dumps({"signal": signal, "content_type": content_type, "content_encoding": content_encoding})
    return head + b"\n" + body


def _decode(frame: Frame, segment: Path) -> Optional[Queued]:
    head, _, body = frame.payload.partition(b"\n")
    try:
        fields = orjson.loads(head)
        return Queued(str(fields["signal"]), body, str(fields["content_type"]), fields.get("content_encoding"),
                      segment, frame.end, len(frame.payload))  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _ack_path(segment: Path) -> Path:
    return segment.with_name(segment.name + ".ack")


def _sent_offset(segment: Path) -> int:
    try:
        return int(_ack_path(segment).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _waiting_in(segment: Path) -> tuple[int, int]:
    """(requests, payload bytes) of a segment not yet sent (one left by an earlier run)."""
    requests = size = 0
    offset = _sent_offset(segment)
    while True:
        scan = scan_segment(segment, offset, max_bytes=_SCAN_BYTES, finished=True)
        requests += len(scan.frames)
        size += sum(len(frame.payload) for frame in scan.frames)
        if not scan.frames or scan.problem is not None:
            return requests, size
        offset = scan.end


class DiskQueue:
    """Requests in order on disk; `put` from any thread, `next` and `done` from the one sending thread."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.max_bytes = directory, max_bytes
        self._writer = SpoolWriter(directory, max_segment_bytes=_SEGMENT_BYTES)
        self._lock = threading.Lock()  # guards the writer and the counts
        self._arrived = threading.Event()
        self._read: deque[Queued] = deque()  # read back from disk, not yet done (at most one scan's worth)
        self._positions: dict[str, int] = {}  # segment name -> offset read up to
        self.queued = self.queued_bytes = 0  # requests (and their bytes) waiting, those of earlier runs too
        self.skipped = 0  # frames that do not hold a queued request (damaged on disk)
        for segment in list_segments(directory)[0]:
            requests, size = _waiting_in(segment)
            self.queued, self.queued_bytes = self.queued + requests, self.queued_bytes + size

    def put(self, signal: str, body: bytes, content_type: str, content_encoding: Optional[str]) -> bool:
        """Append a request; False when it would take the queue past `max_bytes` (then nothing is written).
        Raises OSError when the disk refuses the write."""
        payload = _encode(signal, body, content_type, content_encoding)
        with self._lock:
            if self.queued and self.queued_bytes + len(payload) > self.max_bytes:
                return False
            self._writer.append(payload)
            self.queued, self.queued_bytes = self.queued + 1, self.queued_bytes + len(payload)
        self._arrived.set()
        return True

    def next(self, wait: float) -> Optional[Queued]:
        """The oldest request not yet done (the same one until `done`); None when none came within `wait` s."""
        if not self._read and not self._fill():
            self._arrived.wait(wait)
            self._arrived.clear()
            if not self._fill():
                return None
        return self._read[0]

    def done(self, item: Queued) -> None:
        """`item` (what `next` gave) was sent, or refused for good: it leaves the queue."""
        ack = _ack_path(item.segment)
        staging = ack.with_name(ack.name + ".tmp")
        staging.write_text(str(item.end))
        os.replace(staging, ack)  # never a half-written offset (an empty one would resend the segment)
        self._read.popleft()
        self._forget(1, item.size)

    def wake(self) -> None:
        """Make a waiting `next` return now."""
        self._arrived.set()

    def close(self) -> None:
        """Close the segment being written; what is queued stays on disk for the next start."""
        with self._lock:
            self._writer.close()

    def _forget(self, requests: int, size: int) -> None:
        with self._lock:
            self.queued, self.queued_bytes = max(0, self.queued - requests), max(0, self.queued_bytes - size)

    def _fill(self) -> bool:
        """Read the next requests of the oldest segment that has any; finished segments sent in full go."""
        for segment in list_segments(self.directory)[0]:
            start = self._positions.get(segment.name)
            start = _sent_offset(segment) if start is None else start
            live = segment_is_live(segment)
            scan = scan_segment(segment, start, max_bytes=_SCAN_BYTES, finished=not live)
            self._positions[segment.name] = scan.end
            if scan.skipped_frames:
                self.skipped += scan.skipped_frames
                self._forget(scan.skipped_frames, 0)
                logger.warning("tracehouse collector: %d damaged request(s) in forward queue segment %s skipped",
                               scan.skipped_frames, segment)  # fmt: skip
            for frame in scan.frames:
                item = _decode(frame, segment)
                if item is None:
                    self.skipped += 1
                    self._forget(1, len(frame.payload))
                else:
                    self._read.append(item)
            if self._read:
                return True
            if scan.problem is not None:
                logger.warning("tracehouse collector: forward queue segment %s: %s; set aside", segment, scan.problem)
                os.replace(segment, segment.with_name(segment.name + ".damaged"))
                _ack_path(segment).unlink(missing_ok=True)
            elif live:
                continue  # the segment being written (normally the newest; a clock step may misorder names)
            else:
                segment.unlink(missing_ok=True)
                _ack_path(segment).unlink(missing_ok=True)
            self._positions.pop(segment.name, None)
        return False


__all__ = ["DiskQueue", "Queued"]
