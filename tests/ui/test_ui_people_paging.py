"""The sessions and users lists page both ways by a keyset cursor, past any number of sessions."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client
from fastapi.testclient import TestClient
from paging import walk_pages
from traces_seed import PROJECT, _span

from tracehouse.collector.server import ServeOptions, build

N_SESSIONS = 23


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    database = f"uipp_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path / "wal"))  # fmt: skip
    with collector_client(parts.app) as opened:
        base = time.time_ns() - 3600 * 10**9
        records = []
        for i in range(N_SESSIONS):
            start = base + (i if i != 12 else 11) * 60 * 10**9  # sessions 11 and 12 end at the same nanosecond
            attributes = {"session.id": f"s_{i:02d}", "user.id": f"u_{i % 7}"}  # ids with the cursor's "_"
            records.append(_span(i, 1, 0, "turn", "chain", start, 100.0, attributes))
        answer = opened.post("/api/v1/records", json=records)
        assert answer.status_code == 200, answer.text
        yield opened
    parts.close()


def _page(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params={"project": PROJECT, "range": "24h", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _walk(client: TestClient, path: str) -> tuple[list[list[str]], list[list[str]]]:
    return walk_pages(lambda **paging: _page(client, path, **paging), "items", "id")


def test_sessions_page_newest_first_both_ways_without_gaps(client: TestClient) -> None:
    expected = [f"s_{i:02d}" for i in reversed(range(N_SESSIONS))]
    expected[10:12] = ["s_11", "s_12"]  # equal last activity: by id
    forward, backward = _walk(client, "/api/v1/ui/sessions")
    assert [len(p) for p in forward] == [5, 5, 5, 5, 3]
    assert [s for p in forward for s in p] == expected
    assert backward == forward
    assert _page(client, "/api/v1/ui/sessions")["prev"] is None


def test_users_page_too_and_the_page_links(client: TestClient) -> None:
    forward, backward = _walk(client, "/api/v1/ui/users")
    assert sorted(u for p in forward for u in p) == [f"u_{i}" for i in range(7)] and backward == forward
    first = client.get("/sessions", params={"project": PROJECT, "limit": "5"}).text
    assert 'id="next-page"' in first and 'id="prev-page"' not in first
    cursor = _page(client, "/api/v1/ui/sessions", limit="5")["next"]
    html = client.get("/sessions", params={"project": PROJECT, "limit": "5", "after": cursor}).text
    assert 'id="prev-page"' in html and 'id="next-page"' in html and "s_17" in html and "s_22" not in html


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"after": "x_1"}, "after: expected a cursor"),
        ({"before": "123"}, "before: expected a cursor"),
        ({"after": "1_a", "before": "2_b"}, "not both"),
        ({"limit": "0"}, "limit: expected a page size"),
        ({"limit": "501"}, "limit: expected a page size"),
    ],
)
def test_bad_cursors_and_sizes_are_400(client: TestClient, params: dict[str, str], words: str) -> None:
    for path in ("/api/v1/ui/sessions", "/api/v1/ui/users", "/sessions"):
        answer = client.get(path, params={"project": PROJECT, **params})
        assert answer.status_code == 400 and words in answer.text, (path, answer.text)
