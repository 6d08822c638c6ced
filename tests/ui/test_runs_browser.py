"""The runs table in headless Chromium (Debian's `chromium`, driven by Playwright) over runs the SDK
logged through a real collector: pick columns, sort, filter with the form, group, compare two runs,
and watch a running run's cells change while the test logs a step. Screenshots go to
test-artifacts/screenshots/ (not committed)."""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL
from servers import InProcessCollector

import tracehouse as th

pytest.importorskip("fastapi")
from browser_env import CHROMIUM, SHOTS, Page, require_browser, sync_playwright
from browser_env import FLAGS as _FLAGS

from tracehouse.collector.server import ServeOptions
from tracehouse.tracking.run import SUMMARY_SECONDS

PROJECT = "browse"

require_browser()

FINISHED = [  # name, config, final loss, accuracy
    ("adam-fast", {"opt": "adam", "lr": 0.1, "batch": 16}, 0.4, 0.7),
    ("adam-slow", {"opt": "adam", "lr": 0.001, "batch": 128}, 0.9, 0.55),
    ("sgd-fast", {"opt": "sgd", "lr": 0.1, "batch": 16}, 0.25, 0.8),
    ("sgd-slow", {"opt": "sgd", "lr": 0.01, "batch": 32}, 1.2, 0.45),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("runs-browser")
    database = f"runs_browser_{os.getpid()}_{time.monotonic_ns()}"
    options = ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project=PROJECT,
                           spool_dir=base / "wal", blob_location=str(base / "blobs"))  # fmt: skip
    with InProcessCollector(options) as collector:
        th.configure(endpoint=collector.url, data_dir=str(base / "sdk"), project=PROJECT, silent=True)
        try:
            ids: dict[str, Any] = {}
            for name, config, loss, acc in FINISHED:
                with th.init(project=PROJECT, name=name, config=config, tags=[str(config["opt"])]) as run:
                    for step in range(5):
                        run.log({"loss": loss * (5 - step), "acc": acc})
                ids[name] = run.id
            live = th.init(project=PROJECT, name="live-run", config={"opt": "adam", "lr": 0.05, "batch": 64})
            time.sleep(SUMMARY_SECONDS)  # the SDK writes a running run's summary at most this often
            live.log({"loss": 0.95, "acc": 0.5})
            th.sync()
            yield collector.url, {**ids, "live": live}
            live.finish()
        finally:
            th.configure()


@pytest.fixture(scope="module")
def page(served: tuple[str, dict[str, Any]]) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        opened = browser.new_page(viewport={"width": 1400, "height": 900})
        yield opened
        browser.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _order(page: Page) -> list[str]:
    return [page.locator("tr.run-row").nth(i).locator("td[data-col=name]").inner_text()
            for i in range(page.locator("tr.run-row").count())]  # fmt: skip


def test_pick_columns_sort_filter_group_and_compare(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page.goto(f"{url}/runs?project={PROJECT}")
    _shot(page, "runs-table")
    headers = page.locator("#runs th[data-col]").all_inner_texts()
    assert headers[:5] == ["name", "state", "created", "duration", "tags"] and "summary.loss" in headers
    assert page.locator("tr.run-row").count() == 5
    page.click("#column-picker summary")
    page.uncheck("#column-picker input[value='duration']")
    page.uncheck("#column-picker input[value='config.batch']")
    page.check("#column-picker input[value='run_id']")
    page.click("#apply-columns")
    page.wait_for_url("**cols=**")
    headers = page.locator("#runs th[data-col]").all_inner_texts()
    assert "id" in headers and "duration" not in headers and "config.batch" not in headers
    page.click("#runs th[data-col='summary.loss'] a")  # ascending
    page.wait_for_url("**sort=summary.loss**")
    assert _order(page) == ["sgd-fast", "adam-fast", "adam-slow", "live-run", "sgd-slow"]  # live: 0.95
    page.click("#runs th[data-col='summary.loss'] a")  # again: descending
    page.wait_for_url("**desc=1**")
    assert _order(page) == ["sgd-slow", "live-run", "adam-slow", "adam-fast", "sgd-fast"]
    assert "id" in page.locator("#runs th[data-col]").all_inner_texts()  # the chosen columns stay
    _shot(page, "runs-sorted")
    page.select_option("#filter-state", "finished")
    page.fill("#c-conditions input[name=ck]", "opt")
    page.select_option("#c-conditions select[name=cop]", "=")
    page.fill("#c-conditions input[name=cv]", "adam")
    page.click("#apply-filters")
    page.wait_for_url("**ck=opt**")
    assert _order(page) == ["adam-slow", "adam-fast"]  # the sort kept too
    assert '"config.opt"' in page.inner_text("#filter-as-json")
    _shot(page, "runs-filtered")
    page.click("text=clear")
    page.select_option("#group-by", "config.opt")
    page.click("#apply-filters")
    page.wait_for_url("**group=config.opt**")
    assert page.locator("#groups tr.group-summary").count() == 2
    assert page.locator("#runs tr.group-row").all_inner_texts() == ["config.opt = adam", "config.opt = sgd"]
    sgd_mean = page.inner_text("#groups tr[data-group='sgd'] td[data-stat='summary.loss:mean']")
    assert sgd_mean == "0.725"  # (0.25 + 1.2) / 2
    _shot(page, "runs-grouped")
    page.click("#runs tr.group-row:has-text('config.opt = sgd')")  # folds the group's rows away
    assert [r.is_visible() for r in page.locator("tr.run-row").all()] == [True, True, True, False, False]
    page.click("#runs tr.group-row:has-text('config.opt = sgd')")
    assert page.locator("tr.run-row:visible").count() == 5
    page.check("tr.run-row:has-text('adam-fast') input[type=checkbox]")
    page.check("tr.run-row:has-text('sgd-slow') input[type=checkbox]")
    page.click("#compare")
    page.wait_for_url("**/runs/compare**")
    assert page.locator("#config-diff tr.differs").all_inner_texts()[0].startswith("batch")
    assert page.locator("#config-diff tr.differs").count() == 3
    assert page.locator("#summary-diff tr.differs").count() == 2
    page.wait_for_selector("#metric-loss canvas")  # the overlaid loss, drawn by uPlot, one series per run
    legend = page.locator("#metric-loss .u-legend").inner_text()
    assert "adam-fast" in legend and "sgd-slow" in legend
    page.click("#toggle-differences")
    page.wait_for_url("**diff=1**")
    assert page.locator("#config-diff tr.same").count() == 0
    _shot(page, "runs-compare")


def test_a_running_runs_cells_refresh_live_until_it_finishes(page: Page, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    live = seeded["live"]
    page.goto(f"{url}/runs?project={PROJECT}&cols=state&cols=summary.loss&cols=summary.acc")
    row = f"tr.run-row[data-run='{live.id}']"
    assert page.inner_text(f"{row} td[data-col=state]") == "running"
    assert page.inner_text(f"{row} td[data-col='summary.loss']") == "0.95"
    assert page.get_attribute("#runs", "data-polling") == "on"
    time.sleep(SUMMARY_SECONDS)
    live.log({"loss": 0.123, "acc": 0.75})
    th.sync()
    page.wait_for_function(
        "sel => document.querySelector(sel).textContent === '0.123'", arg=f"{row} td[data-col='summary.loss']"
    )
    assert page.inner_text(f"{row} td[data-col='summary.acc']") == "0.75"
    _shot(page, "runs-live")
    live.finish()
    th.sync()
    page.wait_for_function("sel => document.querySelector(sel).textContent === 'finished'",
                           arg=f"{row} td[data-col=state]")  # fmt: skip
    page.wait_for_function("() => document.getElementById('runs').dataset.polling === 'off'")
    _shot(page, "runs-live-finished")
