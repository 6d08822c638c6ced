"""Spool -> store ingestion (exactly once), the schema, and the reading API, against the session's chDB."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Optional

import orjson
import pytest

import tracehouse as th
from tracehouse import _semconv as sc
from tracehouse.collector.ingest.spool import HEADER_SIZE, SpoolWriter, encode_frame, list_segments, scan_segment
from tracehouse.collector.ingest.spool_ingest import IngestReport, SpoolIngester
from tracehouse.collector.store.migrations import MIGRATIONS
from tracehouse.collector.store.store import Store
from tracehouse.exporters._records import STATUS_ERROR, STATUS_OK, SpanRecord
from tracehouse.reads.reading import get_store
from tracehouse.spans.runtime import runtime

_ids = iter(range(1, 10**9))


def _count(sql_where: str = "1", parameters: Optional[dict[str, Any]] = None) -> int:
    """Count rows of `spans` straight from the store (no ingest first)."""
    _, rows = get_store().query_rows(f"SELECT count() FROM spans WHERE {sql_where}", parameters)
    return int(rows[0][0])


def _span_dict(name: str = "raw", **overrides: Any) -> dict[str, Any]:
    n = next(_ids)
    now = time.time_ns()
    record = {
        "type": "span", "project": "test", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
        "parent_span_id": "", "start_ns": now, "end_ns": now + 1_000_000, "status": "ok", "status_message": "",
        "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "raw", "resource": {"service.name": "raw"},
    }  # fmt: skip
    record.update(overrides)
    return record


def _frame_payload(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records).encode()  # json, not orjson: lets a test write values orjson refuses


def _ingest(directory: Path) -> IngestReport:
    return SpoolIngester(get_store()).ingest(directory)


def _ack(segment: Path) -> dict[str, Any]:
    return orjson.loads(segment.with_name(segment.name + ".ack").read_bytes())


def _write_ack(segment: Path, committed: int, inflight: Optional[tuple[int, int]]) -> None:
    segment.with_name(segment.name + ".ack").write_bytes(
        orjson.dumps({"committed": committed, "inflight": list(inflight) if inflight else None})
    )


# --- what a traced program stores ---------------------------------------------------------------------


def test_traced_spans_land_with_their_columns(th_env: th.Settings) -> None:
    @th.trace(kind="chain")
    def rag(question: str) -> str:
        with th.span("retrieve", kind="retriever", input=question) as retrieve:
            retrieve.set_context(["doc one", {"text": "doc two", "id": "d2"}])
            retrieve.set_output(["doc one"])
        with th.span("generate", kind="llm", input="prompt text") as generate:
            generate.set_usage(model="gpt-4o", input_tokens=1000, output_tokens=500)
            generate.add_event("first_token", {"n": 1})
            time.sleep(0.02)
            generate.set_output("an answer")
        return "an answer"

    assert rag("what is tracehouse?") == "an answer"
    df = th.query(
        "SELECT *, (toUnixTimestamp64Nano(end_time) - toUnixTimestamp64Nano(start_time)) / 1e6 AS ns_ms "
        "FROM spans ORDER BY start_time"
    )
    assert [name.rsplit(".", 1)[-1] for name in df["name"]] == ["rag", "retrieve", "generate"]
    rows = {row["name"].rsplit(".", 1)[-1]: row for row in df.to_dict("records")}
    root, retrieve, generate = rows["rag"], rows["retrieve"], rows["generate"]
    assert set(df["project"]) == {"test"} and set(df["service_name"]) == {"tests"}
    assert set(df["status"]) == {"ok"} and list(df["span_kind"]) == ["INTERNAL", "INTERNAL", "CLIENT"]
    assert (root["kind"], retrieve["kind"], generate["kind"]) == ("chain", "retriever", "llm")
    assert len({root["trace_id"], retrieve["trace_id"], generate["trace_id"]}) == 1
    assert root["parent_span_id"] == "" and retrieve["parent_span_id"] == generate["parent_span_id"] == root["span_id"]
    assert json.loads(root["input"]) == {"question": "what is tracehouse?"} and root["output"] == "an answer"
    assert retrieve["input"] == "what is tracehouse?" and json.loads(retrieve["output"]) == ["doc one"]
    assert json.loads(retrieve["context"]) == [{"text": "doc one"}, {"text": "doc two", "id": "d2"}]
    assert generate["input"] == "prompt text" and generate["output"] == "an answer"
    assert generate["model"] == "gpt-4o"
    assert (generate["input_tokens"], generate["output_tokens"], generate["total_tokens"]) == (1000, 500, 1500)
    assert generate["cost_usd"] == pytest.approx(1000 * 2.5e-6 + 500 * 10e-6)
    assert list(generate["event_names"]) == ["first_token"] and list(root["event_names"]) == []
    assert generate["duration_ms"] >= 20
    for row in rows.values():
        assert row["duration_ms"] == pytest.approx(row["ns_ms"], abs=1e-6)
        assert row["duration_ms"] >= 0
    assert root["duration_ms"] >= generate["duration_ms"]


def test_failed_span_is_stored_with_error_status(th_env: th.Settings) -> None:
    @th.trace
    def explode() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        explode()
    df = th.query("SELECT status, status_message, event_names, event_attributes FROM spans")
    assert len(df) == 1
    row = df.iloc[0]
    assert row["status"] == "error" and row["status_message"] == "ValueError: boom"
    assert list(row["event_names"]) == ["exception"]
    assert row["event_attributes"][0]["exception.type"] == "ValueError"


def test_record_values_map_to_columns(th_env: th.Settings) -> None:
    start = time.time_ns() - 5_000_000_123
    runtime.submit(SpanRecord(
        th_env.project, "exact", 0xABC, 0xDEF, 0x123, start, start + 7_654_321, STATUS_ERROR, "bad thing",
        {sc.KIND: "tool", sc.SESSION_ID: "s1", sc.USER_ID: "u1", sc.RUN_ID: "r1", "custom": 3},
        [("e1", start + 10, {"k": "v"})], "CLIENT", "scope-x", {"service.name": "svc-x", "host": "h"},
    ))  # fmt: skip
    df = th.query(
        "SELECT *, toUnixTimestamp64Nano(start_time) AS s_ns, toUnixTimestamp64Nano(end_time) AS e_ns, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), event_times) AS ev_ns FROM spans"
    )
    row = df.iloc[0]
    assert row["trace_id"] == format(0xABC, "032x") and row["span_id"] == format(0xDEF, "016x")
    assert row["parent_span_id"] == format(0x123, "016x")
    assert (row["s_ns"], row["e_ns"]) == (start, start + 7_654_321)
    assert row["duration_ms"] == pytest.approx(7.654321)
    assert (row["kind"], row["span_kind"]) == ("tool", "CLIENT")
    assert (row["scope_name"], row["service_name"]) == ("scope-x", "svc-x")
    assert (row["status"], row["status_message"]) == ("error", "bad thing")
    assert (row["session_id"], row["user_id"], row["run_id"]) == ("s1", "u1", "r1")
    assert row["attributes"]["custom"] == "3"
    assert sc.KIND not in row["attributes"] and sc.RUN_ID not in row["attributes"]  # they have their own columns
    assert row["resource_attributes"] == {"service.name": "svc-x", "host": "h"}
    assert list(row["event_names"]) == ["e1"] and list(row["ev_ns"]) == [start + 10]
    assert row["event_attributes"] == [{"k": "v"}]


# --- exactly once ---------------------------------------------------------------------------------------


def test_ingesting_again_does_not_duplicate(th_env: th.Settings) -> None:
    for i in range(5):
        with th.span(f"s{i}"):
            pass
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 5
    for _ in range(2):
        _ingest(th_env.spool_dir)
    th.sync()
    assert _count() == 5
    with th.span("s5"):
        pass
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 6


def _closed_segment(directory: Path, frames: list[list[dict[str, Any]]]) -> Path:
    writer = SpoolWriter(directory)
    for records in frames:
        writer.append(_frame_payload(records))
    assert writer.path is not None
    writer.close()
    return writer.path


def test_reader_died_after_insert_does_not_duplicate(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    segment = _closed_segment(spool, [[_span_dict("died-after") for _ in range(2)] for _ in range(3)])
    content, size = segment.read_bytes(), segment.stat().st_size
    report = _ingest(spool)
    assert report.rows == 6 and report.segments_done == 1 and report.problems == []
    assert not segment.exists() and _count("name = 'died-after'") == 6
    # The reader's insert went through but it died before recording the commit: the intent is still there.
    segment.write_bytes(content)
    _write_ack(segment, 0, (0, size))
    _ingest(spool)
    assert _count("name = 'died-after'") == 6
    assert not segment.exists() and not segment.with_name(segment.name + ".ack").exists()


def test_pipelined_reader_died_with_two_ranges_in_flight(th_env: th.Settings, tmp_path: Path) -> None:
    """A reader sending two ranges at once records both before sending; a redo resends both with
    the same tokens (the destination drops what it already has) and then reads on from their end."""
    spool = tmp_path / "raw"
    segment = _closed_segment(spool, [[_span_dict("pipelined") for _ in range(2)] for _ in range(4)])
    content = segment.read_bytes()
    report = SpoolIngester(get_store(), max_rows_per_insert=4, max_inflight=2).ingest(spool)
    assert report.rows == 8 and report.segments_done == 1 and _count("name = 'pipelined'") == 8
    segment.write_bytes(content)  # as it was when the reader died with both ranges sent, neither committed
    scan = scan_segment(segment, 0)
    middle = scan.frames[1].end  # that pass sent frames 0-1 and 2-3 (4 rows each)
    ack_path = segment.with_name(segment.name + ".ack")
    ack_path.write_bytes(orjson.dumps({"committed": 0, "inflight": [[0, middle], [middle, scan.end]]}))
    report = SpoolIngester(get_store(), max_rows_per_insert=4, max_inflight=2).ingest(spool)
    assert report.problems == [] and _count("name = 'pipelined'") == 8
    assert not segment.exists() and not ack_path.exists()


def test_reader_died_after_insert_mid_segment(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    writer = SpoolWriter(spool)
    writer.append(_frame_payload([_span_dict("mid") for _ in range(3)]))
    assert writer.path is not None
    segment = writer.path
    _ingest(spool)
    first_end = _ack(segment)["committed"]
    assert first_end == segment.stat().st_size and _count("name = 'mid'") == 3
    writer.append(_frame_payload([_span_dict("mid") for _ in range(4)]))
    _ingest(spool)
    second_end = _ack(segment)
    assert second_end == {"committed": segment.stat().st_size, "inflight": []}
    assert _count("name = 'mid'") == 7
    _write_ack(segment, first_end, (first_end, second_end["committed"]))  # died before committing the 2nd insert
    _ingest(spool)
    assert _count("name = 'mid'") == 7
    writer.close()
    assert _ingest(spool).segments_done == 1
    assert _count("name = 'mid'") == 7 and not segment.exists()


def test_reader_died_before_insert_rows_appear_once(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    segment = _closed_segment(spool, [[_span_dict("died-before") for _ in range(3)], [_span_dict("died-before")]])
    _write_ack(segment, 0, (0, segment.stat().st_size))  # the intent was written, the insert never ran
    report = _ingest(spool)
    assert report.rows == 4 and report.segments_done == 1
    assert _count("name = 'died-before'") == 4
    _ingest(spool)
    assert _count("name = 'died-before'") == 4


def test_unreadable_ack_reingests_without_duplicates(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    writer = SpoolWriter(spool)
    writer.append(_frame_payload([_span_dict("ack") for _ in range(3)]))
    assert writer.path is not None
    _ingest(spool)
    writer.path.with_name(writer.path.name + ".ack").write_bytes(b"{not json")
    _ingest(spool)
    assert _count("name = 'ack'") == 3
    writer.close()
    _ingest(spool)
    assert _count("name = 'ack'") == 3


def test_small_insert_batches_land_once(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    segment = _closed_segment(spool, [[_span_dict("batched") for _ in range(3)] for _ in range(5)])
    content = segment.read_bytes()
    report = SpoolIngester(get_store(), max_rows_per_insert=4).ingest(spool)
    assert report.rows == 15 and _count("name = 'batched'") == 15
    segment.write_bytes(content)  # a second reader with a lost ack file: every batch is a resend
    SpoolIngester(get_store(), max_rows_per_insert=4).ingest(spool)
    assert _count("name = 'batched'") == 15


def test_concurrent_ingesters_do_not_duplicate(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    for _ in range(4):
        _closed_segment(spool, [[_span_dict("concurrent") for _ in range(50)]])
    store = get_store()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            SpoolIngester(store).ingest(spool)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert _count("name = 'concurrent'") == 200 and list_segments(spool)[0] == []


def test_finished_segments_deleted_live_segment_kept(th_env: th.Settings) -> None:
    spool = th_env.spool_dir
    with th.span("own"):
        pass
    assert th.flush(5)
    own = runtime.sink().spool.path
    assert own is not None and own.exists()

    finished = _closed_segment(spool, [[_span_dict("finished"), _span_dict("finished")]])
    live = SpoolWriter(spool)
    live.append(_frame_payload([_span_dict("live")]))
    live.append(_frame_payload([_span_dict("live")]))
    assert live.path is not None
    third = encode_frame(_frame_payload([_span_dict("live"), _span_dict("live")]))
    with open(live.path, "ab") as handle:  # the writer is in the middle of its third frame
        handle.write(third[: HEADER_SIZE + 10])

    assert th.query("SELECT count() AS n FROM spans WHERE name = 'own'")["n"][0] == 1
    assert _count("name = 'finished'") == 2
    assert _count("name = 'live'") == 2  # only the complete frames of a live segment
    assert not finished.exists() and not finished.with_name(finished.name + ".ack").exists()
    assert own.exists() and live.path.exists() and live.path.with_name(live.path.name + ".ack").exists()

    with open(live.path, "ab") as handle:
        handle.write(third[HEADER_SIZE + 10 :])
    th.sync()
    assert _count("name = 'live'") == 4
    live.close()
    report = th.sync()
    assert report.segments_done == 1 and not live.path.exists()
    assert not live.path.with_name(live.path.name + ".ack").exists()
    assert _count("name = 'live'") == 4 and own.exists()


# --- bad records ----------------------------------------------------------------------------------------


def test_records_with_bad_ids_are_rejected_others_land(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    good = [_span_dict("good"), _span_dict("good")]
    bad = [
        {k: v for k, v in _span_dict("bad").items() if k != "trace_id"},
        _span_dict("bad", trace_id="ABCDEF" + "0" * 26),
        _span_dict("bad", trace_id="0" * 32),
        _span_dict("bad", span_id="123"),
        _span_dict("bad", span_id=None),
        _span_dict("bad", trace_id=12345),
        _span_dict("bad", span_id="zz" * 8),
    ]
    _closed_segment(spool, [[good[0], *bad[:4]], [*bad[4:], good[1]]])
    report = _ingest(spool)
    assert report.rejected == len(bad)
    assert report.rows == 2
    assert any("rejected" in p for p in report.problems)
    assert _count("name = 'good'") == 2 and _count("name = 'bad'") == 0
    assert list_segments(spool)[0] == []  # the segment is done with


def test_malformed_record_fields_are_rejected(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    bad = [
        _span_dict("bad", attributes=[1, 2]),
        _span_dict("bad", resource="service"),
        _span_dict("bad", start_ns="soon"),
        _span_dict("bad", events="many"),
    ]
    _closed_segment(spool, [[_span_dict("good"), *bad, _span_dict("good")]])
    report = _ingest(spool)
    assert report.rejected == len(bad) and report.rows == 2
    assert _count("name = 'good'") == 2 and _count("name = 'bad'") == 0


def test_out_of_range_values_are_rejected_not_fatal(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    records = [
        _span_dict("good"),
        _span_dict("huge-tokens", attributes={sc.INPUT_TOKENS: 2**70}),  # kept, token count unknown
        _span_dict("bad-time", start_ns=10**30, end_ns=10**30),  # beyond DateTime64: rejected
        _span_dict("good"),
    ]
    _closed_segment(spool, [records])
    report = _ingest(spool)
    assert report.rejected == 1 and report.rows == 3
    assert any("bad-time" in p and "out of range" in p for p in report.problems)
    assert _count("name = 'good'") == 2
    assert th.query("SELECT input_tokens FROM spans WHERE name = 'huge-tokens'")["input_tokens"].isna().all()
    assert list_segments(spool)[0] == []


def test_rows_the_store_refuses_are_isolated_kept_in_rejected_and_the_rest_land(
    th_env: th.Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "raw"
    now = time.time_ns()
    metrics = [
        {"type": "metrics", "project": "test", "run_id": "r1", "step": 2**70 if i == 2 else i, "time_ns": now,
         "values": {"loss": float(i)}}
        for i in range(5)
    ]  # fmt: skip
    _closed_segment(spool, [[_span_dict("a"), *metrics, _span_dict("b")]])
    report = _ingest(spool)
    assert report.rejected == 1 and any("step" in p for p in report.problems)
    assert _count() == 2
    stored = th.query("SELECT step FROM metrics WHERE run_id = 'r1' ORDER BY step")["step"].tolist()
    assert stored == [0, 1, 3, 4]  # the refused row isolated by bisection; its neighbours are in
    kept = th.query("SELECT table_name, reason, row FROM rejected")
    assert kept["table_name"].tolist() == ["metrics"] and "step" in kept["reason"][0]
    assert json.loads(kept["row"][0])["step"] == str(2**70)
    assert list_segments(spool)[0] == []  # the range moved on


def test_unknown_record_type_is_skipped_and_reported(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    _closed_segment(spool, [[{"type": "metric", "key": "loss", "value": 1.0}, _span_dict("known"), {"no": "type"}]])
    report = _ingest(spool)
    assert report.rows == 1 and report.rejected == 0
    assert any("unknown type" in p for p in report.problems)
    assert _count("name = 'known'") == 1 and _count() == 1


def test_frame_that_is_not_json_is_skipped(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    writer = SpoolWriter(spool)
    writer.append(_frame_payload([_span_dict("before")]))
    writer.append(b"this is not json")
    writer.append(b'{"type": "span"}')  # JSON, but not an array of records
    writer.append(_frame_payload([_span_dict("after")]))
    writer.close()
    report = _ingest(spool)
    assert report.rows == 2 and report.segments_done == 1
    assert any("not JSON" in p for p in report.problems)
    assert _count("name IN ('before', 'after')") == 2


def test_frame_with_bad_checksum_is_reported_others_land(th_env: th.Settings, tmp_path: Path) -> None:
    spool = tmp_path / "raw"
    segment = _closed_segment(spool, [[_span_dict("crc")], [_span_dict("crc")], [_span_dict("crc")]])
    frames = scan_segment(segment).frames
    data = bytearray(segment.read_bytes())
    data[frames[1].start + HEADER_SIZE + 3] ^= 0x55
    segment.write_bytes(bytes(data))
    report = _ingest(spool)
    assert report.rows == 2 and any("checksum" in p for p in report.problems)
    assert _count("name = 'crc'") == 2 and not segment.exists()


# --- schema ---------------------------------------------------------------------------------------------


def test_migrations_recorded_and_not_reapplied(th_env: th.Settings) -> None:
    names = [name for name, _ in MIGRATIONS]
    df = th.query("SELECT name, applied_at FROM _migrations ORDER BY name")
    assert list(df["name"]) == sorted(names)
    again = Store(th_env.store_url, th_env.database)  # re-opening applies none
    assert again.migrate() == []
    _, rows = again.query_rows("SELECT name, count() FROM _migrations GROUP BY name ORDER BY name")
    assert rows == [(name, 1) for name in sorted(names)]
    _, tables = again.query_rows("SELECT name FROM system.tables WHERE database = {db:String}", {"db": th_env.database})
    assert {"spans", "trace_times", "otel_traces", "runs", "metrics", "scores", "_migrations"} <= {t[0] for t in tables}


def test_otel_traces_view_matches_spans(th_env: th.Settings) -> None:
    with th.span("parent", kind="agent") as parent:
        with th.span("child", kind="llm") as child:
            child.set_usage(model="gpt-4o-mini", input_tokens=3, output_tokens=4)
            child.add_event("tick")
        parent.set_attribute("answer.quality", "good")
    start = time.time_ns()
    runtime.submit(SpanRecord(
        th_env.project, "served", 0x77, 0x78, 0, start, start + 1234, STATUS_ERROR, "nope", {}, None, "SERVER", "x", {},
    ))  # fmt: skip
    otel = th.query(
        "SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, Duration, StatusCode, "
        "StatusMessage, SpanAttributes, `Events.Name`, ResourceAttributes, ScopeName, ScopeVersion "
        "FROM otel_traces ORDER BY Timestamp"
    )
    spans = th.query(
        "SELECT start_time, trace_id, span_id, parent_span_id, name, kind, service_name, model, status, status_code, "
        "toInt64(toUnixTimestamp64Nano(end_time) - toUnixTimestamp64Nano(start_time)) AS ns, event_names "
        "FROM spans ORDER BY start_time"
    )
    assert len(otel) == len(spans) == 3
    for o, s in zip(otel.to_dict("records"), spans.to_dict("records"), strict=True):
        assert o["Timestamp"] == s["start_time"]
        assert (o["TraceId"], o["SpanId"], o["ParentSpanId"]) == (s["trace_id"], s["span_id"], s["parent_span_id"])
        assert o["SpanName"] == s["name"] and o["ServiceName"] == s["service_name"]
        assert o["Duration"] == s["ns"]
        assert o["StatusCode"] == {"error": "Error", "ok": "Ok", "unset": "Unset"}[s["status_code"]]
        assert s["status"] == ("error" if s["status_code"] == "error" else "ok")  # `status` keeps its meaning
        assert o["SpanAttributes"]["tracehouse.project"] == "test"
        assert o["SpanAttributes"]["tracehouse.span.kind"] == s["kind"]
        assert o["SpanAttributes"].get("gen_ai.request.model", "") == s["model"]  # only when there is one
        assert list(o["Events.Name"]) == list(s["event_names"])
    by_name = {o["SpanName"]: o for o in otel.to_dict("records")}
    assert by_name["parent"]["SpanKind"] == "Internal" and by_name["served"]["SpanKind"] == "Server"
    assert by_name["served"]["Duration"] == 1234 and by_name["served"]["StatusMessage"] == "nope"
    assert by_name["child"]["ParentSpanId"] == by_name["parent"]["SpanId"]
    assert by_name["parent"]["SpanAttributes"]["answer.quality"] == "good"
    assert list(by_name["child"]["Events.Name"]) == ["tick"]
    assert by_name["child"]["ResourceAttributes"]["service.name"] == "tests"
    assert by_name["child"]["ScopeName"] == "tracehouse" and by_name["child"]["ScopeVersion"] == th.__version__
    assert by_name["parent"]["StatusCode"] == "Unset" and by_name["served"]["StatusCode"] == "Error"


# --- the reading API --------------------------------------------------------------------------------------

MS = 1_000_000


def _submit(name: str, trace_id: int, span_id: int, parent: int, start: int, duration_ms: float, **kw: Any) -> None:
    attributes = {sc.KIND: kw.pop("kind", "function"), **kw.pop("attributes", {})}
    if "model" in kw:
        attributes[sc.REQUEST_MODEL] = kw.pop("model")
        attributes[sc.INPUT_TOKENS] = kw.pop("input_tokens")
        attributes[sc.OUTPUT_TOKENS] = kw.pop("output_tokens")
    status = kw.pop("status", STATUS_OK)
    assert not kw
    message = "failed" if status == STATUS_ERROR else ""
    runtime.submit(SpanRecord(
        th.get_settings().project, name, trace_id, span_id, parent, start, start + int(duration_ms * MS), status,
        message, attributes, None, "INTERNAL", "tracehouse", {"service.name": "tests"},
    ))  # fmt: skip


@pytest.fixture
def known_spans(th_env: th.Settings) -> dict[str, Any]:
    """Two 'answer' traces (one failed) and 100 'known' spans of 1..100 ms."""
    base = time.time_ns() - 60 * 1_000 * MS
    trace_a, trace_b = 0xA1, 0xB2
    # trace A: answer -> retrieve, generate -> tool_call
    _submit("answer", trace_a, 1, 0, base, 300, kind="chain")
    _submit("generate", trace_a, 3, 1, base + 70 * MS, 200, kind="llm", model="gpt-4o",
            input_tokens=1000, output_tokens=500)  # fmt: skip
    _submit("retrieve", trace_a, 2, 1, base + 10 * MS, 50, kind="retriever")
    _submit("tool_call", trace_a, 4, 3, base + 100 * MS, 20, kind="tool")
    # trace B: answer (failed) -> generate
    _submit("answer", trace_b, 5, 0, base + 1000 * MS, 100, kind="chain", status=STATUS_ERROR)
    _submit("generate", trace_b, 6, 5, base + 1010 * MS, 80, kind="llm", model="claude-3-haiku", input_tokens=100,
            output_tokens=10, status=STATUS_ERROR)  # fmt: skip
    for i in range(1, 101):
        _submit("known", 0x1000 + i, 0x1000 + i, 0, base + 2000 * MS + i * MS, i)
    return {"a": format(trace_a, "032x"), "b": format(trace_b, "032x")}


def test_traces_summarises_each_trace(known_spans: dict[str, Any]) -> None:
    df = th.traces(limit=500)
    assert len(df) == 102
    assert df["start_time"].is_monotonic_decreasing  # newest first
    a = df[df["trace_id"] == known_spans["a"]].iloc[0]
    assert (a["root_name"], a["spans"], a["status"]) == ("answer", 4, "ok")
    assert a["duration_ms"] == pytest.approx(300)
    assert a["total_tokens"] == 1500 and a["cost_usd"] == pytest.approx(0.0075)
    b = df[df["trace_id"] == known_spans["b"]].iloc[0]
    assert (b["root_name"], b["spans"], b["status"]) == ("answer", 2, "error")
    assert len(th.traces(limit=5)) == 5


def test_traces_filters(known_spans: dict[str, Any]) -> None:
    failed = th.traces(status="error")
    assert list(failed["trace_id"]) == [known_spans["b"]]
    named = th.traces(name="answer")
    assert sorted(named["trace_id"]) == sorted([known_spans["a"], known_spans["b"]])
    assert list(th.traces(name="tool_call")["trace_id"]) == [known_spans["a"]]  # any span of the trace
    assert len(th.traces(name="no such span")) == 0
    assert list(th.traces(name="answer", status="ok")["trace_id"]) == [known_spans["a"]]
    assert len(th.traces(since="1s")) == 0  # everything started a minute ago
    with pytest.raises(th.NotFoundError, match="no project 'elsewhere' in the store; the projects are test"):
        th.traces(limit=500, project="elsewhere")


def test_trace_tree_nests_children_in_start_order(known_spans: dict[str, Any]) -> None:
    tree = th.trace_tree(known_spans["a"])
    assert tree["name"] == "answer" and tree["parent_span_id"] == ""
    assert [c["name"] for c in tree["children"]] == ["retrieve", "generate"]  # by start time, not end order
    generate = tree["children"][1]
    assert [c["name"] for c in generate["children"]] == ["tool_call"]
    assert generate["model"] == "gpt-4o" and generate["input_tokens"] == 1000 and generate["duration_ms"] == 200
    assert tree["children"][0]["children"] == [] and tree["children"][0]["kind"] == "retriever"
    failed = th.trace_tree(known_spans["b"])
    assert failed["status"] == "error" and [c["name"] for c in failed["children"]] == ["generate"]


def test_trace_tree_without_root_has_synthetic_root(th_env: th.Settings) -> None:
    start = time.time_ns()
    _submit("orphan-1", 0xC3, 11, 99, start, 5)
    _submit("orphan-2", 0xC3, 12, 99, start + MS, 5)
    _submit("grandchild", 0xC3, 13, 11, start + 2 * MS, 1)
    tree = th.trace_tree(format(0xC3, "032x"))
    assert tree["name"] == "(trace)"
    assert [c["name"] for c in tree["children"]] == ["orphan-1", "orphan-2"]
    assert [c["name"] for c in tree["children"][0]["children"]] == ["grandchild"]


def test_trace_tree_keeps_span_in_last_microsecond(th_env: th.Settings) -> None:
    start = time.time_ns() // 1000 * 1000
    _submit("root", 0xD4, 21, 0, start, 0.5)
    runtime.submit(SpanRecord(
        th_env.project, "marker", 0xD4, 22, 21, start + 500_789, start + 500_789, STATUS_OK, "", {}, None,
        "INTERNAL", "tracehouse", {},
    ))  # fmt: skip
    tree = th.trace_tree(format(0xD4, "032x"))
    assert tree["name"] == "root"
    assert [c["name"] for c in tree["children"]] == ["marker"]


def test_latency_by_name(known_spans: dict[str, Any]) -> None:
    df = th.latency(by="name")
    rows = {r["name"]: r for r in df.to_dict("records")}
    assert set(rows) == {"answer", "generate", "retrieve", "tool_call", "known"}
    known = rows["known"]
    assert known["count"] == 100 and known["error_rate"] == 0
    assert known["p50_ms"] == pytest.approx(50.5, abs=1.0)
    assert known["p95_ms"] == pytest.approx(95, abs=1.5)
    assert known["p99_ms"] == pytest.approx(99, abs=1.5)
    assert rows["answer"]["count"] == 2 and rows["answer"]["error_rate"] == 0.5
    generate = rows["generate"]
    assert generate["count"] == 2 and generate["error_rate"] == 0.5
    assert (generate["input_tokens"], generate["output_tokens"]) == (1100, 510)
    assert generate["cost_usd"] == pytest.approx(0.0075 + 100 * 0.25e-6 + 10 * 1.25e-6)
    assert rows["tool_call"]["p50_ms"] == pytest.approx(20)
    assert list(df["p95_ms"]) == sorted(df["p95_ms"], reverse=True)  # slowest first


def test_latency_by_model_and_kind(known_spans: dict[str, Any]) -> None:
    models = {r["model"]: r for r in th.latency(by="model").to_dict("records")}
    assert set(models) == {"gpt-4o", "claude-3-haiku"}  # spans without a model are left out
    assert models["gpt-4o"]["count"] == 1 and models["gpt-4o"]["p50_ms"] == pytest.approx(200)
    assert models["gpt-4o"]["error_rate"] == 0 and models["claude-3-haiku"]["error_rate"] == 1
    assert models["gpt-4o"]["input_tokens"] == 1000 and models["gpt-4o"]["cost_usd"] == pytest.approx(0.0075)
    kinds = {r["kind"]: r["count"] for r in th.latency(by="kind").to_dict("records")}
    assert kinds == {"function": 100, "chain": 2, "llm": 2, "retriever": 1, "tool": 1}
    services = th.latency(by="service")
    assert list(services["service"]) == ["tests"] and services["count"][0] == 106
    assert len(th.latency(by="name", since="1s")) == 0
    with pytest.raises(th.NotFoundError, match="no project 'elsewhere'"):
        th.latency(by="name", project="elsewhere")


def test_bad_reading_arguments_raise_config_error(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match="since"):
        th.traces(since="yesterday")
    with pytest.raises(th.ConfigError, match="since"):
        th.latency(since="yesterday")
    with pytest.raises(th.ConfigError, match="by"):
        th.latency(by="colour")
    with pytest.raises(th.ConfigError, match="trace_id"):
        th.trace_tree("xyz")
    with pytest.raises(th.NotFoundError, match=r"no trace 0{31}1 in project 'test'"):
        th.trace_tree("0" * 31 + "1")  # well formed, but no such trace
    with pytest.raises(th.ConfigError, match="limit"):
        th.traces(limit=0)
    with pytest.raises(th.ConfigError, match="status"):
        th.traces(status="failed")
    with pytest.raises(th.ConfigError, match="project"):
        th.traces(project="")
    with pytest.raises(th.ConfigError, match="sql"):
        th.query("   ")
    assert isinstance(th.ConfigError("x", "y"), ValueError)


def test_sql_parameters_are_bound(th_env: th.Settings) -> None:
    for name in ("a", "b", "x' OR 1=1 --"):
        with th.span(name):
            pass
    sql = "SELECT count() AS n FROM spans WHERE name = {n:String}"
    assert th.query(sql, {"n": "x' OR 1=1 --"})["n"][0] == 1  # matches only the span of that very name
    assert th.query(sql, {"n": "nope' OR 1=1 --"})["n"][0] == 0
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 3


def test_a_bad_query_is_a_config_error_and_keeps_data(th_env: th.Settings) -> None:
    for i in range(3):
        with th.span(f"keep{i}"):
            pass
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 3
    with pytest.raises(th.ConfigError, match=r"(?i)unknown table|no_such_table"):
        th.query("SELECT * FROM no_such_table")
    with pytest.raises(th.ConfigError, match=r"(?i)only SELECT"):
        th.query("SELEKT 1")
    with pytest.raises(th.ConfigError, match=r"(?i)syntax"):
        th.query("SELECT (1, 2")
    with pytest.raises(th.ConfigError):
        th.query("SELECT count() FROM spans WHERE name = {n:String}")  # parameter not given
    with th.span("keep3"):
        pass
    assert th.query("SELECT count() AS n FROM spans")["n"][0] == 4
    assert issubclass(th.StoreError, th.TracehouseError)
