"""The spool (segment files, frames, liveness) and the SpoolSink in front of it. No store needed."""

from __future__ import annotations

import errno
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import orjson
import pytest
from conftest import REPO

from tracehouse.collector.ingest import spool as _spool
from tracehouse.collector.ingest.spool import (
    FRAME_MAGIC,
    HEADER_SIZE,
    SEGMENT_MAGIC,
    Frame,
    SpoolWriter,
    encode_frame,
    join_json_arrays,
    list_segments,
    scan_segment,
    segment_is_live,
)
from tracehouse.exporters._records import SpanRecord
from tracehouse.exporters._sink import SpoolSink


def _payloads(count: int, size: int = 50) -> list[bytes]:
    return [orjson.dumps([{"type": "span", "i": i, "pad": "x" * size}]) for i in range(count)]


def _write_segment(directory: Path, payloads: list[bytes], close: bool = True) -> tuple[SpoolWriter, Path]:
    writer = SpoolWriter(directory)
    for payload in payloads:
        writer.append(payload)
    assert writer.path is not None
    path = writer.path
    if close:
        writer.close()
    return writer, path


def _record(i: int, project: str = "spool") -> SpanRecord:
    now = time.time_ns()
    return SpanRecord(project, "s", i + 1, i + 1, 0, now, now + 1000, 1, "", {"i": i}, None, "INTERNAL", "t", {})


def _records_in(directory: Path) -> list[dict]:
    records = []
    segments, _ = list_segments(directory)
    for segment in segments:
        scan = scan_segment(segment)
        assert scan.problem is None, (segment, scan)
        for frame in scan.frames:
            records.extend(orjson.loads(frame.payload))
    return records


# --- segments and frames ----------------------------------------------------------------------------


def test_writer_writes_magic_header_and_frames(tmp_path: Path) -> None:
    payloads = _payloads(3)
    _, path = _write_segment(tmp_path, payloads)
    data = path.read_bytes()
    assert data.startswith(SEGMENT_MAGIC)
    assert path.name.endswith(".seg") and f"-{os.getpid()}-" in path.name
    pos = len(SEGMENT_MAGIC)
    for payload in payloads:
        magic, length, crc = struct.unpack("<4sII", data[pos : pos + HEADER_SIZE])
        assert (magic, length, crc) == (FRAME_MAGIC, len(payload), zlib.crc32(payload))
        assert data[pos + HEADER_SIZE : pos + HEADER_SIZE + length] == payload
        pos += HEADER_SIZE + length
    assert pos == len(data)
    assert encode_frame(payloads[0]) == data[len(SEGMENT_MAGIC) : len(SEGMENT_MAGIC) + HEADER_SIZE + len(payloads[0])]


def test_scan_reads_back_payloads_with_offsets(tmp_path: Path) -> None:
    payloads = _payloads(5)
    _, path = _write_segment(tmp_path, payloads)
    scan = scan_segment(path)
    assert [f.payload for f in scan.frames] == payloads
    assert scan.problem is None and scan.incomplete_tail == 0 and scan.skipped_frames == 0
    assert scan.frames[0].start == len(SEGMENT_MAGIC)
    for before, after in zip(scan.frames, scan.frames[1:], strict=False):
        assert after.start == before.end
    for frame in scan.frames:
        assert frame.end - frame.start == HEADER_SIZE + len(frame.payload)
    assert scan.end == scan.frames[-1].end == path.stat().st_size


def test_scan_resumes_from_offset(tmp_path: Path) -> None:
    payloads = _payloads(6)
    _, path = _write_segment(tmp_path, payloads)
    first = scan_segment(path)
    resumed = scan_segment(path, first.frames[2].end)
    assert [f.payload for f in resumed.frames] == payloads[3:]
    assert resumed.frames[0].start == first.frames[3].start
    at_end = scan_segment(path, first.end)
    assert at_end.frames == [] and at_end.end == first.end and at_end.problem is None and at_end.incomplete_tail == 0


def test_scan_respects_max_bytes(tmp_path: Path) -> None:
    payloads = _payloads(10, size=200)
    _, path = _write_segment(tmp_path, payloads)
    size = len(payloads[0])
    part = scan_segment(path, max_bytes=int(size * 2.5))
    assert len(part.frames) == 3  # stops once about max_bytes of payload were read
    assert part.problem is None and part.incomplete_tail == 0
    rest = scan_segment(path, part.end)
    assert [f.payload for f in part.frames + rest.frames] == payloads


def test_scan_stops_at_max_records(tmp_path: Path) -> None:
    payloads = [orjson.dumps([{"type": "span", "i": i * 3 + j} for j in range(3)]) for i in range(6)]
    _, path = _write_segment(tmp_path, payloads)
    part = scan_segment(path, max_records=7)
    assert len(part.frames) == 3  # 3 + 3 records are under the budget; the frame that reaches it is the last
    assert sum(frame.records for frame in part.frames) == 9
    rest = scan_segment(path, part.end, max_records=7)
    assert [f.payload for f in part.frames + rest.frames] == payloads


def test_rotation_makes_several_segments(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_segment_bytes=1000)
    payloads = _payloads(40, size=100)
    paths = set()
    for payload in payloads:
        writer.append(payload)
        if writer.path is not None:
            paths.add(writer.path)
    writer.close()
    segments, others = list_segments(tmp_path)
    assert len(segments) >= 5 and others == []
    assert set(segments) == paths
    read = [f.payload for s in segments for f in scan_segment(s).frames]
    assert read == payloads  # oldest first, nothing lost across rotations
    for segment in segments[:-1]:
        assert segment.stat().st_size >= 1000
        assert not segment_is_live(segment)


def test_segment_is_live_while_writer_holds_it(tmp_path: Path) -> None:
    writer, path = _write_segment(tmp_path, _payloads(1), close=False)
    assert segment_is_live(path)
    assert segment_is_live(path)  # asking does not steal the lock
    writer.append(_payloads(1)[0])
    writer.close()
    assert not segment_is_live(path)
    assert not segment_is_live(tmp_path / "missing.seg")


_HOLDER = """
import sys
from pathlib import Path
from tracehouse.collector.ingest.spool import SpoolWriter
writer = SpoolWriter(Path(sys.argv[1]))
writer.append(b'[{"type": "span"}]')
writer.sync()
print(writer.path, flush=True)
sys.stdin.readline()
if sys.argv[2] == "close":
    writer.close()
    print("CLOSED", flush=True)
    sys.stdin.readline()
"""


def _start_holder(directory: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, "holder process did not start"
    return proc, Path(line)


def test_segment_is_live_across_processes_until_sigkill(tmp_path: Path) -> None:
    proc, path = _start_holder(tmp_path, "hold")
    try:
        assert segment_is_live(path)
        scan = scan_segment(path)
        assert len(scan.frames) == 1
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not segment_is_live(path)  # the kernel drops a dead writer's lock


def test_segment_is_not_live_after_another_process_closes_it(tmp_path: Path) -> None:
    proc, path = _start_holder(tmp_path, "close")
    try:
        assert segment_is_live(path)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "CLOSED"
        assert not segment_is_live(path)  # closed, though its process still runs
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_torn_tail_yields_complete_frames(tmp_path: Path) -> None:
    payloads = _payloads(4)
    _, path = _write_segment(tmp_path, payloads)
    size = path.stat().st_size
    cut = size - len(payloads[-1]) // 2
    os.truncate(path, cut)
    scan = scan_segment(path)
    assert [f.payload for f in scan.frames] == payloads[:3]
    assert scan.problem is None
    assert scan.end == scan.frames[-1].end
    assert scan.incomplete_tail == cut - scan.end > 0
    # a tail shorter than a frame header
    os.truncate(path, scan.end + 5)
    short = scan_segment(path)
    assert len(short.frames) == 3 and short.incomplete_tail == 5 and short.problem is None


def test_half_written_magic_is_incomplete_not_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "0-1-abc.seg"
    path.write_bytes(SEGMENT_MAGIC[:4])
    scan = scan_segment(path)
    assert scan.frames == [] and scan.problem is None and scan.incomplete_tail == 4


def test_corrupted_payload_byte_skips_only_that_frame(tmp_path: Path) -> None:
    payloads = _payloads(4)
    _, path = _write_segment(tmp_path, payloads)
    frames = scan_segment(path).frames
    data = bytearray(path.read_bytes())
    data[frames[1].start + HEADER_SIZE + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    scan = scan_segment(path)
    assert scan.skipped_frames == 1
    assert [f.payload for f in scan.frames] == [payloads[0], payloads[2], payloads[3]]
    assert scan.problem is None and scan.end == path.stat().st_size


def test_damaged_frame_header_is_skipped_and_the_scan_resyncs(tmp_path: Path) -> None:
    payloads = _payloads(4)
    _, path = _write_segment(tmp_path, payloads)
    frames = scan_segment(path).frames
    data = bytearray(path.read_bytes())
    data[frames[1].start : frames[1].start + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    scan = scan_segment(path)
    assert [f.payload for f in scan.frames] == [payloads[0], payloads[2], payloads[3]]
    assert scan.problem is None and scan.damaged_at == [frames[1].start]
    assert scan.damaged_bytes == frames[2].start - frames[1].start
    assert scan.end == path.stat().st_size


def test_a_wrong_length_in_a_header_resyncs_at_the_next_good_frame(tmp_path: Path) -> None:
    payloads = _payloads(4)
    _, path = _write_segment(tmp_path, payloads)
    frames = scan_segment(path).frames
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, frames[1].start + 4, 7)  # a plausible length, wrong: its CRC fails
    path.write_bytes(bytes(data))
    scan = scan_segment(path)
    assert [f.payload for f in scan.frames] == [payloads[0], payloads[2], payloads[3]]
    assert scan.skipped_frames == 0 and scan.damaged_bytes == frames[2].start - frames[1].start


def test_a_length_past_the_end_is_damage_only_in_a_finished_segment(tmp_path: Path) -> None:
    payloads = _payloads(3)
    _, path = _write_segment(tmp_path, payloads)
    frames = scan_segment(path).frames
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, frames[0].start + 4, 10_000_000)
    path.write_bytes(bytes(data))
    live = scan_segment(path)  # a writer could still be writing that frame: wait for it
    assert live.frames == [] and live.incomplete_tail > 0
    finished = scan_segment(path, finished=True)
    assert [f.payload for f in finished.frames] == payloads[1:]


def test_damage_at_the_end_of_a_live_segment_waits_for_more_frames(tmp_path: Path) -> None:
    payloads = _payloads(2)
    _, path = _write_segment(tmp_path, payloads)
    frames = scan_segment(path).frames
    data = bytearray(path.read_bytes())
    data[frames[1].start : frames[1].start + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    live = scan_segment(path)
    assert [f.payload for f in live.frames] == payloads[:1] and live.end == frames[1].start
    finished = scan_segment(path, finished=True)
    assert finished.end == path.stat().st_size and finished.damaged_bytes == path.stat().st_size - frames[1].start
    with open(path, "ab") as handle:  # the writer appends another frame after the damage
        handle.write(encode_frame(b"[3]"))
    assert [f.payload for f in scan_segment(path, live.end).frames] == [b"[3]"]


def test_absurd_frame_length_is_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "0-1-abc.seg"
    path.write_bytes(SEGMENT_MAGIC + struct.pack("<4sII", FRAME_MAGIC, 0xFFFFFFFF, 0) + b"junk")
    scan = scan_segment(path)
    assert scan.frames == [] and scan.end == len(SEGMENT_MAGIC)
    finished = scan_segment(path, finished=True)
    assert finished.frames == [] and finished.damaged_bytes == 12 + 4


def test_wrong_magic_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "0-1-abc.seg"
    path.write_bytes(b"NOTSPOOL\n" + encode_frame(b"[]"))
    scan = scan_segment(path)
    assert scan.frames == [] and scan.end == 0
    assert scan.problem is not None and "magic" in scan.problem


def test_list_segments_separates_segments_from_other_files(tmp_path: Path) -> None:
    _, seg_a = _write_segment(tmp_path, _payloads(1))
    _, seg_b = _write_segment(tmp_path, _payloads(1))
    (tmp_path / (seg_a.name + ".ack")).write_text("{}")
    (tmp_path / (seg_a.name + ".ack.tmp")).write_text("{}")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "old.seg").write_bytes(b"x")
    segments, others = list_segments(tmp_path)
    assert segments == sorted([seg_a, seg_b])
    assert others == [tmp_path / "notes.txt"]
    assert list_segments(tmp_path / "nope") == ([], [])


# --- SpoolSink ----------------------------------------------------------------------------------------


def test_sink_writes_records_and_flush_fsyncs(tmp_path: Path) -> None:
    written_calls: list[int] = []
    sink = SpoolSink(tmp_path, batch_size=8, interval=0.05, on_written=written_calls.append)
    try:
        for i in range(20):
            sink.submit(_record(i))
        assert sink.flush(5)
        assert sink.written == 20 and sum(written_calls) == 20 and sink.pending() == 0
        records = _records_in(tmp_path)
        assert sorted(r["attributes"]["i"] for r in records) == list(range(20))
        assert records[0]["type"] == "span" and len(records[0]["trace_id"]) == 32 and len(records[0]["span_id"]) == 16
    finally:
        sink.shutdown(5)
    assert not segment_is_live(list_segments(tmp_path)[0][0])  # shutdown releases the segment


class _StalledEvent:
    """Stands in for the sink's wake-up event: the worker sleeps through every wake-up (it falls behind)."""

    def wait(self, timeout: float | None = None) -> bool:
        time.sleep(0.5)
        return False

    def set(self) -> None:
        return None

    def clear(self) -> None:
        return None

    def is_set(self) -> bool:
        return False


def test_sink_overflow_with_stalled_worker_writes_inline(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path, batch_size=16, max_pending=128, interval=0.01)
    sink._wake = _StalledEvent()  # type: ignore[assignment]
    time.sleep(0.05)  # the worker is now asleep on the stalled event
    real_append = sink.spool.append
    writer_threads: set[str] = set()

    def recording_append(payload: bytes) -> None:
        writer_threads.add(threading.current_thread().name)
        real_append(payload)

    sink.spool.append = recording_append  # type: ignore[method-assign]
    total, peak = 3000, 0
    try:
        for i in range(total):
            sink.submit(_record(i))
            peak = max(peak, sink.pending())
        assert peak <= sink.max_pending + sink.batch_size
        assert threading.current_thread().name in writer_threads  # the submitting thread wrote inline
        assert sink.written + sink.pending() == total
        assert sink.flush(10)
        assert sink.written == total and sink.dropped == 0 and sink.failed_writes == 0
    finally:
        sink.shutdown(5)
    assert sorted(r["attributes"]["i"] for r in _records_in(tmp_path)) == list(range(total))


def test_sink_overflow_with_slow_disk_is_bounded(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path, batch_size=16, max_pending=128, interval=0.05)
    real_append = sink.spool.append

    def slow_append(payload: bytes) -> None:
        time.sleep(0.005)  # every write is slow: the queue fills while the worker writes
        real_append(payload)

    sink.spool.append = slow_append  # type: ignore[method-assign]
    total, peak = 1000, 0
    try:
        for i in range(total):
            sink.submit(_record(i))
            peak = max(peak, sink.pending())
        assert peak <= sink.max_pending + sink.batch_size
        assert sink.flush(10)
        assert sink.written == total and sink.dropped == 0 and sink.failed_writes == 0
    finally:
        sink.shutdown(5)
    assert sorted(r["attributes"]["i"] for r in _records_in(tmp_path)) == list(range(total))


def test_sink_burst_of_200k_records(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path)
    record = _record(0)
    peak = 0
    try:
        for _ in range(200_000):
            sink.submit(record)
            peak = max(peak, sink.pending())
        assert peak <= sink.max_pending + sink.batch_size  # memory stays bounded while the burst outruns the worker
        assert sink.flush(30)
        assert sink.written == 200_000 and sink.dropped == 0 and sink.pending() == 0
    finally:
        sink.shutdown(10)
    assert len(_records_in(tmp_path)) == 200_000


def test_sink_keeps_records_while_spool_unwritable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = tmp_path / "spool"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    sink = SpoolSink(good, batch_size=10, max_pending=100, interval=0.05)
    sink.spool.directory = blocker / "spool"  # its parent is a regular file: mkdir fails
    caplog.set_level(logging.WARNING, logger="tracehouse")
    try:
        for i in range(60):
            sink.submit(_record(i))
        time.sleep(0.2)  # the worker tries and fails
        with sink._write_lock:
            assert sink.pending() == 60 and sink.dropped == 0
        assert sink.failed_writes >= 1
        assert not sink.flush(1)
        for i in range(60, 150):
            sink.submit(_record(i))
            assert sink.pending() <= sink.max_pending + sink.batch_size
        assert not sink.flush(1)
        with sink._write_lock:
            kept = sink.pending()
            # memory stays bounded: the oldest batch is shed whenever max_pending is reached
            assert sink.max_pending - sink.batch_size <= kept <= sink.max_pending
            assert sink.dropped == 150 - kept  # only the excess was dropped, and counted
        assert sink.written == 0
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and "dropped" in r.getMessage()]
        assert errors, "dropping spans must be logged as an error"
        assert any("could not write" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

        sink.spool.directory = good  # the disk is back
        assert sink.flush(5)
        assert sink.written == kept and sink.pending() == 0 and sink.dropped == 150 - kept
    finally:
        sink.shutdown(5)
    assert sorted(r["attributes"]["i"] for r in _records_in(good)) == list(range(150 - kept, 150))  # the newest kept


def test_partial_write_failure_does_not_corrupt_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write_all = _spool._write_all
    calls = {"n": 0}

    def disk_full_once(fd: int, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # magic, frame 1, then half of frame 2 before the disk fills
            real_write_all(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(_spool, "_write_all", disk_full_once)
    sink = SpoolSink(tmp_path, batch_size=10, interval=3600)
    try:
        for i in range(30):
            sink.submit(_record(i))
            if i % 10 == 9:
                sink.flush(1)
        assert sink.flush(1)
        assert sink.written == 30 and sink.failed_writes == 1 and sink.dropped == 0
    finally:
        sink.shutdown(5)
    records = []
    for segment in list_segments(tmp_path)[0]:
        scan = scan_segment(segment)
        assert scan.problem is None and scan.skipped_frames == 0
        records.extend(r for f in scan.frames for r in orjson.loads(f.payload))
    assert sorted(r["attributes"]["i"] for r in records) == list(range(30))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_unencodable_record_does_not_lose_its_batch(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path, batch_size=10, interval=0.05)
    bad = _record(5)._replace(attributes={"i": 5, "huge": 2**70})
    try:
        for i in range(10):
            sink.submit(bad if i == 5 else _record(i))
        time.sleep(0.3)  # the worker writes the batch
        assert sink._thread.is_alive()  # the worker outlives a bad record
        assert sink.flush(5)
    finally:
        sink.shutdown(5)
    assert sorted(r["attributes"]["i"] for r in _records_in(tmp_path)) == list(range(10))


def test_frame_records_are_counted_once_and_carried_to_the_joined_body() -> None:
    payload = orjson.dumps([{"type": "span", "name": "a"}, {"type": "span", "name": "b"}])
    frame = Frame(0, len(payload), payload)
    assert frame.records == 2
    frame.payload = b"[]"  # a cached count: reading it again does not scan the payload again
    assert frame.records == 2
    joined = join_json_arrays([payload, payload], rows=4)
    assert joined is not None and joined.rows == 4 and bytes(joined).count(b'"type":') == 4
    counted = join_json_arrays([payload])
    assert counted is not None and counted.rows == 2
