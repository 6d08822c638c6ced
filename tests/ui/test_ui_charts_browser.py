"""The uPlot charts in headless Chromium (Debian's `chromium` through Playwright) against a real
`tracehouse serve`: they draw (a canvas), hover shows values, a drag zooms and reset returns to the
window, the log toggle switches the scale, run charts switch their x axis; no console error and no
CSP violation on any page; without JavaScript the values table remains. Screenshots go to
test-artifacts/screenshots/charts-*.png."""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import TYPE_CHECKING, Any, Iterator

import pytest
from servers import Collector, free_port
from test_ui_browser import _FLAGS, CHROMIUM, SHOTS, Page, sync_playwright
from ui_charts_seed import PROJECT, seed_charts

if TYPE_CHECKING:
    from playwright.sync_api import Browser

_WATCH = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
          "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    collector = Collector(tmp_path_factory.mktemp("charts") / "collector-data", free_port())
    collector.start()

    def post(path: str, payload: Any) -> Any:
        request = urllib.request.Request(collector.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        yield collector.url, seed_charts(post)
    finally:
        collector.stop(signal.SIGTERM)


class Watched:
    """A page whose console errors, uncaught errors and CSP violations are collected."""

    def __init__(self, page: Page) -> None:
        self.page, self.errors = page, []  # type: list[str]
        page.add_init_script(_WATCH)
        page.on("console", lambda m: self.errors.append(f"console {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror {e}"))

    def open(self, url: str, ready: str, shot: str) -> None:
        self.page.goto(url)
        self.page.wait_for_selector(ready)
        self.page.screenshot(path=str(SHOTS / f"charts-{shot}.png"), full_page=True)

    def clean(self) -> None:
        violations = self.page.evaluate("window.__csp")
        assert violations == [] and self.errors == [], (violations, self.errors)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def watched(browser: Browser, served: tuple[str, dict[str, Any]]) -> Watched:
    return Watched(browser.new_page(viewport={"width": 1300, "height": 900}))


def _scale(page: Page, chart: str, key: str = "x") -> dict[str, float]:
    return page.evaluate(f"(() => {{ const s = tracehouseCharts[{chart!r}].scales[{key!r}]; "
                         "return {min: s.min, max: s.max, distr: s.distr}; })()")  # fmt: skip


def _drag(page: Page, chart: str, start: float, end: float) -> None:
    box = page.locator(f"#{chart} .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (start + end) / 2, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * end, y, steps=4)
    page.mouse.up()


def test_dashboard_charts_draw_hover_zoom_reset_and_log(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page = watched.page
    watched.open(f"{url}/?project={PROJECT}&range=1h", "#cost-chart[data-drawn='1']", "dashboard")
    for chart in ("latency", "p95-by-group", "calls-chart", "error-rate-chart", "tokens-chart", "cost-chart"):
        assert page.locator(f"#{chart} canvas").count() == 1, chart
    spec = json.loads(page.inner_text("#latency script.chart-spec"))
    whole = _scale(page, "latency")
    assert whole["min"] == pytest.approx(spec["window"][0]) and whole["max"] == pytest.approx(spec["window"][1])

    # hover: the legend shows the values under the cursor
    index, value, left = page.evaluate("""(() => {
        const u = tracehouseCharts["calls-chart"]; const i = u.data[1].findIndex((v) => v != null);
        return [i, u.data[1][i], u.valToPos(u.data[0][i], "x")]; })()""")
    box = page.locator("#calls-chart .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + left, box["y"] + box["height"] / 2)
    page.wait_for_function("tracehouseCharts['calls-chart'].cursor.idx != null")
    assert page.evaluate("tracehouseCharts['calls-chart'].cursor.idx") == index
    legend = page.locator("#calls-chart .u-legend .u-series").nth(1).locator(".u-value").inner_text()
    assert legend == str(int(value)) and legend != "—"
    page.screenshot(path=str(SHOTS / "charts-dashboard-hover.png"))

    # drag to zoom, then reset zoom
    _drag(page, "latency", 0.3, 0.6)
    zoomed = _scale(page, "latency")
    assert whole["min"] < zoomed["min"] < zoomed["max"] < whole["max"]
    assert page.get_attribute("#latency", "data-zoomed") == "1"
    page.screenshot(path=str(SHOTS / "charts-dashboard-zoomed.png"))
    page.click("#latency button.reset-zoom")
    assert _scale(page, "latency")["min"] == pytest.approx(whole["min"])
    assert _scale(page, "latency")["max"] == pytest.approx(whole["max"])
    _drag(page, "calls-chart", 0.2, 0.5)
    assert _scale(page, "calls-chart")["max"] < whole["max"]
    page.dblclick("#calls-chart .u-over")  # uPlot's own reset
    assert _scale(page, "calls-chart")["max"] == pytest.approx(whole["max"])

    # log toggle: 1 ms against 5 s starts log-scaled
    assert page.is_checked("#p95-by-group input.log-toggle") and _scale(page, "p95-by-group", "y")["distr"] == 3
    page.uncheck("#p95-by-group input.log-toggle")
    assert _scale(page, "p95-by-group", "y")["distr"] == 1 and page.get_attribute("#p95-by-group", "data-log") == "0"
    page.check("#p95-by-group input.log-toggle")
    assert _scale(page, "p95-by-group", "y")["distr"] == 3
    page.screenshot(path=str(SHOTS / "charts-dashboard-log.png"), full_page=True)
    watched.clean()


def test_seven_days_ticks_never_repeat(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    watched.open(f"{url}/?project={PROJECT}&range=7d", "#calls-chart[data-x-ticks]", "dashboard-7d")
    watched.page.wait_for_selector("#latency[data-x-ticks]")
    watched.page.screenshot(path=str(SHOTS / "charts-dashboard-7d.png"), full_page=True)
    for chart in ("latency", "calls-chart"):
        ticks = json.loads(watched.page.get_attribute(f"#{chart}", "data-x-ticks") or "[]")
        assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    watched.page.set_viewport_size({"width": 700, "height": 900})  # narrower: other ticks, still distinct
    watched.page.wait_for_timeout(400)
    ticks = json.loads(watched.page.get_attribute("#latency", "data-x-ticks") or "[]")
    assert len(set(ticks)) == len(ticks), ticks
    watched.page.set_viewport_size({"width": 1300, "height": 900})
    watched.clean()


def test_run_chart_switches_x_axis_and_log(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    page = watched.page
    watched.open(f"{url}/runs/{seeded['run']}?project={PROJECT}", "#metric-loss[data-drawn='1']", "run")
    assert page.get_attribute("#metric-loss", "data-x") == "epoch"  # loss's define_metric step metric
    assert page.evaluate("tracehouseCharts['metric-loss'].data[0].at(-1)") == 2
    page.select_option("#x-axis", "relative")
    page.wait_for_selector("#metric-loss[data-x='relative']")
    assert page.evaluate("tracehouseCharts['metric-loss'].data[0]") == pytest.approx([2.0 * s for s in range(30)])
    assert "x=relative" in page.url  # the view is in the URL
    page.select_option("#x-axis", "time")
    page.wait_for_selector("#metric-loss[data-x='time']")
    assert page.evaluate("tracehouseCharts['metric-loss'].scales.x.time") is True
    assert _scale(page, "metric-loss", "y")["distr"] == 3  # 10 down to 0.00037
    page.uncheck("#metric-loss input.log-toggle")
    assert _scale(page, "metric-loss", "y")["distr"] == 1
    page.select_option("#x-axis", "step")
    page.wait_for_selector("#metric-loss[data-x='step']")
    _drag(page, "metric-loss", 0.4, 0.8)
    assert _scale(page, "metric-loss")["min"] > 5
    page.click("#metric-loss button.reset-zoom")
    assert _scale(page, "metric-loss")["min"] == 0 and _scale(page, "metric-loss")["max"] == 29
    page.screenshot(path=str(SHOTS / "charts-run-step.png"), full_page=True)
    watched.clean()


def test_compare_chart_switches_x_axis(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    page = watched.page
    trial = seeded["trials"][0][0]
    compare = f"{url}/runs/compare?project={PROJECT}&ids={seeded['run']}&ids={trial}"
    watched.open(compare, "#metric-loss[data-drawn='1']", "compare")
    assert page.get_attribute("#metric-loss", "data-x") == "step"
    assert page.evaluate("tracehouseCharts['metric-loss'].data[0].length") == 30
    page.select_option("#x-axis", "relative")
    page.wait_for_selector("#metric-loss[data-x='relative']")
    xs = page.evaluate("tracehouseCharts['metric-loss'].data[0]")
    assert xs[0] == 0 and xs == sorted(xs) and xs[-1] == pytest.approx(58.0)  # the define-metric run: 2 s a step
    assert page.evaluate("tracehouseCharts['metric-loss'].data[1].filter(v => v != null).length") == 30
    assert "x=relative" in page.url
    page.select_option("#x-axis", "time")
    page.wait_for_selector("#metric-loss[data-x='time']")
    assert page.evaluate("tracehouseCharts['metric-loss'].scales.x.time") is True
    page.screenshot(path=str(SHOTS / "charts-compare-time.png"), full_page=True)
    watched.clean()


def test_sweep_charts_use_log_axes_for_log_parameters(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, seeded = served
    page = watched.page
    watched.open(f"{url}/sweeps/{seeded['sweep_id']}?project={PROJECT}", "#param-lr[data-drawn='1']", "sweep")
    assert _scale(page, "param-lr")["distr"] == 3 and _scale(page, "param-width")["distr"] == 1
    assert page.locator("#importance tr[data-param]").count() == 4
    assert "Spearman" in page.inner_text("#importance-method")
    assert page.locator("#parallel text[data-axis='lr'][data-scale='log']").count() == 1
    first = page.locator("#trials a.run-name").first.inner_text()
    assert first.strip() != ""  # an unnamed run is shown by its id
    watched.clean()


def test_the_page_catches_a_csp_violation_it_would_report(watched: Watched, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page = watched.page
    page.goto(f"{url}/?project={PROJECT}&range=1h")
    page.evaluate("(() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; "
                  "document.body.append(s); })()")  # fmt: skip
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None and "script-src" in page.evaluate("window.__csp")[0]
    watched.errors.clear()  # the refusal is logged as a console error too: expected here


def test_without_javascript_the_values_table_remains(browser: Browser, served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(f"{url}/?project={PROJECT}&range=1h")
    assert page.locator("#latency canvas").count() == 0
    page.click("#latency details.chart-values summary")
    rows = page.locator("#latency details.chart-values tr")
    assert rows.count() > 10 and "p99" in rows.first.inner_text()
    page.screenshot(path=str(SHOTS / "charts-no-script.png"), full_page=True)
    page.context.close()
