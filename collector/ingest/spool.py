"""The spool: per-process append-only segment files, the write-ahead log of every record.

Segment file: the 9-byte magic `THSPOOL1\\n`, then frames. A frame is a 12-byte header (`THF1`,
payload length, CRC-32 of the payload; little-endian) and a JSON array of records. A writer holds
an exclusive `flock` on its open segment, so a reader can tell a live segment (lock held) from one
whose writer has finished or died (lock free), and only treats an incomplete tail as torn in the
latter case.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, Optional, Union

SEGMENT_MAGIC = b"THSPOOL1\n"
FRAME_MAGIC = b"THF1"
_HEADER = struct.Struct("<4sII")
HEADER_SIZE = _HEADER.size
SEGMENT_SUFFIX = ".seg"
NEW_SUFFIX = ".new"  # a segment being created; holds no frames until renamed to .seg
MAX_FRAME_BYTES = 1024 * 1024 * 1024  # what a reader accepts (older versions wrote frames of any size)
WRITE_FRAME_BYTES = 8 * 1024 * 1024  # what writers write at most (see frames.py): below any body limit


def encode_frame(payload: bytes) -> bytes:
    """Header + payload, ready to append to a segment."""
    return _HEADER.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload


class SpoolWriter:
    """Appends frames to this process's current segment; rotates by size. Not thread-safe."""

    def __init__(self, directory: Path, max_segment_bytes: int = 32 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_segment_bytes = max_segment_bytes
        self._fd: Optional[int] = None
        self._size = 0
        self._dirty = False
        self.path: Optional[Path] = None

    def _open_segment(self) -> None:
        # Created under a name readers ignore, locked, then renamed: a reader never sees an unlocked
        # new segment (it would take it for the leftover of a dead writer and trim it).
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"
        path = self.directory / name
        staging = path.with_name(name + NEW_SUFFIX)
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, SEGMENT_MAGIC)
            os.rename(staging, path)
            fsync_directory(self.directory)  # the new name survives a power cut
        except OSError:
            os.close(fd)
            staging.unlink(missing_ok=True)
            raise
        self._fd, self._size, self.path = fd, len(SEGMENT_MAGIC), path

    def append(self, payload: bytes) -> None:
        """Append one frame holding `payload` (a JSON array of records)."""
        self.append_all([payload])

    def append_all(self, payloads: list[bytes]) -> None:
        """Append one frame per payload, all or none (a failed write leaves none of them)."""
        if self._fd is None:
            self._open_segment()
        assert self._fd is not None
        frame = (
            b"".join(encode_frame(payload) for payload in payloads) if len(payloads) > 1 else encode_frame(payloads[0])
        )
        try:
            _write_all(self._fd, frame)
        except OSError:
            self._undo_partial_write()
            raise
        self._size += len(frame)
        self._dirty = True
        if self._size >= self.max_segment_bytes:
            try:
                self.close()
            except OSError:  # the frame is written: a failed rotation must not make the caller resend it
                self._fd = None

    def _undo_partial_write(self) -> None:
        """A failed write may leave part of a frame: cut it off, or start a new segment if we cannot."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            finally:
                self._fd = None

    def sync(self) -> None:
        """fsync the open segment so what was appended survives a crash of the machine."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        """fsync and close the current segment, releasing its lock (readers may then trim it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if self._dirty:
                    os.fsync(fd)
                    self._dirty = False
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def abandon(self) -> None:
        """Forget an inherited segment without unlocking it (a forked child; the parent still writes it)."""
        if self._fd is not None:
            os.close(self._fd)  # the lock lives on in the parent's descriptor
            self._fd = None


def fsync_directory(directory: Path) -> None:
    """fsync a directory, so a file created or renamed in it is durable under its name."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def segment_pid(name: str) -> Optional[int]:
    """The id of the process that wrote a segment (`<time>-<pid>-<random>.seg`), if the name has one."""
    parts = name.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def segment_is_live(path: Path) -> bool:
    """True while a writer holds the segment open (its flock is taken)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we took it
    return False


@dataclass
class Frame:
    """One complete, checksummed frame of a segment."""

    start: int
    end: int
    payload: bytes

    @cached_property
    def records(self) -> int:
        """Records in the payload, counted without parsing (sizes ranges and bounds queues; counted once)."""
        return self.payload.count(b'"type":')


@dataclass
class SegmentScan:
    """The frames read from a segment from some offset, and how the read stopped."""

    frames: list[Frame]
    end: int  # offset after the last good frame (or skipped bad one)
    problem: Optional[str] = None  # set when the segment is not ours or is damaged at `end`
    incomplete_tail: int = 0  # bytes after `end` that do not (yet) form a whole frame
    skipped_frames: int = 0  # frames with a bad checksum skipped over
    damaged_bytes: int = 0  # bytes of damaged frame headers skipped to reach the next good frame
    damaged_at: list[int] = field(default_factory=list)  # where each damaged region began


def scan_segment(
    path: Path,
    offset: int = 0,
    max_bytes: int = 64 * 1024 * 1024,
    finished: bool = False,
    max_records: Optional[int] = None,
) -> SegmentScan:
    """Read whole frames from `offset` (0 = start of file) until about `max_bytes` of payload (or
    `max_records` records: what the scan holds in memory until its ranges are stored).

    A damaged frame header does not end the read: the scan looks for the next header whose
    payload's checksum matches and goes on from there, counting the bytes it skipped. In a
    `finished` segment (its writer is gone) a frame cut short is damage too when good frames
    follow it; otherwise it is the torn tail of a killed writer.
    """
    with open(path, "rb") as handle:
        if offset == 0:
            magic = handle.read(len(SEGMENT_MAGIC))
            if len(magic) < len(SEGMENT_MAGIC):
                return SegmentScan([], 0, incomplete_tail=len(magic))
            if magic != SEGMENT_MAGIC:
                return SegmentScan([], 0, problem="not a tracehouse spool segment (bad magic)")
            offset = len(SEGMENT_MAGIC)
        handle.seek(offset)
        scan = SegmentScan([], offset)
        total = records = 0
        while total < max_bytes and (max_records is None or records < max_records):
            header = handle.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE:
                scan.incomplete_tail = len(header)
                return scan
            magic, length, crc = _HEADER.unpack(header)
            if magic != FRAME_MAGIC or length > MAX_FRAME_BYTES:
                if _skip_damage(handle, scan) or _damaged_to_end(handle, scan, finished):
                    continue
                return scan  # a live writer may still append good frames after the damage
            payload = handle.read(length)
            if len(payload) < length:
                if finished and _skip_damage(handle, scan):
                    continue
                scan.incomplete_tail = HEADER_SIZE + len(payload)
                return scan
            end = scan.end + HEADER_SIZE + length
            if zlib.crc32(payload) == crc:
                frame = Frame(scan.end, end, payload)
                scan.frames.append(frame)
                total += length
                if max_records is not None:
                    records += frame.records
            elif _header_or_end_follows(handle):
                scan.skipped_frames += 1  # the payload is damaged, its header is not
            elif _skip_damage(handle, scan) or _damaged_to_end(handle, scan, finished):
                continue  # the length itself was wrong: the scan went on where frames resume
            else:
                return scan
            scan.end = end
        return scan


def _header_or_end_follows(handle: BinaryIO) -> bool:
    """Whether the file, at its current position, ends or holds a frame header (position kept)."""
    at = handle.tell()
    magic = handle.read(len(FRAME_MAGIC))
    handle.seek(at)
    return FRAME_MAGIC.startswith(magic)  # b"" (the end) or a header, perhaps still being written


def _damaged_to_end(handle: BinaryIO, scan: SegmentScan, finished: bool) -> bool:
    """In a finished segment, count everything from `scan.end` on as damaged and move to the end."""
    if not finished:
        return False
    size = handle.seek(0, os.SEEK_END)
    if size > scan.end:
        scan.damaged_at.append(scan.end)
        scan.damaged_bytes += size - scan.end
        scan.end = size
    return True


def _skip_damage(handle: BinaryIO, scan: SegmentScan) -> bool:
    """Move `scan.end` (and the file) to the next good frame after damage at `scan.end`.

    Returns False, moving nothing, when no good frame follows; a damaged header then moves the
    scan to the end of the file (what follows it cannot be read)."""
    handle.seek(scan.end + 1)
    rest = handle.read()
    found = _next_good_frame(rest)
    if found is None:
        handle.seek(scan.end)
        return False
    skipped = found + 1
    scan.damaged_at.append(scan.end)
    scan.damaged_bytes += skipped
    scan.end += skipped
    handle.seek(scan.end)
    return True


def _next_good_frame(data: bytes) -> Optional[int]:
    """The offset in `data` of the first frame header whose payload is whole and matches its CRC."""
    index = data.find(FRAME_MAGIC)
    while index >= 0:
        if index + HEADER_SIZE <= len(data):
            _, length, crc = _HEADER.unpack_from(data, index)
            start = index + HEADER_SIZE
            whole = length <= MAX_FRAME_BYTES and start + length <= len(data)
            if whole and zlib.crc32(data[start : start + length]) == crc:
                return index
        index = data.find(FRAME_MAGIC, index + 1)
    return None


class JsonArrays:
    """Frame payloads as one JSON array of records, joined only as it is written out.

    A range of frames is tens of MB: joining it in memory would hold it twice while the store reads it.
    """

    def __init__(
        self, payloads: list[bytes], parts: list[Union[bytes, memoryview]], rows: Optional[int] = None
    ) -> None:
        self.payloads = payloads  # the frames' JSON arrays
        self.parts = parts  # the inside of each non-empty one: records separated by commas, no brackets
        self._rows = rows

    @property
    def rows(self) -> int:
        """Records in the array, counted without parsing (an estimate for a queue's bound)."""
        if self._rows is None:
            self._rows = sum(payload.count(b'"type":') for payload in self.payloads)
        return self._rows

    def write_to(self, out: BinaryIO) -> None:
        """Write the joined array to a binary file."""
        out.write(b"[")
        for index, part in enumerate(self.parts):
            if index:
                out.write(b",")
            out.write(part)
        out.write(b"]")

    def __bytes__(self) -> bytes:
        return b"[" + b",".join(self.parts) + b"]"


JsonBody = Union[bytes, JsonArrays]  # a JSON array of records, whole or as frame payloads joined on write


def join_json_arrays(payloads: list[bytes], rows: Optional[int] = None) -> Optional[JsonArrays]:
    """Frame payloads (each a JSON array of records) as one JSON array, without decoding or copying them.

    `rows`, when the caller has counted the records already, saves counting them again. None when a
    payload is not shaped like a JSON array; then the frames must be decoded instead.
    """
    parts: list[Union[bytes, memoryview]] = []
    for payload in payloads:
        if payload[:1] != b"[" or payload[-1:] != b"]":  # the writer's frames never have spaces around
            payload = payload.strip()
            if payload[:1] != b"[" or payload[-1:] != b"]":
                return None
        if payload[1:2] == b"{" or payload[1:-1].strip():  # (the second test, which copies, is rarely needed)
            parts.append(memoryview(payload)[1:-1])
    return JsonArrays(payloads, parts, rows)


def list_segments(directory: Path) -> tuple[list[Path], list[Path]]:
    """(segment files oldest first, other files) in a spool directory."""
    if not directory.is_dir():
        return [], []
    segments: list[Path] = []
    others: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() or entry.name.endswith((".ack", ".ack.tmp", NEW_SUFFIX)) or entry.name.startswith("."):
            continue
        (segments if entry.name.endswith(SEGMENT_SUFFIX) else others).append(entry)
    return segments, others
