"""The trace pages in headless Chromium (Debian's `chromium`, driven by Playwright) over a real
`tracehouse serve`: sort by a column, page forward and back, filter errors, open a failed trace's
stack trace and retrieved documents, add a score with the form and see it, walk sessions and users.
Screenshots go to test-artifacts/screenshots/ (not committed)."""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import Any, Iterator

import pytest
from browser_env import CHROMIUM, SHOTS, Page, require_browser, sync_playwright
from browser_env import FLAGS as _FLAGS
from servers import Collector, free_port
from traces_seed import HOSTILE, PROJECT, STACK, seed_traces, trace_id

require_browser()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    collector = Collector(tmp_path_factory.mktemp("ui-traces") / "collector-data", free_port())
    collector.start()

    def send(path: str, body: bytes, content_type: str) -> Any:
        request = urllib.request.Request(collector.url + path, data=body, headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}") if "json" in content_type else answer.read()

    try:
        yield collector.url, seed_traces(lambda path, payload: send(path, json.dumps(payload).encode(),
                                                                    "application/json"),
                                         lambda body: send("/v1/traces", body, "application/x-protobuf"))  # fmt: skip
    finally:
        collector.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def page(served: tuple[str, dict[str, Any]]) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        opened = browser.new_page(viewport={"width": 1300, "height": 900})
        yield opened
        browser.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _rows(page: Page) -> list[str]:
    return [str(row.get_attribute("data-trace")) for row in page.locator("tr.trace-row").all()]


def _durations(page: Page) -> list[float]:
    return [float(cell.inner_text()) for cell in page.locator("tr.trace-row td:nth-child(3)").all()]


def test_sorting_and_paging_both_ways(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page.goto(f"{url}/traces?project={PROJECT}&limit=5")
    _shot(page, "traces-list")
    assert page.inner_text("#total-traces") == "23" and page.inner_text("#total-errors") == "3"
    assert len(_rows(page)) == 5 and page.locator("#prev-page").count() == 0
    page.click("#sort-duration")
    page.wait_for_url("**sort=duration**")
    first = _durations(page)
    assert first == sorted(first, reverse=True) and first[0] == pytest.approx(250.0)
    page.click("#sort-duration")  # again: ascending
    page.wait_for_url("**order=asc**")
    ascending = _durations(page)
    assert ascending == sorted(ascending) and ascending[0] < 100.0 == ascending[1]  # the OTLP trace is quickest
    _shot(page, "traces-sorted")
    pages = [_rows(page)]
    for _ in range(2):
        page.click("#next-page")
        page.wait_for_load_state()
        pages.append(_rows(page))
        assert _durations(page) == sorted(_durations(page)) and _durations(page)[0] >= ascending[-1]
    assert len({t for p in pages for t in p}) == 15  # three pages, no trace twice
    _shot(page, "traces-page-3")
    page.click("#prev-page")
    page.wait_for_load_state()
    assert _rows(page) == pages[1]
    page.click("#prev-page")
    page.wait_for_load_state()
    assert _rows(page) == pages[0] and page.locator("#prev-page").count() == 0
    page.check("#only-errors")
    page.click("text=filter")
    page.wait_for_url("**error=1**")
    assert len(_rows(page)) == 3 and page.inner_text("#total-traces") == "3"
    assert "sort=duration" in page.url  # the filter keeps the sort
    _shot(page, "traces-errors")


def test_failed_trace_shows_its_stack_trace_and_documents(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    failing = seeded["failing"][0]
    page.goto(f"{url}/traces?project={PROJECT}&error=1")
    page.click(f"tr.trace-row[data-trace='{failing}'] a")
    page.wait_for_selector("#trace-totals")
    assert page.inner_text("#trace-errors") == "1" and page.inner_text("#trace-spans") == "3"
    page.click("#waterfall a:text('generate')")
    page.wait_for_selector("#span-exceptions")
    assert page.inner_text("#span-exceptions .exc-type") == "ValueError"
    assert page.inner_text("#span-exceptions pre.stacktrace").strip() == STACK.strip()  # shown as text
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    _shot(page, "trace-stacktrace")
    page.click("#waterfall a:text('retrieve')")
    page.wait_for_selector("#documents")
    documents = page.locator("#documents li.doc")
    assert documents.count() == 2
    assert documents.nth(0).locator(".doc-id").inner_text() == "doc-4-1"
    assert documents.nth(0).locator(".doc-score").inner_text() == "0.92"
    assert "atlas.pdf" in documents.nth(0).locator(".doc-metadata").inner_text()
    assert documents.nth(1).locator(".doc-content").inner_text() == f"{HOSTILE} hostile document"
    _shot(page, "trace-documents")


def test_adding_a_score_from_the_trace_page(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    trace = trace_id(12)
    page.goto(f"{url}/traces/{trace}?project={PROJECT}")
    assert "no scores on this trace" in page.inner_text("#score-table")
    page.fill("#score-form input[name=name]", "helpful")
    page.fill("#score-form input[name=value]", "0.5")
    page.fill("#score-form input[name=comment]", "good <b>answer</b>")
    page.click("#add-score")
    page.wait_for_url(f"**/traces/{trace}**#scores")
    rows = page.locator("#score-table tr.score-row")
    assert rows.count() == 1 and "helpful" in rows.first.inner_text()
    assert "good <b>answer</b>" in rows.first.inner_text()  # the comment as text
    assert page.inner_text(".score-card b") == "0.5"
    _shot(page, "trace-scored")
    page.goto(f"{url}/traces?project={PROJECT}&limit=100")
    assert page.inner_text(f"tr.trace-row[data-trace='{trace}'] td.scores") == "helpful: 0.5"
    page.click("a.score-sort[data-score='helpful']")  # sort by the score: 1.0 (trace 1), then 0.5 (this one)
    page.wait_for_url("**sort=score%3Ahelpful**")
    assert _rows(page)[:2] == [trace_id(1), trace]
    assert "▼" in page.inner_text("a.score-sort[data-score='helpful']")
    _shot(page, "traces-sorted-by-score")
    page.click("a.score-sort[data-score='helpful']")  # again: ascending, unscored traces first
    page.wait_for_url("**order=asc**")
    assert _rows(page)[-2:] == [trace, trace_id(1)]


def test_sessions_and_users_pages(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page.goto(f"{url}/traces?project={PROJECT}")
    page.click("header a:text('Sessions')")
    page.wait_for_selector("#sessions")
    _shot(page, "sessions")
    assert page.locator("tr.group-row").count() == 4
    page.click("tr.group-row[data-id='sess-a'] a")
    page.wait_for_selector("#member-traces-list")
    turns = page.locator("li.trace-turn")
    assert turns.count() == 8 and page.inner_text("#member-traces") == "8"
    assert turns.first.locator(".turn-input").inner_text() == "question 0"
    _shot(page, "session")
    page.click("a.related:text('alice')")
    page.wait_for_selector("#member-traces-list")
    assert "User" in page.inner_text("h1") and page.locator("li.trace-turn").count() == 8
    _shot(page, "user")
    page.click("header a:text('Users')")
    page.wait_for_selector("#users")
    assert {r.get_attribute("data-id") for r in page.locator("tr.group-row").all()} == {"alice", "bob", "carol"}
    _shot(page, "users")
    page.goto(f"{url}/sessions?project={PROJECT}&limit=3")  # page by 3: 4 sessions make two pages
    first = [str(r.get_attribute("data-id")) for r in page.locator("tr.group-row").all()]
    page.click("#next-page")
    page.wait_for_url("**after=**")
    second = [str(r.get_attribute("data-id")) for r in page.locator("tr.group-row").all()]
    assert len(first) == 3 and len(second) == 1 and not set(first) & set(second)
    assert page.locator("#next-page").count() == 0
    page.click("#prev-page")
    page.wait_for_url("**before=**")
    assert [str(r.get_attribute("data-id")) for r in page.locator("tr.group-row").all()] == first
    page.goto(f"{url}/sessions/nope?project={PROJECT}")
    assert "no session 'nope'" in page.inner_text("main")
