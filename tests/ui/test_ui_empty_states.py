"""Empty windows say what to do: the last data's time and links to windows holding it, or how to send
spans when a project has none."""

from __future__ import annotations

import html
import os
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from ui_seed import _span

from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.ui import queries as uq
from tracehouse.collector.ui.ranges import suggestions

OLD = datetime(2025, 6, 1, 14, 40, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = f"empty_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path_factory.mktemp("empty") / "wal"))  # fmt: skip
    with collector_client(parts.app) as test_client:
        hours_ago = time.time_ns() - 3 * 3600 * 10**9
        old_ns = int(OLD.timestamp()) * 10**9
        records = [
            {**_span(1, 10, 0, "old-call", "chain", old_ns, 20.0), "project": "old-only"},
            {**_span(2, 20, 0, "recent-call", "chain", hours_ago, 20.0), "project": "hours-ago"},
            {"type": "run", "project": "runs-only", "run_id": "r1", "name": "r1", "state": "finished", "config": {},
             "summary": {}, "created_ns": hours_ago, "updated_ns": hours_ago, "heartbeat_ns": hours_ago,
             "version": hours_ago},
        ]  # fmt: skip
        answer = test_client.post("/api/v1/records", json=records)
        assert answer.status_code == 200, answer.text
        yield test_client
    parts.close()


def _data(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_empty_window_names_the_last_data_and_windows_that_hold_it(client: TestClient) -> None:
    recent = _data(client, "/api/v1/ui/dashboard", project="hours-ago", range="1h")["empty"]
    assert recent["kind"] == "older" and recent["window"] == "the last 1h"
    assert [s["label"] for s in recent["suggestions"]] == ["show 24h", "show 7d"]
    old = _data(client, "/api/v1/ui/traces", project="old-only", range="24h")["empty"]
    assert old["last_at"] == "2025-06-01T14:40:00+00:00" and old["last_at_text"] == "2025-06-01 14:40 UTC"
    assert old["suggestions"] == [
        {"label": "show the hour up to it", "params": {"range": "custom", "start": "2025-06-01T13:41",
                                                       "end": "2025-06-01T14:41"}},
        {"label": "show the day up to it", "params": {"range": "custom", "start": "2025-05-31T14:41",
                                                      "end": "2025-06-01T14:41"}},
    ]  # fmt: skip
    assert _data(client, "/api/v1/ui/dashboard", project="hours-ago", range="24h")["empty"] is None
    filtered = _data(client, "/api/v1/ui/traces", project="old-only", name="nothing-by-this-name")
    assert filtered["empty"] is None and filtered["traces"] == []  # the filters emptied it, not the window


def test_the_pages_say_it_with_links_that_show_the_data(client: TestClient) -> None:
    page = client.get("/", params={"project": "hours-ago", "range": "1h", "by": "model"})
    assert page.status_code == 200
    assert "Nothing in the last 1h. Last data at" in page.text and "show 24h</a> / " in page.text
    links = [html.unescape(href) for href in
             re.findall(r'class="empty-link" href="([^"]+)"', page.text)]  # fmt: skip
    assert links == ["/?project=hours-ago&by=model&range=24h", "/?project=hours-ago&by=model&range=7d"]
    shown = client.get(links[0])
    assert '<b id="calls">1</b>' in shown.text and 'id="empty-state"' not in shown.text
    traces = client.get("/traces", params={"project": "old-only"}).text
    assert "Nothing in the last 24h. Last data at" in traces and "2025-06-01 14:40 UTC" in traces
    custom = html.unescape(re.findall(r'class="empty-link" href="([^"]+)"', traces)[0])
    assert custom == "/traces?project=old-only&range=custom&start=2025-06-01T13%3A41&end=2025-06-01T14%3A41"
    assert client.get(custom).text.count('class="trace-row"') == 1
    nothing = client.get("/", params={"project": "runs-only"}).text
    assert "Project <b>runs-only</b> has no spans yet. Send some:" in nothing
    assert "http://127.0.0.1:4318/v1/traces" in nothing and "@th.trace" in nothing


def test_custom_windows_are_described_and_suggest_presets_from_now() -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    window = uq.TimeRange(now - timedelta(days=2, hours=1), now - timedelta(days=2), "custom")
    picks = suggestions(window, now - timedelta(hours=5), now=now)
    assert [p["params"] for p in picks] == [{"range": "24h"}, {"range": "7d"}]
    assert suggestions(uq.TimeRange(now - timedelta(days=7), now, "7d"), now - timedelta(days=1), now=now)[0][
        "label"] == "show the hour up to it"  # nothing wider than 7d: the hour up to it  # fmt: skip


def test_evals_and_datasets_pages_say_how_to_make_some(client: TestClient) -> None:
    evals_page = client.get("/evals", params={"project": "runs-only"})
    assert evals_page.status_code == 200 and "No evaluations in project runs-only yet. Run one:" in evals_page.text
    assert "th.evals.evaluate(target" in evals_page.text
    datasets_page = client.get("/datasets", params={"project": "runs-only"}).text
    assert "No datasets in project runs-only yet. Store one:" in datasets_page
