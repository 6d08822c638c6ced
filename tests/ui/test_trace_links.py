"""The trace view shows a span's links (each a link to the linked trace and span) and its trace state;
what they hold is shown as text, and a link id that is not a well-formed id is never made a page link."""

from __future__ import annotations

import os
import re
import time
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tracehouse.collector.server import ServeOptions, build

PROJECT = "links"
TRACE, LINKED_TRACE, LINKED_SPAN = "ab" * 16, "cd" * 16, "ef" * 8


def _span(span_id: str, **extra: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {"type": "span", "project": PROJECT, "name": f"s-{span_id[-2:]}", "trace_id": TRACE, "span_id": span_id,
            "parent_span_id": "", "start_ns": now - 5_000_000, "end_ns": now, "status": "ok", "status_message": "",
            "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {}, **extra}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=f"links_{os.getpid()}_{time.monotonic_ns()}",
                               spool_dir=tmp_path_factory.mktemp("links") / "wal"))  # fmt: skip
    links = [
        {"trace_id": LINKED_TRACE, "span_id": LINKED_SPAN, "trace_state": "l=1", "attributes": {"why": "retry"}},
        {"trace_id": LINKED_TRACE, "span_id": "", "trace_state": "", "attributes": {}},
        {"trace_id": "../../login?x=<b>", "span_id": "", "trace_state": "<script>alert(1)</script>",
         "attributes": {"k": "<img src=x onerror=alert(1)>"}},
    ]  # fmt: skip
    with collector_client(parts.app) as opened:
        answer = opened.post("/api/v1/records", json=[_span("00000000000000a1", links=links,
                                                            trace_state="vendor=v1")])  # fmt: skip
        assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
        yield opened
    parts.close()


def _detail(client: TestClient) -> str:
    page = client.get(f"/traces/{TRACE}", params={"project": PROJECT, "span": "00000000000000a1"})
    assert page.status_code == 200
    found = re.search(r'<section id="span-detail">.*?</section>', page.text, re.S)
    assert found
    return found.group(0)


def test_links_and_trace_state_show_on_the_span(client: TestClient) -> None:
    detail = _detail(client)
    assert '<code id="span-trace-state">vendor=v1</code>' in detail
    items = re.findall(r'<li class="span-link">(.*?)</li>', detail, re.S)
    assert len(items) == 3
    assert f'href="/traces/{LINKED_TRACE}?project={PROJECT}&amp;span={LINKED_SPAN}"' in items[0]
    assert "l=1" in items[0] and "why" in items[0] and "retry" in items[0]
    assert f'href="/traces/{LINKED_TRACE}?project={PROJECT}"' in items[1]


def test_hostile_link_content_is_text_and_never_a_link(client: TestClient) -> None:
    hostile = re.findall(r'<li class="span-link">(.*?)</li>', _detail(client), re.S)[2]
    assert "<a " not in hostile and "../../login" in hostile
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile
    assert "<img" not in hostile and "&lt;img" in hostile


def test_the_trace_json_holds_the_links(client: TestClient) -> None:
    spans = client.get(f"/api/v1/traces/{TRACE}", params={"project": PROJECT}).json()
    root = spans if "links" in spans else spans["spans"][0]
    assert [link["trace_id"] for link in root["links"]][:2] == [LINKED_TRACE, LINKED_TRACE]
    assert root["links"][0] == {"trace_id": LINKED_TRACE, "span_id": LINKED_SPAN, "trace_state": "l=1",
                                "attributes": {"why": "retry"}, "linkable": True}  # fmt: skip
    assert root["trace_state"] == "vendor=v1"
