"""The web UI in headless Chromium (Debian's `chromium`, driven by Playwright): a real `tracehouse
serve` over a seeded store; each page is loaded, checked against the seeded numbers, clicked
through, and saved as a screenshot in test-artifacts/screenshots/ (not committed)."""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import Any, Iterator

import pytest
from browser_env import CHROMIUM, SHOTS, Page, require_browser, sync_playwright
from browser_env import FLAGS as _FLAGS
from servers import Collector, free_port
from ui_seed import PROJECT, seed

require_browser()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    collector = Collector(tmp_path_factory.mktemp("ui") / "collector-data", free_port())
    collector.start()

    def post(path: str, payload: Any) -> Any:
        request = urllib.request.Request(collector.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        yield collector.url, seed(post)
    finally:
        collector.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def browser_page(served: tuple[str, dict[str, Any]]) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        yield page
        browser.close()


def _open(page: Page, url: str, shot: str) -> None:
    page.goto(url)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)


def test_dashboard_shows_the_numbers_and_links_to_the_slowest_trace(
    browser_page: Page, served: tuple[str, dict[str, Any]]
) -> None:
    url, seeded = served
    page = browser_page
    _open(page, f"{url}/?project={PROJECT}&range=1h", "dashboard")
    assert page.inner_text("#calls") == "30"
    assert page.inner_text("#error-rate") == "6.7%"
    page.wait_for_selector("#latency[data-drawn='1'] canvas")
    p99 = page.evaluate("tracehouseCharts.latency.data[3].filter(v => v != null)")  # [x, p50, p95, p99]
    assert p99 and max(p99) <= 900.0
    page.select_option("#by", "model")
    page.click("text=show")
    page.wait_for_url("**by=model**")
    assert "gpt-4o-mini" in page.inner_text("#groups")
    page.locator("#slowest a.trace-link").first.click()  # the 900 ms call
    page.wait_for_selector("#span-detail")
    page.screenshot(path=str(SHOTS / "trace-from-dashboard.png"), full_page=True)
    assert seeded["slowest_trace"] in page.url and "900.0 ms" in page.inner_text("#span-detail")


def test_traces_filter_and_the_trace_view_renders_conversations_safely(
    browser_page: Page, served: tuple[str, dict[str, Any]]
) -> None:
    url, seeded = served
    page = browser_page
    _open(page, f"{url}/traces?project={PROJECT}", "traces")
    assert page.locator("tr.trace-row").count() == 10
    page.select_option("select[name=status]", "error")
    page.click("text=filter")
    page.wait_for_url("**status=error**")
    assert page.locator("tr.trace-row").count() == 2
    _open(page, f"{url}/traces/{seeded['xss_trace']}?project={PROJECT}", "trace")
    assert page.locator("#waterfall .row").count() == 3
    page.click("#waterfall a:text('generate')")
    page.wait_for_selector("#conversation")
    messages = page.locator("#conversation .msg")
    assert messages.count() == 2 and "<script>alert('x')</script>" in messages.nth(1).inner_text()
    assert page.evaluate("document.querySelectorAll('#conversation script').length") == 0  # text, not markup
    assert "110 out" in page.inner_text("#span-tokens") or "10 out" in page.inner_text("#span-tokens")
    page.screenshot(path=str(SHOTS / "trace-span.png"), full_page=True)


def test_runs_table_run_page_and_comparing_two_runs(browser_page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page = browser_page
    _open(page, f"{url}/runs?project={PROJECT}", "runs")
    assert page.locator("tr.run-row").count() == 6  # two runs and four sweep trials
    page.check("tr.run-row[data-run='run-a'] input[type=checkbox]")
    page.check("tr.run-row[data-run='run-b'] input[type=checkbox]")
    page.click("#compare")
    page.wait_for_url("**/runs/compare**")
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    page.wait_for_selector("#metric-loss[data-drawn='1'] canvas")
    columns = page.evaluate("tracehouseCharts['metric-loss'].data")  # [steps, run-a, run-b]
    assert len(columns) == 3 and len([v for v in columns[1] if v is not None]) == 20
    assert "0.1" in page.inner_text("#config-diff") and "0.01" in page.inner_text("#config-diff")
    _open(page, f"{url}/runs/run-a?project={PROJECT}&smooth=0.5", "run")
    page.wait_for_selector("#metric-loss[data-drawn='1'] canvas")
    smoothed = page.evaluate("tracehouseCharts['metric-loss'].data[1]")
    assert len(smoothed) == 20 and smoothed[0] == pytest.approx(0.1)
    assert page.inner_text("#run-state") == "finished"


def test_sweep_page_plots_trials_and_names_the_best(browser_page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    page = browser_page
    _open(page, f"{url}/sweeps?project={PROJECT}", "sweeps")
    page.click(f"text={seeded['sweep_id']}")
    page.wait_for_selector("#parallel")
    page.screenshot(path=str(SHOTS / "sweep.png"), full_page=True)
    assert page.locator("#parallel polyline.trial").count() == 4
    page.wait_for_selector("#metric-by-trial[data-drawn='1'] canvas")
    assert len(page.evaluate("tracehouseCharts['metric-by-trial'].data[1]")) == 4
    assert "lr=0.01, opt=adam" in page.inner_text("#best")
    _open(page, f"{url}/traces?project={PROJECT}&min_ms=abc", "bad-input")
    assert "min_ms: expected a number" in page.inner_text("#error")
