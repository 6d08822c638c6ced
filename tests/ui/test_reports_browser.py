"""Reports in headless Chromium against a real `tracehouse serve` over a seeded store: a report written
through the editor (markdown and every panel kind, blocks added, moved and removed in the page), saved,
reloaded at its stable URL with its panels drawn, edited into an inline panel error, exported and the
file opened offline, then deleted. Screenshots go to test-artifacts/screenshots/ (not committed)."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from browser_env import CHROMIUM, FLAGS, SHOTS, Page, require_browser, sync_playwright
from servers import Collector, free_port
from ui_seed import PROJECT, seed

require_browser()
EVAL_RUN = "eval-browser"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    collector = Collector(tmp_path_factory.mktemp("reports-ui") / "collector-data", free_port())
    collector.start()

    def post(path: str, payload: Any) -> Any:
        request = urllib.request.Request(collector.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        seeded = seed(post)
        stamp = time.time_ns()
        post("/api/v1/records", [{"type": "run", "project": PROJECT, "run_id": EVAL_RUN, "name": "baseline",
                                  "state": "finished", "job_type": "eval", "config": {"dataset": "capitals"},
                                  "summary": {"exact_match.mean": 0.5, "error_rate": 0.25, "examples": 4,
                                              "errors": 1},
                                  "created_ns": stamp, "updated_ns": stamp, "heartbeat_ns": stamp,
                                  "version": stamp}])  # fmt: skip
        yield collector.url, seeded
    finally:
        collector.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _block(page: Page, kind: str) -> Any:
    return page.locator(f"#blocks fieldset.block-editor[data-type='{kind}']").last


def _write_report(page: Page, url: str, seeded: dict[str, Any]) -> str:
    """Through the editor: markdown, then each panel kind; a block moved and one removed in the page."""
    page.goto(f"{url}/reports?project={PROJECT}")
    _shot(page, "reports-list-empty")
    page.click("#new-report")
    page.wait_for_selector("form#report-editor[data-ready='1']")
    page.fill("#title", "Learning rate study")
    page.fill("#description", "Which lr wins, and what it costs to serve")
    _block(page, "markdown").locator("textarea").fill("## Findings\n\nThe **lower** learning rate wins.")
    page.click("#add-run_chart")
    chart = _block(page, "run_chart")
    chart.locator("[data-field=metric]").fill("loss")
    chart.locator("[data-field=runs]").fill("run-a, run-b")
    page.click("#add-latency_table")
    _block(page, "latency_table").locator("[data-field=by]").select_option("model")
    _block(page, "latency_table").locator("[data-field=range]").fill("1h")
    page.click("#add-runs_table")
    _block(page, "runs_table").locator("[data-field=columns]").fill("name, state, summary.loss, config.lr")
    _block(page, "runs_table").locator("[data-field=limit]").fill("5")
    page.click("#add-eval_summary")
    _block(page, "eval_summary").locator("[data-field=run_id]").fill(EVAL_RUN)
    page.click("#add-trace_link")
    _block(page, "trace_link").locator("[data-field=trace_id]").fill(seeded["slowest_trace"])
    _block(page, "trace_link").locator(".move-up").click()  # now before the eval summary
    page.click("#add-markdown")
    _block(page, "markdown").locator("textarea").fill("this block is removed before saving")
    _block(page, "markdown").locator(".remove").click()
    kinds = page.eval_on_selector_all("#blocks fieldset.block-editor", "sets => sets.map(s => s.dataset.type)")
    assert kinds == ["markdown", "run_chart", "latency_table", "runs_table", "trace_link", "eval_summary"]
    _shot(page, "report-editor")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/reports/[0-9a-f]{16}$"))
    return page.url.rsplit("/", 1)[1]


def _check_view(page: Page, seeded: dict[str, Any]) -> None:
    page.wait_for_selector("#report-chart-1[data-drawn='1'] canvas")
    assert page.inner_text("#report-title") == "Learning rate study"
    kinds = page.eval_on_selector_all("#blocks section.panel", "panels => panels.map(p => p.dataset.panel)")
    assert kinds == ["run_chart", "latency_table", "runs_table", "trace_link", "eval_summary"]
    assert "The lower learning rate wins." in page.inner_text("#block-0")
    assert page.evaluate("tracehouseCharts['report-chart-1'].series.length") == 3  # x and the two runs
    assert page.locator(".panel-latency_table tr.latency-row").count() == 3
    assert "gpt-4o-mini" in page.inner_text(".panel-latency_table")
    assert page.locator(".panel-runs_table tr.run-row").count() == 5
    assert "900.0 ms" in page.inner_text(".panel-trace_link .trace-card")
    assert page.locator(".panel-eval_summary tr.score-row").count() == 2
    assert page.locator(".panel-error").count() == 0
    page.click(".panel-trace_link .trace-link a")
    page.wait_for_selector("#waterfall")
    assert seeded["slowest_trace"] in page.url
    page.go_back()


def test_a_report_written_in_the_editor_saved_reloaded_exported_and_deleted(
    browser: Any, served: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, seeded = served
    context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    page = context.new_page()
    report_id = _write_report(page, url, seeded)
    page.reload()  # the stable URL, drawn again from the store
    _check_view(page, seeded)
    _shot(page, "report-view")

    with page.expect_download() as download_info:
        page.click("#export-report")
    download = download_info.value
    assert download.suggested_filename == f"report-learning-rate-study-{report_id}.html"
    exported = tmp_path / download.suggested_filename
    download.save_as(str(exported))
    text = exported.read_text()
    assert "http://" not in text and "https://" not in text and not re.search(r"\b(src|href)=", text)

    offline = browser.new_context(offline=True, viewport={"width": 1300, "height": 900})
    fetched: list[str] = []
    reader = offline.new_page()
    reader.on("request", lambda request: fetched.append(request.url))
    reader.goto(exported.as_uri())
    reader.wait_for_selector("#report-chart-1[data-drawn='1'] canvas")
    assert fetched == [exported.as_uri()], "the exported file loads nothing else"
    assert reader.locator(".panel-runs_table tr.run-row").count() == 5 and "900.0 ms" in reader.inner_text("body")
    _shot(reader, "report-export-offline")
    offline.close()

    page.goto(f"{url}/reports/{report_id}")
    page.click("#edit-report")
    page.wait_for_selector("form#report-editor[data-ready='1']")
    _block(page, "trace_link").locator("[data-field=trace_id]").fill("f" * 32)
    page.click("#save")
    page.wait_for_url(re.compile(rf".*/reports/{report_id}$"))
    assert "no trace " + "f" * 32 in page.inner_text(".panel-trace_link .panel-error")
    page.wait_for_selector("#report-chart-1[data-drawn='1'] canvas")  # the rest is drawn as before
    _shot(page, "report-panel-error")
    page.click("#versions summary")
    assert page.locator("#versions tr.version-row").count() == 2

    page.goto(f"{url}/reports?project={PROJECT}")
    assert page.locator(f"tr.report-row[data-report='{report_id}']").count() == 1
    _shot(page, "reports-list")
    page.goto(f"{url}/reports/{report_id}/edit")
    page.wait_for_selector("form#report-editor[data-ready='1']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    page.wait_for_url(re.compile(r".*/reports\?project=ui$"))
    assert page.locator(f"tr.report-row[data-report='{report_id}']").count() == 0
    context.close()


def test_two_editors_of_one_report_never_overwrite_each_other_unseen(
    browser: Any, served: tuple[str, dict[str, Any]]
) -> None:
    """Alice and Bob open the editor of one report; Alice saves first. Bob's save says who changed it and
    keeps his draft in the page; his second save replaces Alice's version, which stays in the history."""
    url, _ = served
    request = urllib.request.Request(f"{url}/api/v1/reports", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"project": PROJECT, "title": "Shared notes", "blocks": [
                                         {"type": "markdown", "text": "first draft"}]}).encode())  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        report_id = json.loads(answer.read())["report_id"]
    editors = []
    for who in ("alice", "bob"):
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/reports/{report_id}/edit")
        page.wait_for_selector("form#report-editor[data-ready='1']")
        page.fill("#title", f"Notes by {who}")
        _block(page, "markdown").locator("textarea").fill(f"{who} was here")
        editors.append((context, page))
    (alice_context, alice), (bob_context, bob) = editors
    alice.click("#save")
    alice.wait_for_url(re.compile(rf".*/reports/{report_id}$"))
    bob.click("#save")
    bob.wait_for_selector("#error")
    assert "was changed since version" in bob.inner_text("#error") and "Save again" in bob.inner_text("#error")
    assert bob.input_value("#title") == "Notes by bob"
    assert _block(bob, "markdown").locator("textarea").input_value() == "bob was here"
    _shot(bob, "report-edit-conflict")
    alice.reload()
    assert alice.inner_text("#report-title") == "Notes by alice"  # Bob's first save wrote nothing
    bob.click("#save")
    bob.wait_for_url(re.compile(rf".*/reports/{report_id}$"))
    assert bob.inner_text("#report-title") == "Notes by bob"
    bob.click("#versions summary")
    assert bob.locator("#versions tr.version-row").count() == 3
    alice_context.close()
    bob_context.close()
