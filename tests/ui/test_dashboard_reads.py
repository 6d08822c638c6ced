"""The dashboard reads its totals, series and group table in two scans (GROUPING SETS); they must say
exactly what the four separate reads say (other pages and the reports' latency panel use those)."""

from __future__ import annotations

import time
from typing import Any

import tracehouse as th
from tracehouse.collector.ingest.writer import write_records
from tracehouse.collector.store.store import Store
from tracehouse.collector.ui import queries as uq

PROJECT = "dashreads"


def _spans() -> list[dict[str, Any]]:
    now = time.time_ns()
    spans = []
    for i in range(400):  # few enough that every quantile is exact, so both ways must agree to the digit
        start = now - (i * 7_919_000_000) % (20 * 3600 * 10**9)  # spread over the last 20 hours
        parent = f"{i // 2 * 2 + 1:016x}" if i % 2 else ""
        model = ("m-a", "m-b", "")[i % 3]
        attributes: dict[str, Any] = {"tracehouse.span.kind": "llm" if model else "chain"}
        if model:
            attributes.update({"gen_ai.request.model": model, "gen_ai.usage.input_tokens": i % 17,
                               "gen_ai.usage.output_tokens": 3})  # fmt: skip
        spans.append({"type": "span", "project": PROJECT, "name": f"step-{i % 5}", "trace_id": f"{i // 2 + 1:032x}",
                      "span_id": f"{i + 1:016x}", "parent_span_id": parent, "start_ns": start,
                      "end_ns": start + (i % 23 + 1) * 1_000_000, "status": "error" if i % 11 == 0 else "ok",
                      "status_message": "", "span_kind": "INTERNAL", "scope": "t", "resource": {"service.name": "svc"},
                      "events": [], "attributes": attributes})  # fmt: skip
    return spans


def test_one_scan_says_what_four_reads_say(th_env: th.Settings) -> None:
    store = Store(th_env.clickhouse_url, th_env.database)
    write_records(store, _spans(), None)
    for label in ("1h", "24h", "7d"):
        window = uq.time_range(label)
        for by in ("name", "model", "kind", "service"):
            sets = uq.dashboard_sets(store, PROJECT, window, by)
            assert sets.overview == uq.overview(store, PROJECT, window)
            assert sets.every == uq.series(store, PROJECT, window, None)
            assert sets.series == uq.series(store, PROJECT, window, by)
            separate = uq.groups(store, PROJECT, window, by)
            assert [g["p95_ms"] for g in sets.groups] == [g["p95_ms"] for g in separate]  # slowest first, both
            assert sorted(sets.groups, key=str) == sorted(separate, key=str)
    assert uq.dashboard_sets(store, PROJECT, uq.time_range("24h"), "name").overview["count"] == 400


def test_an_empty_window_gives_zero_totals_and_no_rows(th_env: th.Settings) -> None:
    store = Store(th_env.clickhouse_url, th_env.database)
    window = uq.time_range("15m")
    sets = uq.dashboard_sets(store, "nothing-here", window, "name")
    assert sets.overview == uq.overview(store, "nothing-here", window) and sets.overview["count"] == 0
    assert sets.every["points"] == [] and sets.series["points"] == [] and sets.groups == []
