"""The run page shows what a run logged besides numbers: charts drawn from their specs, tables a page
at a time and sortable, images / audio / masks served from the run's media route, histograms,
text, alerts, a watched model's graph, a step picker per key; hostile captions and HTML stay
inert. A real `tracehouse serve`; the run is logged by the SDK through it (blobs included)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import run_python
from servers import Collector, free_port

SCRIPT = r"""
import io, math, struct, wave
import numpy as np
import tracehouse as th

rng = np.random.default_rng(0)
run = th.init(project="media", name="everything")
for step in range(3):
    run.log({"sample": th.Image(np.full((8, 12, 3), 60 * step, dtype=np.uint8), caption=f"step {step} <b>bold</b>"),
             "loss": 1.0 / (step + 1)})
rows = [[i, float(i * i % 7), f"name {i}"] for i in range(30)]
table = th.Table(columns=["i", "score", "label"], data=rows)
points = [[i, i * 0.5 + (s == "val"), s] for i in range(5) for s in ("train", "val")]
curve = th.Table(columns=["x", "y", "split"], data=points)
bars = th.Table(columns=["class", "acc"], data=[["cat", 0.9], ["dog<script>alert(1)</script>", 0.7]])
buffer = io.BytesIO()
with wave.open(buffer, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(8000)
    out.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(i / 5))) for i in range(800)))
mask = np.zeros((8, 12), dtype=np.uint8); mask[2:5, 3:9] = 1
run.log({
    "scores": table,
    "curve": th.plot.line(curve, "x", "y", stroke="split", title="Curve"),
    "bars": th.plot.bar(bars, "class", "acc", title="Accuracy"),
    "cm": th.plot.confusion_matrix(y_true=[0, 1, 1, 0], preds=[0, 1, 0, 0], class_names=["no", "yes"]),
    "weights": th.Histogram(rng.normal(size=500)),
    "note": "plain <script>alert('text')</script> text",
    "page": th.Html("<script>alert('html')</script><p>hi</p>"),
    "voice": th.Audio(np.frombuffer(buffer.getvalue()[44:], dtype="<i2").astype("float32") / 32768, sample_rate=8000),
    "masked": th.Image(np.zeros((8, 12, 3), dtype=np.uint8),
                       masks={"pred": {"mask_data": mask, "class_labels": {1: "thing"}}}),
    "series": th.plot.line_series([0, 1, 2], [[1, 2, 3], [3, 2, 1]], keys=["up", "down"], title="Two"),
    "spread": th.plot.scatter(curve, "x", "y", title="Spread"),
    "roc": th.plot.roc_curve([0, 1, 1, 0], [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4]], labels=["no", "yes"]),
    "pictures": th.Table(columns=["id", "img"], data=[[1, th.Image(np.ones((4, 4, 3), dtype=np.uint8) * 200)]]),
})
run.alert("Loss spike", "loss <went> up", level=th.AlertLevel.WARN)
run.finish()
th.flush()
print(run.id)
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    collector = Collector(tmp_path_factory.mktemp("values") / "collector-data", free_port())
    collector.start()
    try:
        data = tmp_path_factory.mktemp("sdk")
        result = run_python(SCRIPT, env={"TRACEHOUSE_ENDPOINT": collector.url, "TRACEHOUSE_DIR": str(data),
                                         "TRACEHOUSE_SILENT": "1"}, clean=True, timeout=180)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        yield collector.url, result.stdout.strip().splitlines()[-1]
    finally:
        collector.stop(signal.SIGTERM)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _page(base: str, run_id: str, query: str = "") -> str:
    status, _, body = _get(f"{base}/runs/{run_id}?project=media{query}")
    assert status == 200, body[:2000]
    return body.decode()


def _section(page: str, key: str) -> str:
    found = re.search(rf'<section class="value" data-key="{re.escape(key)}".*?</section>', page, re.S)
    assert found, f"no section for {key}"
    return found.group(0)


def test_every_logged_value_has_its_view_and_hostile_text_stays_text(logged: tuple[str, str]) -> None:
    base, run_id = logged
    page = _page(base, run_id)
    types = dict(re.findall(r'<section class="value" data-key="([^"]+)" data-type="([^"]+)"', page))
    assert types == {"sample": "image", "scores": "table", "curve": "table", "bars": "table", "cm": "table",
                     "weights": "histogram", "note": "text", "page": "html", "voice": "audio", "masked": "image",
                     "pictures": "table", "alert/Loss spike": "alert", "series": "table", "spread": "table",
                     "roc": "table"}  # fmt: skip
    series = _section(page, "series")
    assert 'data-series="up"' in series and 'data-series="down"' in series
    assert "<circle" in _section(page, "spread") and "<polyline" not in _section(page, "spread")
    assert 'data-series="yes"' in _section(page, "roc")
    assert "<script>" not in page.split("</style>", 1)[1].replace('<script src="/static/ui.js" defer></script>', "")
    assert "dog&lt;script&gt;alert(1)&lt;/script&gt;" in page and "step 2 &lt;b&gt;bold&lt;/b&gt;" in page
    curve = _section(page, "curve")
    assert 'data-series="train"' in curve and 'data-series="val"' in curve and "<polyline" in curve
    assert 'data-label="cat" data-value="0.9"' in _section(page, "bars")
    cm = _section(page, "cm")
    assert 'data-actual="yes" data-predicted="no">1</td>' in cm and 'data-actual="no" data-predicted="no">2</td>' in cm
    assert _section(page, "weights").count('<rect class="bar"') == 64
    assert 'class="alert alert-warn"><b>WARN</b> Loss spike: loss &lt;went&gt; up' in page
    assert "<audio controls" in _section(page, "voice") and "overlays: pred" in _section(page, "masked")
    scores = _section(page, "scores")
    assert "rows 1–25 of 30" in scores and scores.count("<tr>") == 26
    second = _section(_page(base, run_id, "&page.scores=1"), "scores")
    assert "rows 26–30 of 30" in second and "name 29" in second
    by_score = _section(_page(base, run_id, "&sort.scores=score&desc.scores=1"), "scores")
    first_cells = re.findall(r"<tr><td>(\d+)</td><td>([\d.]+)</td>", by_score)
    assert [float(s) for _, s in first_cells] == sorted((float(i * i % 7) for i in range(30)), reverse=True)[:25]
    sample = _section(page, "sample")
    assert 'step <b class="step-shown">2</b> (3 of 3)' in sample and 'class="step-previous"' in sample
    assert 'class="step-slider" min="0" max="2" value="2"' in sample and "at.sample=STEP" in sample
    summary = page.split('id="summary"', 1)[1].split("</table>", 1)[0]
    assert "line chart: 10 rows × 3 columns" in summary and "image 12×8 png" in summary and "_type" not in summary
    earlier = _section(_page(base, run_id, "&at.sample=0"), "sample")
    assert 'step <b class="step-shown">0</b> (1 of 3)' in earlier and "step 0 &lt;b&gt;" in earlier


def test_the_media_route_serves_only_the_runs_blobs_with_safe_types(logged: tuple[str, str]) -> None:
    base, run_id = logged
    page = _page(base, run_id)
    image = re.search(r'<img src="([^"]+)"', _section(page, "sample")).group(1).replace("&amp;", "&")
    status, headers, body = _get(base + image)
    assert status == 200 and headers["content-type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert headers["x-content-type-options"] == "nosniff" and "sandbox" in headers["content-security-policy"]
    html_link = re.search(r'<a class="download" href="([^"]+)"', _section(page, "page")).group(1).replace("&amp;", "&")
    status, headers, body = _get(base + html_link)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"].startswith("attachment") and b"<script>alert('html')" in body
    audio = re.search(r'<audio controls preload="none" src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert _get(base + audio)[1]["content-type"] == "audio/wav"
    digest = image.split("/media/")[1].split("?")[0]
    assert _get(f"{base}/runs/nosuchrun/media/{digest}?project=media")[0] == 404
    assert _get(f"{base}/runs/{run_id}/media/{'0' * 64}?project=media")[0] == 404
    assert _get(f"{base}/runs/{run_id}/media/not-a-digest?project=media")[0] == 400
    status, _, body = _get(f"{base}/runs/{run_id}?project=media&at.sample=7")
    assert status == 404 and b"was not logged at step 7" in body
    assert _get(f"{base}/runs/{run_id}?project=media&page.scores=x")[0] == 400
    twin = json.loads(_get(f"{base}/api/v1/ui/runs/{run_id}?project=media")[2])
    assert {v["key"]: v["table"]["total"] for v in twin["values"] if "table" in v}["scores"] == 30


def test_the_page_in_a_browser_loads_the_media_and_runs_no_logged_script(logged: tuple[str, str]) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("needs /usr/bin/chromium")
    base, run_id = logged
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        dialogs: list[Any] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/runs/{run_id}?project=media")
        page.wait_for_load_state("networkidle")
        widths = page.eval_on_selector_all("section.value img", "els => els.map(e => e.naturalWidth)")
        assert len(widths) >= 3 and all(w > 0 for w in widths)  # the sample, the mask, the table's image cell
        page.click('section[data-key="scores"] a.page-next')
        assert "rows 26–30 of 30" in page.inner_text('section[data-key="scores"]')
        page.click('section[data-key="sample"] a.step-first')
        assert "step 0 (1 of 3)" in page.inner_text('section[data-key="sample"]')
        slider = 'section[data-key="sample"] input.step-slider'
        with page.expect_navigation():  # the slider: letting go at the middle opens step 1
            page.eval_on_selector(slider, "s => { s.value = 1; s.dispatchEvent(new Event('input')); "
                                          "s.dispatchEvent(new Event('change')); }")  # fmt: skip
        assert "at.sample=1" in page.url and "step 1 (2 of 3)" in page.inner_text('section[data-key="sample"]')
        assert page.eval_on_selector(slider, "s => s.value") == "1"
        shots = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "run-values.png"), full_page=True)
        browser.close()
    assert dialogs == []
