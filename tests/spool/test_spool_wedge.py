"""Edges that used to wedge the spool: huge frames, damaged headers, an unbounded spool, a full
disk, a SIGTERM between a pop and a write, and what the store refuses."""

from __future__ import annotations

import logging
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import reconfigure

import tracehouse as th
from tracehouse._deferred import critical, raise_or_defer
from tracehouse.collector.ingest.frames import encode_frames, shrink_record
from tracehouse.collector.ingest.quarantine import requeue_quarantine
from tracehouse.collector.ingest.spool import (
    HEADER_SIZE,
    WRITE_FRAME_BYTES,
    SpoolWriter,
    list_segments,
    scan_segment,
)
from tracehouse.collector.ingest.spool_ingest import QUARANTINE, SpoolIngester
from tracehouse.collector.ingest.wal import CollectorWal
from tracehouse.exporters._sink import SpoolSink
from tracehouse.reads.reading import get_store
from tracehouse.spans.runtime import runtime

_ids = iter(range(1, 10**9))


def _span(name: str, **attributes: Any) -> dict[str, Any]:
    n = next(_ids)
    now = time.time_ns()
    return {
        "type": "span", "project": "test", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
        "parent_span_id": "", "start_ns": now, "end_ns": now + 1000, "status": "ok", "status_message": "",
        "attributes": attributes, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def _count(where: str = "1") -> int:
    _, rows = get_store().query_rows(f"SELECT count() FROM spans WHERE {where}")
    return int(rows[0][0])


def _frames(directory: Path) -> list[bytes]:
    return [frame.payload for segment in list_segments(directory)[0] for frame in scan_segment(segment).frames]


# -- frames bounded in bytes ----------------------------------------------------------------------


def test_a_batch_of_large_spans_is_written_as_frames_under_the_bound(th_env: th.Settings) -> None:
    text = "x" * th_env.max_payload_bytes  # each input at the capture limit (64 KiB)
    for i in range(600):  # one sink batch of ~40 MB
        with th.span("big", input=f"{i}:{text}"):
            pass
    th.flush()
    frames = _frames(th_env.spool_dir)
    assert len(frames) > 1 and max(len(f) for f in frames) <= WRITE_FRAME_BYTES
    assert sum(len(orjson.loads(f)) for f in frames) == 600
    assert th.query("SELECT count() AS n FROM spans WHERE name = 'big'")["n"][0] == 600


def test_a_record_over_the_frame_bound_on_its_own_is_stored_shortened(th_env: th.Settings) -> None:
    huge = "y" * (3 * WRITE_FRAME_BYTES)  # an attribute no capture limit applies to
    with th.span("huge") as span:
        span.set_attribute("blob", huge)
    th.flush()
    frames = _frames(th_env.spool_dir)
    assert max(len(f) for f in frames) <= WRITE_FRAME_BYTES
    stored = th.query("SELECT attributes['blob'] AS blob FROM spans WHERE name = 'huge'")["blob"][0]
    assert stored.startswith("yyyy") and "cut by tracehouse" in stored and len(stored) < WRITE_FRAME_BYTES


def test_frames_hold_the_records_in_order_and_a_shrunk_record_keeps_its_identity() -> None:
    records = [_span(f"s{i}", text="z" * 50_000) for i in range(40)]
    frames = encode_frames(records, orjson.dumps, limit=300_000)
    assert len(frames) > 1 and all(len(payload) <= 300_000 for payload, _ in frames)
    back = [r for payload, _ in frames for r in orjson.loads(payload)]
    assert back == records and sum(count for _, count in frames) == 40
    one = _span("alone", text="q" * 1_000_000)
    shrunk = orjson.loads(shrink_record(one, 10_000))
    assert len(orjson.dumps(shrunk)) <= 10_000
    assert (shrunk["span_id"], shrunk["trace_id"], shrunk["name"]) == (one["span_id"], one["trace_id"], "alone")


def test_the_collector_wal_writes_bounded_frames(tmp_path: Path) -> None:
    wal = CollectorWal(tmp_path / "wal")
    records = [_span("wal", text="w" * 65_536) for _ in range(300)]  # ~20 MB in one request
    wal.append(records)
    wal.close()
    frames = _frames(tmp_path / "wal")
    assert len(frames) >= 3 and max(len(f) for f in frames) <= WRITE_FRAME_BYTES
    assert [r["span_id"] for f in frames for r in orjson.loads(f)] == [r["span_id"] for r in records]


# -- damage: resync, quarantine, sync --quarantine ------------------------------------------------


def _segment_with_damaged_second_frame(directory: Path, names: list[str]) -> Path:
    writer = SpoolWriter(directory)
    for name in names:
        writer.append(orjson.dumps([_span(name)]))
    assert writer.path is not None
    segment = writer.path
    writer.close()
    frames = scan_segment(segment).frames
    data = bytearray(segment.read_bytes())
    data[frames[1].start : frames[1].start + HEADER_SIZE] = b"\x00" * HEADER_SIZE
    segment.write_bytes(bytes(data))
    return segment


def test_frames_after_a_damaged_header_are_stored_and_the_segment_is_kept(th_env: th.Settings) -> None:
    spool = th_env.spool_dir
    segment = _segment_with_damaged_second_frame(spool, ["first", "lost", "third", "fourth"])
    report = SpoolIngester(get_store()).ingest(spool)
    assert report.rows == 3 and report.damaged_bytes > 0
    assert _count("name IN ('first', 'third', 'fourth')") == 3 and _count("name = 'lost'") == 0
    kept = spool / QUARANTINE / segment.name
    assert kept.exists() and not segment.exists()
    again = th.sync(quarantine=True)  # read to its end already: kept for inspection, nothing doubled
    assert again.requeued == 0 and kept.exists()
    assert _count() == 3


def test_sync_quarantine_reads_again_what_an_older_version_set_aside(th_env: th.Settings) -> None:
    """Before resync, a damaged header quarantined the whole segment, good frames after it included."""
    spool = th_env.spool_dir
    segment = _segment_with_damaged_second_frame(spool, ["a", "lost", "b", "c"])
    (spool / QUARANTINE).mkdir()
    segment.rename(spool / QUARANTINE / segment.name)  # as the old reader left it: no ack, unread
    report = th.sync(quarantine=True)
    assert report.requeued == 1 and report.rows == 3
    assert _count("name IN ('a', 'b', 'c')") == 3
    assert requeue_quarantine(spool).requeued == []  # now read to its end


def test_the_cli_syncs_the_quarantine_and_says_how_many(th_env: th.Settings, tmp_path: Path) -> None:
    from tracehouse.cli.main import main

    spool = th_env.spool_dir
    segment = _segment_with_damaged_second_frame(spool, ["x", "lost", "y"])
    (spool / QUARANTINE).mkdir()
    segment.rename(spool / QUARANTINE / segment.name)
    assert main(["sync", "--quarantine", "--json"]) == 0
    assert _count("name IN ('x', 'y')") == 2


# -- the spool's size cap ---------------------------------------------------------------------------


def test_past_max_spool_bytes_records_are_counted_warned_once_and_writing_resumes(
    th_env: th.Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # 220KB: six batches of twenty spans fit with room for one more span (the writer's own segment stays)
    settings = reconfigure(th_env, max_spool_bytes="220KB")
    caplog.set_level(logging.WARNING, logger="tracehouse")
    for _ in range(40):
        for _ in range(20):
            with th.span("capped", input="c" * 1000):
                pass
        th.flush()
    stats = th.stats()
    assert stats["not_written_over_cap"] > 0 and stats["written"] + stats["not_written_over_cap"] == 800
    assert stats["max_spool_bytes"] == 220_000 and stats["spool_bytes"] <= 220_000
    warnings = [r for r in caplog.records if "max_spool_bytes" in r.getMessage()]
    assert len(warnings) == 1  # once per interval, not once per batch
    written = stats["written"]
    th.sync()  # the store takes what waits: the spool empties
    time.sleep(0.3)  # a full spool is measured again at most every 0.2 s
    with th.span("after-room"):
        pass
    th.flush()
    assert th.stats()["written"] == written + 1
    assert th.query("SELECT count() AS n FROM spans WHERE name = 'after-room'")["n"][0] == 1
    assert settings.max_spool_bytes == 220_000


def test_max_spool_bytes_takes_units_and_refuses_nonsense(th_env: th.Settings) -> None:
    assert reconfigure(th_env, max_spool_bytes="1GiB").max_spool_bytes == 2**30
    assert reconfigure(th_env, max_spool_bytes=0).max_spool_bytes == 0
    with pytest.raises(th.ConfigError, match="max_spool_bytes"):
        reconfigure(th_env, max_spool_bytes="lots")
    with pytest.raises(th.ConfigError, match="max_spool_bytes"):
        reconfigure(th_env, max_spool_bytes=-5)


# -- durability of names, signals between a pop and a write ---------------------------------------


def test_a_new_segment_name_is_fsynced_in_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced_dirs: list[int] = []
    real_fsync = os.fsync

    def watching_fsync(fd: int) -> None:  # the real fsync, noting which calls were on directories
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_dirs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    writer = SpoolWriter(tmp_path / "spool")
    writer.append(b"[]")
    writer.close()
    assert synced_dirs, "creating and renaming a segment must fsync its directory"


def test_a_raising_signal_handler_waits_for_the_critical_section() -> None:
    class Stopped(Exception):
        pass

    previous = signal.signal(signal.SIGUSR1, lambda *_: raise_or_defer(Stopped))
    reached_end = False
    try:
        with pytest.raises(Stopped), critical:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)  # the handler runs here, and must not raise yet
            reached_end = True
        assert reached_end
        with pytest.raises(Stopped):  # outside a section it raises at once
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_during_a_drain_loses_no_record(tmp_path: Path) -> None:
    class Stopped(Exception):
        pass

    sink = SpoolSink(tmp_path / "spool", batch_size=10, interval=3600)
    for i in range(30):
        sink.submit(_span(f"r{i}"))
    real_write = sink._write

    def write_then_signal(records: list[Any]) -> bool:
        done = real_write(records)
        os.kill(os.getpid(), signal.SIGUSR1)  # lands between this batch and the next pop
        return done

    sink._write = write_then_signal  # type: ignore[method-assign]
    previous = signal.signal(signal.SIGUSR1, lambda *_: raise_or_defer(Stopped))
    try:
        with pytest.raises(Stopped):
            sink._drain(None)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        sink._write = real_write  # type: ignore[method-assign]
        sink.shutdown(5)
    assert len([r for f in _frames(tmp_path / "spool") for r in orjson.loads(f)]) == 30


# -- what the store refuses -------------------------------------------------------------------------


def test_spans_over_more_than_100_days_in_one_batch_are_stored(th_env: th.Settings) -> None:
    day = 86_400 * 10**9
    now = time.time_ns()
    records = [{**_span("old"), "start_ns": now - d * day, "end_ns": now - d * day + 1000} for d in range(150)]
    writer = SpoolWriter(th_env.spool_dir)
    writer.append(orjson.dumps(records))
    writer.close()
    report = th.sync()
    assert report.rows == 150 and report.rejected == 0
    days = th.query("SELECT uniqExact(toDate(start_time)) AS d FROM spans WHERE name = 'old'")["d"][0]
    assert days == 150
    assert th.traces(since="200d", limit=500).shape[0] == 150


def test_evaluate_with_tracehouse_disabled_stores_nothing(th_env: th.Settings) -> None:
    from tracehouse import evals

    reconfigure(th_env, disabled=True)
    rows = [{"id": "a", "input": "a", "expected": "A"}, {"id": "b", "input": "b", "expected": "x"}]
    result = evals.evaluate(lambda input: input.upper(), evals.Dataset("off", rows), scorers=[evals.exact_match()],
                            name="off")  # fmt: skip
    assert result.aggregates["exact_match.pass_rate"] == 0.5 and result.dataset_version is None
    runtime.flush(5)
    reconfigure(th_env, disabled=False)
    counts = th.query("SELECT (SELECT count() FROM scores) AS scores, (SELECT count() FROM dataset_rows) AS rows")
    assert counts["scores"][0] == 0 and counts["rows"][0] == 0
