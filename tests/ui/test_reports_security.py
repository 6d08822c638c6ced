"""Attacks on reports: markup in markdown, titles and panel settings comes out as text (view, list,
editor, export); `javascript:` and other schemes are never links; the editor's forms need their CSRF
token and a same-site origin; a project key reads and edits only its own project's reports."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.store.keys import KeyStore
from tracehouse.collector.store.store import Store
from tracehouse.collector.ui.reports_markdown import render, safe_link

HOSTILE_TITLE = "<img src=x onerror=alert(1)> **bold** [t](javascript:alert(2))"
HOSTILE_MARKDOWN = """# Notes <script>alert('md')</script>

<img src=x onerror=alert(3)>

[click](javascript:alert(4)) [upper](JAVASCRIPT:alert(5)) [entity](&#106;avascript:alert(6))
[data](data:text/html,<script>alert(7)</script>) [vb](vbscript:msgbox) [proto](//evil.example/x)
![pixel](https://evil.example/track.png) <a href="javascript:alert(8)">raw</a>
[fine](https://example.org/docs) [trace](/traces/0123)
"""


def _database() -> str:
    return f"reports_sec_{os.getpid()}_{time.monotonic_ns()}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=_database(), default_project="sec",
                               spool_dir=tmp_path_factory.mktemp("reports-sec") / "wal"))  # fmt: skip
    with collector_client(parts.app) as test_client:
        yield test_client
    parts.close()


def _hostile_report(client: TestClient) -> dict[str, Any]:
    blocks = [{"type": "markdown", "text": HOSTILE_MARKDOWN},
              {"type": "panel", "panel": "run_chart",
               "settings": {"title": "<script>alert('title')</script>", "runs": ["x"], "metric": "<b>m</b>"}},
              {"type": "panel", "panel": "runs_table",
               "settings": {"filter": {"config.lr'); DROP TABLE runs; --": {"$eq": "'; DROP TABLE runs; --"}},
                            "columns": ["name", "config.<script>"]}}]  # fmt: skip
    body = {"project": "sec", "title": HOSTILE_TITLE, "description": "<svg onload=alert(9)>", "blocks": blocks}
    answer = client.post("/api/v1/reports", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _no_live_markup(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    assert not re.search(r"<a [^>]*href=\"\s*(javascript|vbscript|data):", html, re.I)
    assert not re.search(r"<a [^>]*href=\"//", html)
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "").replace("onerror=alert(3)&gt;", "")


def test_markdown_never_emits_markup_or_unsafe_links() -> None:
    html = render(HOSTILE_MARKDOWN)
    _no_live_markup(html)
    assert "&lt;script&gt;alert(&#x27;md&#x27;)&lt;/script&gt;" in html or "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html
    assert '<a href="https://example.org/docs" rel="noopener noreferrer nofollow">fine</a>' in html
    assert '<a href="/traces/0123"' in html
    assert "<img" not in html, "an image from elsewhere is a link, never fetched"
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">' in render(
        "![dot](data:image/png;base64,iVBORw0KGgo=)"
    )
    for bad in ("javascript:alert(1)", " JavaScript:x", "data:text/html,x", "vbscript:x", "//evil", "file:///etc",
                "java\\script:x"):  # fmt: skip
        assert not safe_link(bad), bad


def test_hostile_text_is_escaped_on_every_page(client: TestClient) -> None:
    report = _hostile_report(client)
    report_id = report["report_id"]
    pages = {"view": client.get(f"/reports/{report_id}"), "list": client.get("/reports", params={"project": "sec"}),
             "edit": client.get(f"/reports/{report_id}/edit"),
             "export": client.get(f"/reports/{report_id}/export")}  # fmt: skip
    for name, page in pages.items():
        assert page.status_code == 200, name
        _no_live_markup(page.text)
        assert "&lt;img src=x onerror=alert(1)&gt; **bold**" in page.text, f"the title is text on the {name} page"
    view = pages["view"].text
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in view  # a panel title
    assert "no run x in project" in view  # the chart's run is unknown: an error in its panel
    _, ((runs,),) = Store(SESSION_STORE_URL, client.app.state.collector.store.database).query_rows(  # type: ignore[attr-defined]
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'runs'"
    )
    assert runs == 1, "filter text is bound, never SQL"


def test_editor_posts_need_the_token_and_a_same_site_origin(client: TestClient) -> None:
    report_id = _hostile_report(client)["report_id"]
    page = client.get(f"/reports/{report_id}/edit")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    form = {"title": "hijacked", "order": [], "action": "save"}
    for path in (f"/reports/{report_id}/edit", f"/reports/{report_id}/delete", "/reports/new"):
        assert client.post(path, data=form).status_code == 403, "no token"
        assert client.post(path, data={**form, "csrf": "x" * 32}).status_code == 403, "a token not the cookie's"
        cross = client.post(path, data={**form, "csrf": token.group(1)}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403, "cross-site"
        site = client.post(path, data={**form, "csrf": token.group(1)}, headers={"Sec-Fetch-Site": "cross-site"})
        assert site.status_code == 403
        assert client.post(path, json=form).status_code == 415
    assert client.get(f"/api/v1/reports/{report_id}").json()["title"] == HOSTILE_TITLE
    deleted = client.post(f"/reports/{report_id}/delete", data={"csrf": token.group(1)}, follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/reports?project=sec"
    assert client.get(f"/api/v1/reports/{report_id}").status_code == 404


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    database = _database()
    store = Store(SESSION_STORE_URL, database)
    keys = KeyStore(store)
    _, alpha = keys.create("alpha", "alice")
    _, beta = keys.create("beta")
    store.close()
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, require_keys=True,
                               spool_dir=tmp_path / "wal"))  # fmt: skip
    with collector_client(parts.app) as test_client:
        yield test_client, {"alpha": alpha, "beta": beta}
    parts.close()


def test_a_project_key_sees_and_edits_only_its_own_reports(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    alpha, beta = ({"Authorization": f"Bearer {keys[k]}"} for k in ("alpha", "beta"))
    assert client.post("/api/v1/reports", json={"title": "t"}).status_code == 401
    made = client.post("/api/v1/reports", json={"title": "alpha's", "blocks": []}, headers=alpha)
    assert made.status_code == 201 and made.json()["project"] == "alpha" and made.json()["author"].startswith("alice (")
    report_id = made.json()["report_id"]
    assert client.post("/api/v1/reports", json={"project": "alpha", "title": "t"}, headers=beta).status_code == 403
    for answer in (client.get(f"/api/v1/reports/{report_id}", headers=beta),
                   client.put(f"/api/v1/reports/{report_id}", json={"title": "mine"}, headers=beta),
                   client.delete(f"/api/v1/reports/{report_id}", headers=beta),
                   client.get(f"/reports/{report_id}", headers=beta),
                   client.get(f"/reports/{report_id}/export", headers=beta)):  # fmt: skip
        assert answer.status_code == 404, answer.text
    assert client.get("/api/v1/reports", params={"project": "alpha"}, headers=beta).status_code == 403
    assert client.get("/api/v1/reports", headers=beta).json()["reports"] == []
    assert client.get(f"/api/v1/reports/{report_id}", headers=alpha).json()["title"] == "alpha's"
    page = client.get(f"/reports/{report_id}", headers=alpha)
    assert page.status_code == 200 and "alpha&#39;s" in page.text
