"""Bad input and faults: killed writers, damaged spools, bad settings, hostile payloads, exit without flush."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO

import tracehouse as th
from tracehouse.collector.ingest.spool import HEADER_SIZE, SpoolWriter, encode_frame, list_segments, scan_segment
from tracehouse.collector.ingest.spool_ingest import QUARANTINE, SpoolIngester
from tracehouse.reads.reading import get_store
from tracehouse.spans.runtime import runtime


def _count(where: str, parameters: dict[str, Any] | None = None) -> int:
    _, rows = get_store().query_rows(f"SELECT count() FROM spans WHERE {where}", parameters)
    return int(rows[0][0])


def _span_record(name: str, project: str = "test") -> dict[str, Any]:
    n = uuid.uuid4().int
    now = time.time_ns()
    return {
        "type": "span", "project": project, "name": name, "trace_id": format(n >> 1 | 1 << 120, "032x"),
        "span_id": format(n & (2**64 - 1) | 1 << 60, "016x"), "start_ns": now, "end_ns": now + 1000,
        "status": "ok", "attributes": {}, "resource": {},
    }  # fmt: skip


def _valid_segment(directory: Path, name: str, count: int = 3) -> Path:
    writer = SpoolWriter(directory)
    writer.append(orjson.dumps([_span_record(name) for _ in range(count)]))
    assert writer.path is not None
    writer.close()
    return writer.path


def _spooled(spool: Path) -> list[dict[str, Any]]:
    """Every record in the complete frames of a spool directory, oldest first."""
    return [r for seg in list_segments(spool)[0] for f in scan_segment(seg).frames for r in orjson.loads(f.payload)]


def _popen(code: str, data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TRACEHOUSE_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, cwd=str(REPO),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# --- (1) a writer killed with SIGKILL after a flush ------------------------------------------------------

_KEEPS_TRACING = """
import sys
import time
import tracehouse as th
th.configure(project=sys.argv[1])
n = int(sys.argv[2])
for i in range(n):
    with th.span("before", attributes={"i": i}):
        pass
assert th.flush(10)
print("FLUSHED", n, flush=True)
while True:
    with th.span("after"):
        time.sleep(0.0002)
"""


def test_flushed_spans_survive_sigkill(th_env: th.Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project, n = f"killed-{uuid.uuid4().hex[:8]}", 5000
    data_dir = tmp_path / "writer"
    proc = _popen(_KEEPS_TRACING, data_dir, project, str(n))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        time.sleep(0.6)  # it keeps tracing; the worker keeps appending frames
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=10)
    assert line == f"FLUSHED {n}", stderr
    assert proc.returncode == -signal.SIGKILL
    spool = data_dir / "spool"
    segments, _ = list_segments(spool)
    assert segments
    # make sure there is a torn tail, as when the kill lands in the middle of a write
    frame = encode_frame(orjson.dumps([_span_record("torn", project)]))
    with open(segments[-1], "ab") as handle:
        handle.write(frame[: HEADER_SIZE + 7])

    caplog.set_level(logging.WARNING, logger="tracehouse")
    report = SpoolIngester(get_store()).ingest(spool)  # must not raise
    assert any("torn tail" in p for p in report.problems)
    assert any("torn tail" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    params = {"p": project}
    assert _count("project = {p:String} AND name = 'before'", params) == n
    _, rows = get_store().query_rows(
        "SELECT uniqExact(attributes['i']), min(toUInt32(attributes['i'])), max(toUInt32(attributes['i'])) "
        "FROM spans WHERE project = {p:String} AND name = 'before'", params,
    )  # fmt: skip
    assert rows[0] == (n, 0, n - 1)
    assert _count("project = {p:String} AND name = 'torn'", params) == 0
    assert list_segments(spool)[0] == []  # the dead writer's segments are done with
    after = _count("project = {p:String} AND name = 'after'", params)
    assert th.query("SELECT count() AS n FROM spans WHERE project = {p:String}", params)["n"][0] == n + after


# --- (2) a damaged spool directory ----------------------------------------------------------------------


def test_corrupt_segment_quarantined_foreign_file_left(th_env: th.Settings, caplog: pytest.LogCaptureFixture) -> None:
    spool = th_env.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    garbage = spool / "00000000000000000001-1-deadbeef.seg"
    garbage.write_bytes(b"\x00\xffthis is not a spool segment at all" * 20)
    notes = spool / "notes.txt"
    notes.write_text("my notes")
    valid = _valid_segment(spool, "valid", 3)
    caplog.set_level(logging.WARNING, logger="tracehouse")

    report = th.sync()
    assert _count("name = 'valid'") == 3 and not valid.exists()
    assert not garbage.exists() and (spool / QUARANTINE / garbage.name).read_bytes().startswith(b"\x00\xffthis")
    assert any(garbage.name in p and QUARANTINE in p for p in report.problems)
    assert any(str(notes) in p for p in report.problems)
    assert notes.read_text() == "my notes"  # left alone
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 3  # reads work

    second_valid = _valid_segment(spool, "second", 2)
    caplog.clear()
    second = th.sync()
    assert _count("name = 'second'") == 2 and not second_valid.exists()
    assert not any(garbage.name in p for p in second.problems)  # the quarantined file is not looked at again
    assert notes.exists()
    assert not any(str(notes) in r.getMessage() for r in caplog.records)  # warned about once, not on every read
    with th.span("still-tracing"):
        pass
    assert th.query("SELECT count() AS n FROM spans WHERE name = 'still-tracing'")["n"][0] == 1


def test_segment_damaged_at_its_last_frame_keeps_frames_before_damage(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    writer = SpoolWriter(spool)
    for _ in range(3):
        writer.append(orjson.dumps([_span_record("midway"), _span_record("midway")]))
    assert writer.path is not None
    segment = writer.path
    writer.close()
    frames = scan_segment(segment).frames
    data = bytearray(segment.read_bytes())
    data[frames[2].start : frames[2].start + HEADER_SIZE] = b"\xee" * HEADER_SIZE
    segment.write_bytes(bytes(data))
    report = SpoolIngester(get_store()).ingest(spool)
    assert report.rows == 4 and any("damaged byte(s) at byte" in p for p in report.problems)
    assert report.damaged_bytes == len(data) - frames[2].start
    assert (spool / QUARANTINE / segment.name).exists() and not segment.exists()
    SpoolIngester(get_store()).ingest(spool)
    assert _count("name = 'midway'") == 4


def test_damaged_live_segment_is_not_quarantined(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    writer = SpoolWriter(spool)
    writer.append(orjson.dumps([_span_record("live-damaged")]))
    assert writer.path is not None
    with open(writer.path, "ab") as handle:
        handle.write(b"\x01" * 40)
    report = SpoolIngester(get_store()).ingest(spool)
    assert report.rows == 1
    assert writer.path.exists() and not (spool / QUARANTINE).exists()  # a live writer's segment is left alone
    writer.close()
    report = SpoolIngester(get_store()).ingest(spool)
    assert (spool / QUARANTINE / writer.path.name).exists()
    assert _count("name = 'live-damaged'") == 1


# --- (3) bad settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("project", "bad name!"),
        ("max_payload_bytes", "lots"),
        ("max_payload_bytes", 10),
        ("endpoint", "ftp://x"),
        ("endpoint", "http://"),
        ("data_dir", "<a regular file>"),
        pytest.param("data_dir", "spool\0dir"),
        ("disabled", "maybe"),
        ("redact", 42),
        ("database", "bad-name"),
        ("flush_timeout", 0),
        ("clickhouse_url", "mysql://host"),
        ("capture_content", "sometimes"),
    ],
)
def test_bad_configure_value_raises_and_keeps_settings(
    th_env: th.Settings, tmp_path: Path, option: str, value: Any
) -> None:
    if value == "<a regular file>":
        value = tmp_path / "a-file"
        value.write_text("not a directory")
    with th.span("before"):
        pass
    with pytest.raises(th.ConfigError) as info:
        th.configure(**{option: value})
    assert info.value.option == option and option in str(info.value)
    assert isinstance(info.value, ValueError)
    assert th.get_settings() is th_env  # the previous settings stay in force
    with th.span("after"):
        pass
    assert th.flush(5)
    assert runtime.sink().spool.path is not None and runtime.sink().spool.path.parent == th_env.spool_dir
    assert [(r["name"], r["project"]) for r in _spooled(th_env.spool_dir)] == [("before", "test"), ("after", "test")]


def test_spans_reach_the_store_after_bad_configure_calls(th_env: th.Settings, tmp_path: Path) -> None:
    regular_file = tmp_path / "a-file"
    regular_file.write_text("x")
    for bad in ({"project": "bad name!"}, {"data_dir": regular_file}, {"redact": 42}):
        with th.span("between"):
            pass
        with pytest.raises(th.ConfigError):
            th.configure(**bad)
    with th.span("last"):
        pass
    df = th.query("SELECT name, project FROM spans ORDER BY start_time")
    assert list(df["name"]) == ["between", "between", "between", "last"] and set(df["project"]) == {"test"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRACEHOUSE_MAX_PAYLOAD_BYTES", "abc"),
        ("TRACEHOUSE_DISABLED", "maybe"),
        ("TRACEHOUSE_ENDPOINT", "ftp://x"),
        ("TRACEHOUSE_PROJECT", "bad name!"),
        ("TRACEHOUSE_FLUSH_TIMEOUT", "soon"),
    ],
)
def test_bad_environment_value_names_the_variable(
    th_env: th.Settings, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(th.ConfigError) as info:
        th.configure()
    assert info.value.option == variable and variable in str(info.value)
    assert th.get_settings() is th_env
    with th.span("still"):
        pass
    assert th.flush(5)
    assert [r["name"] for r in _spooled(th_env.spool_dir)] == ["still"]


def test_argument_overrides_bad_environment_value(th_env: th.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEHOUSE_MAX_PAYLOAD_BYTES", "abc")
    settings = th.configure(
        project="test", data_dir=str(th_env.data_dir), clickhouse_url=th_env.clickhouse_url, database=th_env.database,
        max_payload_bytes=1000,
    )  # fmt: skip
    assert settings.max_payload_bytes == 1000


# --- (4) hostile functions and payloads -----------------------------------------------------------------


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class _BadDump:
    def model_dump(self, mode: str = "python") -> Any:
        raise RuntimeError("cannot dump")


class _Boom(Exception):
    def __str__(self) -> str:
        raise RuntimeError("unprintable exception")


def test_raising_function_behaves_as_untraced(th_env: th.Settings) -> None:
    error = KeyError("missing")

    @th.trace
    def fails(x: int) -> int:
        raise error

    @th.trace
    def fails_unprintably() -> None:
        raise _Boom()

    with pytest.raises(KeyError) as info:
        fails(1)
    assert info.value is error
    assert info.traceback[-1].name == "fails"  # the user's frame is where it was raised
    with pytest.raises(_Boom):
        fails_unprintably()
    df = th.query("SELECT name, status, status_message FROM spans ORDER BY start_time")
    assert list(df["status"]) == ["error", "error"]
    assert "KeyError" in df["status_message"][0] and "_Boom" in df["status_message"][1]


def test_unserialisable_values_behave_as_untraced(th_env: th.Settings) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(500):
        cursor["d"] = {}
        cursor = cursor["d"]
    values = [_Unprintable(), cyclic, _BadDump(), {(1, 2): _Unprintable(), "gen": (i for i in range(3))}, nested,
              {1, 2, 3}, b"\xff\xfe binary", float("nan")]  # fmt: skip

    @th.trace
    def identity(value: Any) -> Any:
        return value

    for value in values:
        assert identity(value) is value
    with th.span("block", input=_Unprintable()) as s:
        s.set_output(cyclic)
        s.set_attribute("weird", _Unprintable())
        s.set_context([None, 3, {"text": "doc"}])
    df = th.query("SELECT name, status, input, output FROM spans")
    assert len(df) == len(values) + 1
    assert set(df["status"]) == {"ok"}
    assert all(isinstance(text, str) for text in df["input"])


def test_context_document_that_cannot_be_printed(th_env: th.Settings) -> None:
    with th.span("retrieve", kind="retriever") as s:
        s.set_context(["doc one", _Unprintable()])
    context = th.query("SELECT context FROM spans")["context"][0]
    assert "doc one" in context


def test_huge_input_is_truncated_and_function_unaffected(th_env: th.Settings) -> None:
    limit = th_env.max_payload_bytes
    big_text = "é" * (3 * 1024 * 1024)  # 6 MB of UTF-8
    big_list = list(range(300_000))

    @th.trace
    def size(value: Any) -> int:
        return len(value)

    assert size(big_text) == len(big_text)  # how long it takes: bench/trace_overhead.py's payloads part
    assert size(big_list) == len(big_list)
    df = th.query("SELECT input, input_size, output FROM spans ORDER BY start_time")
    text_row, list_row = df.to_dict("records")
    assert text_row["input_size"] > len(big_text.encode())  # the JSON of {"value": ...}: the original size is kept
    assert 0 < len(text_row["input"].encode()) <= limit
    assert list_row["input_size"] > limit and 0 < len(list_row["input"].encode()) <= limit
    assert text_row["output"] == str(len(big_text))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_huge_integer_attribute_does_not_lose_spans(th_env: th.Settings) -> None:
    with th.span("neighbour"):
        pass
    with th.span("big-int", attributes={"n": 2**70}) as s:
        s.set_attribute("m", -(2**80))
    with th.span("neighbour"):
        pass
    df = th.query("SELECT name, attributes FROM spans ORDER BY start_time")
    assert list(df["name"]) == ["neighbour", "big-int", "neighbour"]
    assert df["attributes"][1]["n"] == str(2**70)


# --- (5) exit without flush -----------------------------------------------------------------------------

_EXITS_WITHOUT_FLUSH = """
import sys
import tracehouse as th
th.configure(project=sys.argv[1])
for i in range(10_000):
    with th.span("work", attributes={"i": i}):
        pass
print("TRACED", flush=True)
"""


def test_atexit_flushes_everything(th_env: th.Settings, tmp_path: Path) -> None:
    project = f"atexit-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "writer"
    proc = _popen(_EXITS_WITHOUT_FLUSH, data_dir, project)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    _, stderr = proc.communicate(timeout=30)  # a flush that hangs the exit fails here
    assert line == "TRACED", stderr
    assert proc.returncode == 0, stderr
    spool = data_dir / "spool"
    report = SpoolIngester(get_store()).ingest(spool)
    assert report.problems == [] and report.rejected == 0
    assert _count("project = {p:String} AND name = 'work'", {"p": project}) == 10_000
    _, rows = get_store().query_rows(
        "SELECT uniqExact(attributes['i']) FROM spans WHERE project = {p:String}", {"p": project}
    )
    assert rows[0][0] == 10_000
    assert list_segments(spool)[0] == []  # closed at exit, so fully ingested and deleted
