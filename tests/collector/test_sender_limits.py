"""A sender never wedges on the collector's answers: 413 splits, refusals for good are set aside,
Retry-After is honoured in both forms, backoff is jittered, and a read goes on without the spool."""

from __future__ import annotations

import email.utils
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SESSION_STORE_URL
from servers import InProcessCollector

pytest.importorskip("fastapi")

from tracehouse.collector.ingest.quarantine import requeue_quarantine
from tracehouse.collector.ingest.spool import SpoolWriter, list_segments
from tracehouse.collector.ingest.spool_ingest import QUARANTINE, SpoolIngester
from tracehouse.collector.server import ServeOptions
from tracehouse.exporters._sender import (
    MAX_RETRY_AFTER,
    CollectorClient,
    CollectorDestination,
    SendError,
    SpoolShipper,
    parse_retry_after,
)

_ids = iter(range(1, 10**9))


def _span(name: str, **attributes: Any) -> dict[str, Any]:
    n = next(_ids)
    now = time.time_ns()
    return {
        "type": "span", "project": "p", "name": name, "trace_id": format(n, "032x"), "span_id": format(n, "016x"),
        "parent_span_id": "", "start_ns": now, "end_ns": now + 1000, "status": "ok", "status_message": "",
        "attributes": attributes, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


def _options(tmp_path: Path, max_body_bytes: int, database: str = "") -> ServeOptions:
    return ServeOptions(
        store_url=SESSION_STORE_URL, database=database or f"send_{os.getpid()}_{time.monotonic_ns()}",
        default_project="p", spool_dir=tmp_path / f"wal-{time.monotonic_ns()}", max_body_bytes=max_body_bytes,
    )  # fmt: skip


def _spool(directory: Path, frames: list[list[dict[str, Any]]]) -> None:
    writer = SpoolWriter(directory)
    for records in frames:
        writer.append(orjson.dumps(records))
    writer.close()


def _send(directory: Path, url: str) -> Any:
    destination = CollectorDestination(CollectorClient(url))
    return SpoolIngester(destination, max_bytes_per_insert=8 * 1024 * 1024).ingest(directory)


def test_a_range_over_the_collectors_body_limit_is_sent_in_parts(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    text = "z" * 20_000
    _spool(spool, [[_span("part", input=f"{f}.{i}:{text}") for i in range(2)] for f in range(6)])  # ~240 KB
    with InProcessCollector(_options(tmp_path, max_body_bytes=64 * 1024)) as collector:
        report = _send(spool, collector.url)
        assert report.rows == 12 and report.set_aside == 0 and not report.problems
        assert collector.count("name = 'part'") == 12
        assert list_segments(spool)[0] == []
        again = _send(spool, collector.url)  # nothing left, nothing doubled
        assert again.rows == 0 and collector.count("name = 'part'") == 12


def test_a_single_record_over_the_body_limit_is_stored_shortened(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    _spool(spool, [[_span("whale", blob="w" * 200_000)], [_span("minnow")]])
    with InProcessCollector(_options(tmp_path, max_body_bytes=64 * 1024)) as collector:
        report = _send(spool, collector.url)
        assert report.rows == 2 and not report.set_aside
        request = f"{collector.url}/api/v1/query"
        answer = _post_json(request, {"sql": "SELECT attributes['blob'] FROM spans WHERE name = 'whale'"})
        stored = answer["rows"][0][0]
        assert stored.startswith("www") and "cut by tracehouse" in stored and len(stored) < 64 * 1024
        assert collector.count("name = 'minnow'") == 1


def test_a_record_refused_for_good_is_set_aside_and_sync_quarantine_brings_it_back(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    _spool(spool, [[_span("small")], [_span("stubborn", note="s" * 3000)], [_span("later")]])
    database = f"send_{os.getpid()}_{time.monotonic_ns()}"
    with InProcessCollector(_options(tmp_path, max_body_bytes=1024, database=database)) as strict:
        report = _send(spool, strict.url)  # the spool moves on past the range it can never send
        assert report.set_aside == 1 and any("set aside" in p for p in report.problems)
        assert strict.count("name IN ('small', 'later')") == 2 and strict.count("name = 'stubborn'") == 0
    assert list_segments(spool)[0] == [] and list_segments(spool / QUARANTINE)[0]
    with InProcessCollector(_options(tmp_path, max_body_bytes=1024 * 1024, database=database)) as roomy:
        assert len(requeue_quarantine(spool).requeued) == 1
        report = _send(spool, roomy.url)
        assert report.rows == 1 and roomy.count("name = 'stubborn'") == 1
        assert roomy.count() == 3  # nothing doubled
    assert list_segments(spool)[0] == [] and not list_segments(spool / QUARANTINE)[0]


def test_a_read_goes_on_with_a_warning_when_the_collector_refuses_the_spool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A key of project `a` reads `a`; a spool record this process wrote for `b` is 403: the read still answers."""
    import dataclasses

    import tracehouse as th
    from tracehouse.collector import Store
    from tracehouse.collector.store.keys import KeyStore

    options = dataclasses.replace(_options(tmp_path, max_body_bytes=1024 * 1024), require_keys=True)
    seed = Store(SESSION_STORE_URL, options.database)
    _, key = KeyStore(seed).create("a")
    KeyStore(seed).create(None)
    seed.close()
    with InProcessCollector(options) as collector:
        seeded = CollectorDestination(CollectorClient(collector.url, api_key=key)).write(
            [_span("home") | {"project": "a"}], "seed"
        )
        assert seeded.rows == 1
        th.configure(endpoint=collector.url, api_key=key, data_dir=str(tmp_path / "data"), project="b")
        try:
            with th.span("elsewhere"):
                pass
            with caplog.at_level(logging.WARNING, logger="tracehouse"):
                frame = th.traces(project="a", since="1h")
            assert len(frame) == 1 and "home" in frame.to_string()
            assert any("reading without this process's latest records" in r.getMessage() for r in caplog.records)
        finally:
            th.configure()


def test_retry_after_is_read_in_both_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("100000") == MAX_RETRY_AFTER
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(soon) or 0) <= 30
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after("") is None and parse_retry_after(None) is None


def test_backoff_honours_retry_after_and_is_jittered(tmp_path: Path) -> None:
    shipper = SpoolShipper(tmp_path, CollectorClient("http://127.0.0.1:9"), before_pass=lambda: None)
    asked = [shipper._next_backoff(SendError("busy", retry_after=10.0, status=503)) for _ in range(50)]
    assert all(10.0 <= wait <= 12.5 for wait in asked) and len(set(asked)) > 1  # never sooner than asked
    exponential = []
    for _ in range(8):
        shipper._backoff = shipper._next_backoff(SendError("down"))
        exponential.append(shipper._backoff)
    assert exponential[0] <= 1.0 and max(exponential) <= 30.0 and exponential[-1] >= 15.0
    assert exponential[1] <= 2.0 <= exponential[6] * 2
    refused = [shipper._next_backoff(SendError("revoked", retryable=False, status=401)) for _ in range(20)]
    assert all(MAX_RETRY_AFTER / 2 <= wait <= MAX_RETRY_AFTER for wait in refused) and len(set(refused)) > 1


def _post_json(url: str, body: dict[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(url, data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return orjson.loads(answer.read())
