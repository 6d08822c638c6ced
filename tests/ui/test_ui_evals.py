"""The evaluation and dataset pages over evaluations stored by `th.evals.evaluate` in another process
through a live `tracehouse serve`: their JSON twins, their HTML (hostile inputs and outputs escaped),
bad parameters, and in headless Chromium (Debian's `chromium` through Playwright) the eval list, an
eval, the compare page and a dataset clicked through, with screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest
from browser_env import CHROMIUM, HAVE_BROWSER, SHOTS, sync_playwright
from browser_env import FLAGS as _FLAGS
from eval_seed import HOSTILE_INPUT, HOSTILE_OUTPUT, PROJECT, seed_evals
from servers import Collector, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("evals-ui")
    collector = Collector(base / "collector-data", free_port())
    collector.start()
    try:
        yield collector.url, seed_evals(collector.url, base / "client-data")
    finally:
        collector.stop(signal.SIGTERM)


def _get(url: str, path: str, **params: Any) -> tuple[int, str]:
    query = urlencode({"project": PROJECT, **params})
    try:
        with urllib.request.urlopen(f"{url}{path}?{query}", timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _json(url: str, path: str, **params: Any) -> Any:
    status, body = _get(url, path, **params)
    assert status == 200, body
    return json.loads(body)


def test_the_eval_list_and_an_eval_hold_what_evaluate_stored(served: tuple[str, dict[str, Any]]) -> None:
    url, ids = served
    listed = _json(url, "/api/v1/ui/evals")
    assert [e["name"] for e in listed["evals"]] == ["doubling", "improved", "baseline"]
    baseline = next(e for e in listed["evals"] if e["run_id"] == ids["a"])
    assert (baseline["dataset"], baseline["examples"], baseline["errors"]) == ("capitals", 4, 1)
    assert baseline["aggregates"]["exact_match.pass_rate"] == pytest.approx(1 / 3)
    one = _json(url, f"/api/v1/ui/evals/{ids['a']}", sort="example")
    assert [r["example"] for r in one["examples"]] == ["es", "fr", "it", "xss"] and one["scores"] == [
        "exact_match", "string_similarity"]  # fmt: skip
    by = {r["example"]: r for r in one["examples"]}
    assert (by["es"]["input"], by["es"]["expected"], by["es"]["output"]) == ("Spain", "Madrid", "Barcelona")
    assert by["es"]["scores"]["exact_match"] is False and by["fr"]["scores"]["string_similarity"] == 1.0
    assert by["it"]["error"].startswith("RuntimeError: model <img") and by["it"]["scores"]["exact_match"] is None
    assert all(len(r["trace_id"]) == 32 for r in one["examples"])  # every example links to its trace
    worst = _json(url, f"/api/v1/ui/evals/{ids['a']}", sort="string_similarity", desc="0")["examples"]
    assert [r["example"] for r in worst] == ["es", "xss", "fr", "it"]  # scored ascending, the failed one last
    numbers = _json(url, f"/api/v1/ui/evals/{ids['c']}", page="1")
    assert (numbers["total"], numbers["pages"], len(numbers["examples"])) == (60, 2, 10)


def test_compare_and_datasets(served: tuple[str, dict[str, Any]]) -> None:
    url, ids = served
    compared = _json(url, "/api/v1/ui/evals/compare", a=ids["a"], b=ids["b"])
    verdicts = {r["example"]: r["verdict"] for r in compared["rows"]}
    assert verdicts == {"es": "fixed", "it": "fixed", "fr": "same", "xss": "same"}
    assert [r["verdict"] for r in compared["rows"]][:2] == ["fixed", "fixed"]  # changed examples first
    deltas = {g["name"]: g["delta"] for g in compared["aggregates"]}
    assert deltas["exact_match.pass_rate"] == pytest.approx(0.75 - 1 / 3) and deltas["error_rate"] == -0.25
    es = next(r for r in compared["rows"] if r["example"] == "es")
    assert es["deltas"]["exact_match"] == 1.0 and es["deltas"]["string_similarity"] > 0
    only = _json(url, "/api/v1/ui/evals/compare", a=ids["b"], b=ids["a"], only="changed")
    assert {r["verdict"] for r in only["rows"]} == {"broke"} and only["counts"]["broke"] == 2
    datasets = _json(url, "/api/v1/ui/datasets")["datasets"]
    assert [(d["name"], d["versions"], d["rows"]) for d in datasets] == [("capitals", 2, 5), ("doubles", 1, 60)]
    latest = _json(url, "/api/v1/ui/datasets/capitals")
    assert latest["version"] == 1 and [r["row"]["id"] for r in latest["rows"]][-1] == "de" and latest["evals"] == []
    first = _json(url, "/api/v1/ui/datasets/capitals", version="v0")
    assert first["total"] == 4 and {e["run_id"] for e in first["evals"]} == {ids["a"], ids["b"]}
    assert _json(url, "/api/v1/ui/datasets/doubles", page="1")["rows"][0]["index"] == 50


@pytest.mark.parametrize(
    "path, params, status, words",
    [
        ("/evals/nope", {}, 404, "no evaluation run &#39;nope&#39;"),
        ("/evals/{a}", {"sort": "colour"}, 400, "sort: no column &#39;colour&#39;"),
        ("/evals/{a}", {"page": "7"}, 400, "page: page 7 is past the last one (0)"),
        ("/evals/{a}", {"page": "-1"}, 400, "page: expected a page number"),
        ("/evals/compare", {"a": "{a}"}, 400, "b: choose two evaluations"),
        ("/evals/compare", {"a": "{a}", "b": "nope"}, 404, "no evaluation run &#39;nope&#39;"),
        ("/datasets/nope", {}, 404, "no dataset &#39;nope&#39;"),
        ("/datasets/capitals", {"version": "v9"}, 404, "has no version v9 (versions: v1, v0)"),
        ("/datasets/capitals", {"version": "newest"}, 400, "version: expected"),
        ("/evals/' OR 1=1 --", {}, 404, "no evaluation run"),
    ],
)  # fmt: skip
def test_bad_parameters_say_what_is_wrong(
    served: tuple[str, dict[str, Any]], path: str, params: dict[str, str], status: int, words: str
) -> None:
    url, ids = served
    filled = {k: v.format(**ids) for k, v in params.items()}
    answer_status, body = _get(url, path.format(**ids).replace(" ", "%20").replace("'", "%27"), **filled)
    assert answer_status == status and words in body, body[-800:]
    twin_status, twin = _get(url, "/api/v1/ui" + path.format(**ids).replace(" ", "%20").replace("'", "%27"), **filled)
    assert twin_status == status and "error" in json.loads(twin)


def test_the_pages_escape_hostile_inputs_outputs_and_errors(served: tuple[str, dict[str, Any]]) -> None:
    url, ids = served
    pages = {
        "list": _get(url, "/evals"), "eval": _get(url, f"/evals/{ids['a']}"),
        "compare": _get(url, "/evals/compare", a=ids["a"], b=ids["b"]), "datasets": _get(url, "/datasets"),
        "dataset": _get(url, "/datasets/capitals", version="v0"),
    }  # fmt: skip
    for name, (status, body) in pages.items():
        assert status == 200, (name, body[-500:])
        for raw in (HOSTILE_INPUT, HOSTILE_OUTPUT, "<b>bold</b>", "<img src=x"):
            assert raw not in body, (name, raw)
    eval_page = pages["eval"][1]
    assert "&lt;script&gt;alert(&#39;in&#39;)&lt;/script&gt;" in eval_page
    assert "&lt;script&gt;alert(&#39;out&#39;)&lt;/script&gt;" in eval_page and "&lt;b&gt;bold&lt;/b&gt;" in eval_page
    assert "model &lt;img src=x onerror=alert(1)&gt; overloaded" in eval_page
    assert 'href="/evals?project=ui-evals" class="active">Evals</a>' in eval_page
    assert pages["compare"][1].count('class="example-row verdict-fixed"') == 2
    assert '<td class="num up">-0.25</td>' in pages["compare"][1]  # a lower error rate is the better one
    assert "&lt;script&gt;alert(&#39;in&#39;)&lt;/script&gt;" in pages["dataset"][1]


def test_an_unknown_project_names_the_known_ones(served: tuple[str, dict[str, Any]]) -> None:
    url, _ = served
    status, body = _get(url, "/evals", project="nothing-here")
    assert status == 404 and "the projects are ui-evals" in body


@pytest.mark.skipif(not HAVE_BROWSER and not os.environ.get("CI"), reason="needs /usr/bin/chromium and playwright")
def test_in_chromium_list_eval_compare_and_dataset(served: tuple[str, dict[str, Any]]) -> None:
    url, ids = served
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{url}/?project={PROJECT}")
        page.click("header a:text('Evals')")
        page.wait_for_selector("#evals")
        page.screenshot(path=str(SHOTS / "evals.png"), full_page=True)
        assert page.locator("tr.eval-row").count() == 3
        page.click(f"tr.eval-row[data-run='{ids['a']}'] a.eval-link")
        page.wait_for_selector("#examples")
        page.screenshot(path=str(SHOTS / "eval.png"), full_page=True)
        assert page.locator("tr.example-row").count() == 4
        xss = page.locator("tr.example-row[data-example='xss'] td.cell").first
        assert xss.inner_text() == HOSTILE_INPUT  # shown as text
        assert page.evaluate("document.querySelectorAll('#examples script, #examples img').length") == 0
        page.click("a.sort[data-column='string_similarity']")  # descending first
        page.wait_for_url("**sort=string_similarity**")
        assert page.locator("tr.example-row").first.get_attribute("data-example") == "fr"
        page.locator("tr.example-row[data-example='es'] a.trace-link").click()
        page.wait_for_selector("#waterfall")
        assert "example" in page.inner_text("#waterfall")
        page.goto(f"{url}/evals?project={PROJECT}")
        page.select_option("#compare-a", ids["a"])
        page.select_option("#compare-b", ids["b"])
        page.click("#compare")
        page.wait_for_url("**/evals/compare**")
        page.screenshot(path=str(SHOTS / "eval-compare.png"), full_page=True)
        assert page.inner_text("#count-fixed") == "2"
        assert page.locator("tr.verdict-fixed").count() == 2
        assert page.locator("tr.example-row").first.get_attribute("data-verdict") == "fixed"
        page.click("#only-changed")
        page.wait_for_url("**only=changed**")
        assert page.locator("tr.example-row").count() == 2
        page.goto(f"{url}/evals/{ids['c']}?project={PROJECT}")
        page.click("#next-page")
        page.wait_for_url("**page=1**")
        assert page.locator("tr.example-row").count() == 10
        page.click("header a:text('Datasets')")
        page.click("tr.dataset-row[data-dataset='capitals'] a.dataset-link")
        page.wait_for_selector("#rows")
        assert page.locator("tr.dataset-item").count() == 5
        page.click("#versions a.version-link[data-version='0']")
        page.wait_for_url("**version=v0**")
        page.screenshot(path=str(SHOTS / "dataset.png"), full_page=True)
        assert page.locator("tr.dataset-item").count() == 4
        assert "baseline" in page.inner_text("#dataset-evals")
        browser.close()
