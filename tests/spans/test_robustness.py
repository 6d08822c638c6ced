"""Regression tests for races and edge cases found in review: scopes, handles, forks, disk failure."""

from __future__ import annotations

import asyncio
import gc
import os
import textwrap
import time
import weakref
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import reconfigure, run_python
from opentelemetry import trace as otel_trace

import tracehouse as th
from tracehouse.collector.ingest.spool import NEW_SUFFIX, SpoolWriter, list_segments
from tracehouse.collector.ingest.spool_ingest import SpoolIngester
from tracehouse.exporters._records import SpanRecord
from tracehouse.exporters._sink import SpoolSink
from tracehouse.spans.handles import NOOP_SPAN, ForeignSpan, NoopSpan
from tracehouse.spans.span import TraceSpan
from tracehouse.testing import CapturedSpans


def _public_methods(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n, None))}


def test_every_span_handle_offers_the_same_methods() -> None:
    expected = _public_methods(TraceSpan) - {"kind"}
    for handle in (ForeignSpan, NoopSpan):
        missing = expected - _public_methods(handle)
        assert not missing, f"{handle.__name__} lacks {sorted(missing)}"
    for name in ("trace_id_hex", "span_id_hex"):
        assert hasattr(NOOP_SPAN, name) and hasattr(ForeignSpan, name)


def test_noop_and_foreign_handles_accept_every_call(th_env: th.Settings) -> None:
    tracer = otel_trace.get_tracer("other")
    with tracer.start_as_current_span("other-span"):
        foreign = th.current_span()
        assert isinstance(foreign, ForeignSpan)
        for handle in (foreign, NOOP_SPAN):
            handle.add_event("e", {"k": 1})
            handle.update_name(handle.__class__.__name__)
            handle.set_status(otel_trace.Status(otel_trace.StatusCode.OK))
            handle.record_exception(ValueError("x"))
            handle.set_usage(model="gpt-4o", input_tokens=1, output_tokens=1)
            handle.set_context(["doc"])
            assert isinstance(handle.trace_id_hex, str)
        assert foreign.get_span_context().is_valid and not NOOP_SPAN.get_span_context().is_valid


def test_a_span_scope_entered_twice_ends_both_spans(spans: CapturedSpans) -> None:
    scope = th.span("reused")
    with scope as outer, scope as inner:
        assert inner is not outer and inner.parent_span_id == outer.span_id
    assert th.current_span() is NOOP_SPAN
    assert spans.tree(fields=("name",)) == [{"name": "reused", "children": [{"name": "reused", "children": []}]}]


def test_a_span_scope_shared_by_tasks_keeps_each_task_span(spans: CapturedSpans) -> None:
    scope = th.span("shared")

    async def task(delay: float) -> str:
        async with scope as span:
            await asyncio.sleep(delay)
            assert th.current_span() is span
            return str(span.span_id_hex)

    async def main() -> list[str]:
        return list(await asyncio.gather(task(0.02), task(0.01)))

    ids = asyncio.run(main())
    assert sorted(ids) == sorted(r["span_id"] for r in spans) and len(set(ids)) == 2


def test_changes_after_end_are_ignored(spans: CapturedSpans) -> None:
    with th.span("done") as span:
        span.set_output("before")
    span.set_output("after")
    span.set_attribute("late", 1)
    span.add_event("late")
    span.update_name("renamed")
    (row,) = spans
    assert (row["name"], row["output"], row["event_names"]) == ("done", "before", [])
    assert "late" not in row["attributes"]


def test_project_is_fixed_when_the_span_starts(th_env: th.Settings, spans: CapturedSpans) -> None:
    with th.span("moved"):
        reconfigure(th_env, project="other-project")
    assert spans.by_name("moved")["project"] == th_env.project


def test_generator_without_output_capture_keeps_no_references(spans: CapturedSpans) -> None:
    class Chunk:
        pass

    refs: list[weakref.ref[Chunk]] = []

    @th.trace(capture_output=False)
    def chunks() -> Iterator[Chunk]:
        for _ in range(5):
            chunk = Chunk()
            refs.append(weakref.ref(chunk))
            yield chunk

    iterator = chunks()
    for _ in iterator:
        gc.collect()
    assert all(ref() is None for ref in refs[:-1]), "yielded objects were kept alive by the tracer"
    assert spans.by_name("chunks")["output"] == ""


def test_generator_output_is_bounded_by_the_payload_limit(th_env: th.Settings, spans: CapturedSpans) -> None:
    reconfigure(th_env, max_payload_bytes=1000)

    @th.trace
    def stream() -> Iterator[str]:
        for _ in range(100):
            yield "x" * 100

    assert sum(len(c) for c in stream()) == 10_000
    row = spans.by_name("stream")
    assert len(row["output"]) == 1000
    assert row["attributes"]["tracehouse.yield_count"] == "100"


def test_a_segment_being_created_is_invisible_to_readers(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    staging = spool / f"00000000000000000001-1-abcdef01.seg{NEW_SUFFIX}"
    staging.write_bytes(b"THSPOOL1\n")
    assert list_segments(spool) == ([], [])
    writer = SpoolWriter(spool)
    writer.append(b"[]")
    assert [p.name for p in list_segments(spool)[0]] == [writer.path.name if writer.path else ""]
    writer.close()
    os.utime(staging, (time.time() - 3600, time.time() - 3600))  # abandoned an hour ago


def test_an_abandoned_new_segment_is_removed_by_ingest(th_env: th.Settings, tmp_path: Path) -> None:
    from tracehouse.reads.reading import get_store

    spool = tmp_path / "spool"
    spool.mkdir()
    staging = spool / f"00000000000000000001-1-abcdef01.seg{NEW_SUFFIX}"
    staging.write_bytes(b"THSPOOL1\n")
    fresh = spool / f"00000000000000000002-1-abcdef02.seg{NEW_SUFFIX}"
    fresh.write_bytes(b"THSPOOL1\n")
    os.utime(staging, (time.time() - 3600, time.time() - 3600))
    writer = SpoolWriter(spool)
    writer.append(b"[]")
    writer.close()
    SpoolIngester(get_store()).ingest(spool)
    assert not staging.exists(), "an hour-old .new file with no writer is debris"
    assert fresh.exists(), "a fresh .new file may belong to a writer about to rename it"


def _record(i: int) -> SpanRecord:
    return SpanRecord("p", "s", i + 1, i + 1, 0, 1, 2, 0, "", {"i": i}, None, "INTERNAL", "t", {})


def test_a_failing_disk_is_not_retried_on_every_span(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    sink = SpoolSink(tmp_path / "spool", batch_size=10, max_pending=50, interval=60)
    sink.spool.directory = blocker / "spool"
    attempts = {"n": 0}
    real_append = sink.spool.append

    def counting_append(payload: bytes) -> None:
        attempts["n"] += 1
        real_append(payload)

    sink.spool.append = counting_append  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        for i in range(2000):
            sink.submit(_record(i))
        elapsed = time.perf_counter() - started
        # with backoff from 0.1 s doubling, a few attempts at most, not one per shed batch (200 of them)
        assert attempts["n"] <= 2 + max(0, int(elapsed / 0.1)).bit_length(), attempts["n"]
        assert sink.pending() <= sink.max_pending
        assert sink.dropped == 2000 - sink.pending()
    finally:
        sink.spool.directory = tmp_path / "spool"
        sink.shutdown(5)


def test_spans_of_a_forked_multiprocessing_child_reach_the_spool(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import multiprocessing as mp
        import tracehouse as th
        th.configure(data_dir={str(tmp_path / "data")!r}, project="fork")

        @th.trace
        def work(i):
            return i * 2

        def child():
            for i in range(10):
                work(i)

        if __name__ == "__main__":
            work(-1)
            process = mp.get_context("fork").Process(target=child)
            process.start()
            process.join()
            print("exit", process.exitcode)
        """
    )
    script = tmp_path / "forker.py"
    script.write_text(code)
    result = run_python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')")
    assert result.returncode == 0, result.stderr
    assert "exit 0" in result.stdout
    records = _spool_records(tmp_path / "data" / "spool")
    assert sorted(r["input"] for r in records if r["project"] == "fork") == sorted(
        ['{"i":-1}', *(f'{{"i":{i}}}' for i in range(10))]
    )


def _spool_records(spool: Path) -> list[dict[str, Any]]:
    import orjson

    from tracehouse.collector.ingest.spool import scan_segment
    from tracehouse.collector.store.rows.spans import span_row

    rows = []
    for segment in list_segments(spool)[0]:
        for frame in scan_segment(segment).frames:
            rows.extend(span_row(r) for r in orjson.loads(frame.payload))
    return rows


def test_disabled_by_environment_without_configure(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import tracehouse as th
        from tracehouse.spans.runtime import runtime

        @th.trace
        def f(x):
            return x + 1

        assert f(1) == 2
        assert runtime._sink is None, "a disabled tracer must not start a spool writer"
        print("OK")
        """
    )
    result = run_python(code, env={"TRACEHOUSE_DISABLED": "1", "TRACEHOUSE_DIR": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
    assert not (tmp_path / "d" / "spool").exists()


def test_a_bad_environment_value_disables_tracing_with_one_error(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import tracehouse as th

        @th.trace
        def f(x):
            return x + 1

        assert [f(i) for i in range(3)] == [1, 2, 3]
        try:
            th.query("SELECT 1")
        except th.ConfigError as error:
            print("query:", error)
        """
    )
    env = {"TRACEHOUSE_MAX_PAYLOAD_BYTES": "lots", "TRACEHOUSE_DIR": str(tmp_path / "d")}
    env["TRACEHOUSE_RAISE_INTERNAL_ERRORS"] = "0"
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("tracehouse is disabled: TRACEHOUSE_MAX_PAYLOAD_BYTES") == 1
    assert result.stdout.strip().startswith("query: TRACEHOUSE_MAX_PAYLOAD_BYTES")


def test_flush_rejects_a_bad_timeout(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match="timeout"):
        th.flush(-1)
    assert th.flush(0.5) is True


def test_reconfiguring_with_multiprocessing_loaded_keeps_the_new_sink_running(th_env: th.Settings) -> None:
    import multiprocessing  # noqa: F401  # the Finalize path is taken only when it is imported

    from tracehouse.spans.runtime import runtime

    @th.trace
    def step() -> int:
        return 1

    from multiprocessing import util

    step()
    for _ in range(3):
        reconfigure(th_env)
        step()
        gc.collect()
        assert runtime._sink is not None and not runtime._sink._stopped
    ours = [f for f in util._finalizer_registry.values() if getattr(f, "_callback", None) == runtime.shutdown]
    # one per process, tied to no object: a Finalize tied to a sink would run when an old sink is collected
    assert len(ours) == 1 and getattr(ours[0], "_weakref", None) is None
    assert th.flush(5)
