"""Absolute time windows (`start` / `end` as ISO 8601 or epoch milliseconds) beside `since`, on the
REST lists and aggregates, the pages' JSON twins, the pages and the Python reads; bad windows are 400s
(ConfigErrors) naming the parameter."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from ui_seed import PROJECT, _span, seed

from tracehouse._errors import ConfigError
from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.store import windows as w

# three traces yesterday-ish between 14:00 and 15:00 UTC (fixed times, far from now)
OLD = datetime(2025, 6, 1, 14, 0, tzinfo=timezone.utc)
OLD_MS = int(OLD.timestamp() * 1000)
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = f"windows_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path_factory.mktemp("windows") / "wal"))  # fmt: skip
    with collector_client(parts.app) as client:

        def post(path: str, payload: Any) -> Any:
            answer = client.post(path, json=payload)
            assert answer.status_code == 200, answer.text
            return answer.json()

        seed(post)  # ten traces two minutes ago
        start_ns = OLD_MS * 10**6
        post("/api/v1/records", [
            _span(100 + i, 1000 + i, 0, "old-answer", "chain", start_ns + (10 + 15 * i) * 60 * 10**9, 50.0 + i)
            for i in range(3)  # 14:10, 14:25, 14:40
        ])  # fmt: skip
        yield client
    parts.close()


def _ok(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- parsing -------------------------------------------------------------------------------------
def test_instants_are_iso_times_or_epoch_milliseconds() -> None:
    assert w.parse_instant("start", "2025-06-01T14:00:00Z") == OLD
    assert w.parse_instant("start", "2025-06-01T14:00") == OLD  # naive: UTC
    assert w.parse_instant("start", "2025-06-01T16:00+02:00") == OLD
    assert w.parse_instant("start", str(OLD_MS)) == OLD
    assert w.parse_instant("start", OLD_MS) == OLD
    assert w.parse_instant("start", float(OLD_MS) + 0.5) == OLD + timedelta(microseconds=500)
    for bad in ("yesterday", "", "14:00", "2025-13-01", "１７００", True, [1], "1e12"):
        with pytest.raises(ConfigError, match=r"^start: expected an ISO 8601 time .* or epoch milliseconds"):
            w.parse_instant("start", bad)
    with pytest.raises(ConfigError, match="outside the times the store holds"):
        w.parse_instant("end", "2400-01-01T00:00Z")
    with pytest.raises(ConfigError, match="outside the times the store holds"):
        w.parse_instant("end", 10**16)


def test_windows_resolve_since_or_start_end_and_refuse_bad_ones() -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    assert w.resolve("1h", now=now) == w.Window(now - timedelta(hours=1), None)
    assert w.resolve(now=now) == w.Window(now - timedelta(hours=24), None)  # the default
    assert w.resolve(None, now=now).start == w.EPOCH  # None: all time
    assert w.resolve(start=OLD_MS, end=OLD_MS + HOUR_MS) == w.Window(OLD, OLD + timedelta(hours=1))
    assert w.resolve("30m", end=OLD, now=now) == w.Window(OLD - timedelta(minutes=30), OLD)  # back from the end
    assert w.resolve(start=OLD, now=now).end is None  # open: up to now
    cases = [
        ({"since": "1h", "start": OLD_MS}, "since: give either since"),
        ({"start": OLD_MS, "end": OLD_MS}, r"end: the end \(2025-06-01T14:00:00\+00:00\) is not after the start"),
        ({"start": OLD_MS + 1, "end": OLD_MS}, "end: the end .* is not after the start"),
        ({"since": "0h"}, "since: expected a duration above zero"),
        ({"since": ""}, "since: expected a duration"),
        ({"since": "１h"}, "since: expected a duration"),  # ASCII digits only
        ({"since": "soon"}, "since: expected a duration"),
        ({"start": "x"}, "start: expected an ISO 8601 time"),
        ({"start": OLD_MS, "end": "later"}, "end: expected an ISO 8601 time"),
    ]
    for arguments, message in cases:
        with pytest.raises(ConfigError, match=message):
            w.resolve(**arguments, now=now)  # type: ignore[arg-type]


# --- the REST API ----------------------------------------------------------------------------------
def test_rest_lists_and_aggregates_take_start_and_end(api: TestClient) -> None:
    for start, end in (("2025-06-01T14:00:00Z", "2025-06-01T15:00:00Z"), (OLD_MS, OLD_MS + HOUR_MS)):
        traces = _ok(api, "/api/v1/traces", start=start, end=end, limit=50)
        assert [r[2] for r in traces["rows"]] == ["old-answer"] * 3
        latency = _ok(api, "/api/v1/latency", start=start, end=end)
        assert [(r[0], r[1]) for r in latency["rows"]] == [("old-answer", 3)]
    half = _ok(api, "/api/v1/traces", start=OLD_MS, end=OLD_MS + HOUR_MS // 2)  # 14:00-14:30: two of them
    assert len(half["rows"]) == 2
    opened = _ok(api, "/api/v1/traces", start=OLD_MS, limit=100)  # no end: up to now, the recent ones too
    assert len(opened["rows"]) == 13
    assert len(_ok(api, "/api/v1/traces", since="30m", end=OLD_MS + HOUR_MS)["rows"]) == 1  # 14:30-15:00: 14:40
    assert len(_ok(api, "/api/v1/traces", limit=50)["rows"]) == 10  # default: the last 24h
    assert _ok(api, "/api/v1/latency", since="1h")["rows"][0][1] == 10


@pytest.mark.parametrize(
    "path, params, words",
    [
        ("/api/v1/traces", {"since": "0h"}, "since: expected a duration above zero"),
        ("/api/v1/latency", {"since": "0s"}, "since: expected a duration above zero"),
        ("/api/v1/traces", {"since": ""}, "since: expected a duration"),
        ("/api/v1/traces", {"since": "1h", "start": "2025-06-01T14:00Z"}, "since: give either since"),
        ("/api/v1/latency", {"since": "1h", "start": "1748786400000"}, "since: give either since"),
        ("/api/v1/traces", {"start": "2025-06-01T15:00Z", "end": "2025-06-01T14:00Z"}, "end: the end"),
        ("/api/v1/latency", {"start": "1748786400000", "end": "1748786400000"}, "is not after the start"),
        ("/api/v1/traces", {"start": "tuesday"}, "start: expected an ISO 8601 time"),
        ("/api/v1/latency", {"start": "1748786400000", "end": "2025-99-01"}, "end: expected an ISO 8601 time"),
        ("/api/v1/traces", {"start": "9999-01-01T00:00Z"}, "start: "),
    ],
)  # fmt: skip
def test_rest_bad_windows_are_400_naming_the_parameter(
    api: TestClient, path: str, params: dict[str, str], words: str
) -> None:
    answer = api.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text


# --- the pages and their JSON twins ----------------------------------------------------------------
def test_ui_twins_take_start_end_and_since_and_return_the_resolved_window(api: TestClient) -> None:
    dashboard = _ok(api, "/api/v1/ui/dashboard", start="2025-06-01T14:00Z", end=str(OLD_MS + HOUR_MS))
    assert dashboard["overview"]["count"] == 3 and dashboard["range"] == "custom"
    assert dashboard["window"] == {"start": "2025-06-01T14:00:00+00:00", "end": "2025-06-01T15:00:00+00:00",
                                   "start_ms": OLD_MS, "end_ms": OLD_MS + HOUR_MS, "label": "custom",
                                   "bucket_seconds": 30}  # fmt: skip
    traces = _ok(api, "/api/v1/ui/traces", start=OLD_MS, end=OLD_MS + HOUR_MS)
    assert [t["root_name"] for t in traces["traces"]] == ["old-answer"] * 3
    assert traces["window"]["start_ms"] == OLD_MS and traces["window"]["end_ms"] == OLD_MS + HOUR_MS
    two_hours = _ok(api, "/api/v1/ui/dashboard", since="2h")  # any duration, not only the picker's
    assert two_hours["overview"]["count"] == 30 and two_hours["range"] == "2h"
    assert two_hours["window"]["end_ms"] - two_hours["window"]["start_ms"] == 2 * HOUR_MS
    legacy = _ok(api, "/api/v1/ui/dashboard", range="custom", start="2025-06-01T14:00", end="2025-06-01T15:00")
    assert legacy["overview"]["count"] == 3


@pytest.mark.parametrize(
    "path, params, words",
    [
        ("/api/v1/ui/dashboard", {"since": "garbage"}, "since: expected a duration"),
        ("/api/v1/ui/traces", {"since": "0h"}, "since: expected a duration above zero"),
        ("/api/v1/ui/traces", {"since": "1h", "start": "2025-06-01T14:00"}, "since: give either since"),
        ("/api/v1/ui/dashboard", {"start": "2025-06-01T15:00", "end": "2025-06-01T14:00"}, "is not after the start"),
        ("/api/v1/ui/traces", {"start": "noon"}, "start: expected an ISO 8601 time"),
        ("/api/v1/ui/dashboard", {"range": "1h", "start": "2025-06-01T14:00"}, "range: 1h is a range back from now"),
        ("/api/v1/ui/dashboard", {"range": "1h", "since": "2h"}, "since: give either range or since"),
    ],
)  # fmt: skip
def test_ui_bad_windows_are_400_on_the_twin_and_the_page(
    api: TestClient, path: str, params: dict[str, str], words: str
) -> None:
    answer = api.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text
    page = api.get(path.replace("/api/v1/ui/dashboard", "/").replace("/api/v1/ui", ""),
                   params={"project": PROJECT, **params})  # fmt: skip
    assert page.status_code == 400 and words.replace("'", "&#39;") in page.text


def test_the_range_picker_keeps_a_custom_window_in_its_inputs(api: TestClient) -> None:
    page = api.get("/", params={"project": PROJECT, "start": str(OLD_MS), "end": str(OLD_MS + HOUR_MS)}).text
    assert 'name="start" id="range-start" type="datetime-local" value="2025-06-01T14:00"' in page
    assert 'name="end" id="range-end" type="datetime-local" value="2025-06-01T15:00"' in page
    assert "<option selected>custom</option>" in page
    traces = api.get("/traces", params={"project": PROJECT, "range": "custom", "start": "2025-06-01T14:00Z"}).text
    assert 'name="start" id="range-start" type="datetime-local" value="2025-06-01T14:00"' in traces
    assert traces.count('class="trace-row"') == 13
