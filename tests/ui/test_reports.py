"""Reports over a seeded store (in-process collector): the JSON API (create, read, replace, list, history,
delete, bad bodies), each panel drawn from the seeded data with unknown runs, traces and evaluations as
errors inside their panel, the editor's form without JavaScript, and the exported file. The browser
tests are test_reports_browser.py, the attacks test_reports_security.py."""

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
from ui_seed import PROJECT, seed

from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.ui.reports_blocks import MAX_BLOCKS, MAX_MARKDOWN
from tracehouse.collector.ui.reports_chart import MAX_POINTS

EVAL_RUN = "eval-1"


def _eval_record() -> dict[str, Any]:
    """An evaluation run as evals.evaluate stores it (job_type eval, aggregates in the summary)."""
    stamp = time.time_ns()
    return {"type": "run", "project": PROJECT, "run_id": EVAL_RUN, "name": "baseline", "state": "finished",
            "job_type": "eval", "config": {"dataset": "capitals", "scorers": ["exact_match"]},
            "summary": {"exact_match.mean": 0.75, "exact_match.pass_rate": 0.75, "error_rate": 0.25,
                        "latency_ms.mean": 12.5, "examples": 4, "errors": 1},
            "created_ns": stamp, "updated_ns": stamp, "heartbeat_ns": stamp, "version": stamp}  # fmt: skip


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    database = f"reports_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path_factory.mktemp("reports") / "wal"))  # fmt: skip
    with collector_client(parts.app) as client:

        def post(path: str, payload: Any) -> Any:
            answer = client.post(path, json=payload)
            assert answer.status_code == 200, answer.text
            return answer.json()

        seeded = seed(post)
        post("/api/v1/records", [_eval_record()])
        yield client, seeded
    parts.close()


def every_panel(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    """Markdown and one panel of each kind, over the seeded data."""
    return [
        {"type": "markdown", "text": "# Findings\n\nThe lower **learning rate** wins."},
        {"type": "panel", "panel": "run_chart", "settings": {"runs": ["run-a", "run-b"], "metric": "loss"}},
        {"type": "panel", "panel": "latency_table", "settings": {"by": "model", "range": "1h"}},
        {"type": "panel", "panel": "runs_table",
         "settings": {"filter": {"config.lr": {"$gte": 0.01}}, "columns": ["name", "summary.loss"], "sort": "name",
                      "limit": 3}},
        {"type": "panel", "panel": "trace_link", "settings": {"trace_id": seeded["slowest_trace"]}},
        {"type": "panel", "panel": "eval_summary", "settings": {"run_id": EVAL_RUN}},
    ]  # fmt: skip


def _create(client: TestClient, blocks: list[dict[str, Any]], title: str = "Week 12") -> dict[str, Any]:
    answer = client.post("/api/v1/reports", json={"project": PROJECT, "title": title, "description": "lr study",
                                                  "blocks": blocks})  # fmt: skip
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _panel(page: str, index: int) -> str:
    found = re.search(rf'<section class="block[^"]*" id="block-{index}".*?</section>', page, re.S)
    assert found, f"no block {index}"
    return found.group(0)


def test_the_api_creates_reads_replaces_lists_and_deletes(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    report = _create(client, every_panel(seeded))
    report_id = report["report_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", report_id) and report["url"] == f"/reports/{report_id}"
    assert report["author"] == "admin" and report["blocks"][1]["settings"]["x"] == "step"  # defaults filled in
    got = client.get(f"/api/v1/reports/{report_id}").json()
    assert got["title"] == "Week 12" and [b["type"] for b in got["blocks"]] == ["markdown", *["panel"] * 5]
    replaced = client.put(f"/api/v1/reports/{report_id}", json={"title": "Week 12 (final)", "blocks": []})
    assert replaced.status_code == 200 and replaced.json()["version"] > report["version"]
    assert replaced.json()["created_at"] == got["created_at"]
    listed = client.get("/api/v1/reports", params={"project": PROJECT}).json()["reports"]
    assert [(r["report_id"], r["title"], r["block_count"]) for r in listed if r["report_id"] == report_id] == [
        (report_id, "Week 12 (final)", 0)
    ]
    history = client.get(f"/api/v1/reports/{report_id}/versions").json()["versions"]
    assert [v["title"] for v in history] == ["Week 12 (final)", "Week 12"]
    first = client.get(f"/api/v1/reports/{report_id}", params={"version": history[1]["version"]}).json()
    assert len(first["blocks"]) == 6, "an earlier version stays readable"
    assert client.get(f"/reports/{report_id}", params={"version": history[1]["version"]}).status_code == 200
    assert client.delete(f"/api/v1/reports/{report_id}").json() == {"report_id": report_id, "deleted": True}
    gone = client.get(f"/api/v1/reports/{report_id}")
    assert gone.status_code == 404 and report_id in gone.json()["error"]
    assert client.get(f"/reports/{report_id}").status_code == 404
    listed = client.get("/api/v1/reports", params={"project": PROJECT}).json()["reports"]
    assert report_id not in [r["report_id"] for r in listed]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"blocks": []}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "pie_chart"}]}, "unknown panel type 'pie_chart'"),
        ({"title": "t", "blocks": [{"type": "video"}]}, "blocks[0].type"),
        ({"title": "t", "blocks": [{"type": "markdown", "text": "x" * (MAX_MARKDOWN + 1)}]}, "blocks[0].text"),
        ({"title": "t", "blocks": [{"type": "markdown", "text": ""}] * (MAX_BLOCKS + 1)}, "at most"),
        ({"title": "t", "blocks": "nope"}, "blocks"),
        ({"title": "t", "colour": "red"}, "colour"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "trace_link", "settings": {"trace_id": "xyz"}}]},
         "blocks[0].settings.trace_id"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "run_chart", "settings": {"smooth": 1}}]},
         "no setting 'smooth'"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "run_chart", "settings": {"x": "epoch"}}]},
         "blocks[0].settings.x"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "runs_table", "settings": {"filter": "{bad"}}]},
         "blocks[0].settings.filter"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "runs_table", "settings": {"limit": 10_000}}]},
         "blocks[0].settings.limit"),
        ({"title": "t", "blocks": [{"type": "panel", "panel": "latency_table", "settings": {"range": "soon"}}]},
         "blocks[0].settings.range"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_naming_the_field(ui: tuple[TestClient, dict[str, Any]], body: Any, named: str) -> None:
    client, _ = ui
    answer = client.post("/api/v1/reports", json={"project": PROJECT, **body})
    assert answer.status_code == 400 and named in answer.json()["error"], answer.text


def test_unknown_ids_and_bodies_that_are_not_json(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = ui
    for report_id in ("0123456789abcdef", "not-an-id"):
        answer = client.get(f"/api/v1/reports/{report_id}")
        assert answer.status_code == 404 and report_id in answer.json()["error"]
        assert client.put(f"/api/v1/reports/{report_id}", json={"title": "t"}).status_code == 404
        assert client.delete(f"/api/v1/reports/{report_id}").status_code == 404
        assert report_id in client.get(f"/reports/{report_id}").text
    sent = client.post("/api/v1/reports", content=b'{"title": "t"}', headers={"Content-Type": "text/plain"})
    assert sent.status_code == 415
    assert client.post("/api/v1/reports", content=b"[1]", headers={"Content-Type": "application/json"}).status_code \
        == 400  # fmt: skip
    assert client.get("/api/v1/reports/0123456789abcdef", params={"version": "x"}).status_code == 400


def test_each_panel_is_drawn_from_the_store(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    report = _create(client, every_panel(seeded))
    page = client.get(f"/reports/{report['report_id']}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Findings</h1>" in _panel(html, 0) and "<strong>learning rate</strong>" in _panel(html, 0)
    chart = _panel(html, 1)
    assert 'class="chart uplot-chart" id="report-chart-1"' in chart and "lr-0.1 (run-a)" in chart
    assert chart.count("<tr><td>") == 20  # the values table: 20 steps
    latency = _panel(html, 2)
    assert "<td>gpt-4o</td>" in latency and "<td>gpt-4o-mini</td>" in latency and latency.count("latency-row") == 3
    runs = _panel(html, 3)
    assert runs.count('class="run-row"') == 3 and "of 6 runs" in runs and 'href="/runs/' in runs
    trace = _panel(html, 4)
    assert "900.0 ms" in trace and "answer" in trace and f'href="/traces/{seeded["slowest_trace"]}?project=ui"' in trace
    scores = _panel(html, 5)
    assert "exact_match.mean" in scores and "0.75" in scores and f'href="/evals/{EVAL_RUN}?project=ui"' in scores
    assert "error panel-error" not in html
    assert 'href="/reports?project=ui"' in html and ">Reports</a>" in html  # the nav link


def test_unknown_references_are_errors_inside_their_panel(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = ui
    blocks = [
        {"type": "panel", "panel": "run_chart", "settings": {"runs": ["no-such-run"], "metric": "loss"}},
        {"type": "panel", "panel": "run_chart", "settings": {"runs": ["run-a"], "metric": "accuracy"}},
        {"type": "panel", "panel": "trace_link", "settings": {"trace_id": "f" * 32}},
        {"type": "panel", "panel": "trace_link", "settings": {}},
        {"type": "panel", "panel": "eval_summary", "settings": {"run_id": "no-such-eval"}},
        {"type": "panel", "panel": "eval_summary", "settings": {"run_id": "run-a"}},
        {"type": "panel", "panel": "runs_table", "settings": {"sort": "summary.nothing"}},
        {"type": "markdown", "text": "still here"},
    ]
    page = client.get(f"/reports/{_create(client, blocks)['report_id']}")
    assert page.status_code == 200
    errors = [re.search(r'<p class="error panel-error">(.*?)</p>', _panel(page.text, i)) for i in range(7)]
    texts = [e.group(1) if e else "" for e in errors]
    assert "no run no-such-run" in texts[0]
    assert "accuracy" in texts[1] and "they logged loss" in texts[1]
    assert "no trace " + "f" * 32 in texts[2] and "choose the trace" in texts[3]
    assert "no evaluation run &#x27;no-such-eval&#x27;" in texts[4] and "not an evaluation" in texts[5]
    assert "summary.nothing" in texts[6]
    assert "still here" in _panel(page.text, 7)


def test_a_long_history_is_drawn_from_bucket_means(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = ui
    stamp = time.time_ns()
    records: list[dict[str, Any]] = [{"type": "run", "project": PROJECT, "run_id": "long-run", "name": "long",
                                      "state": "finished", "created_ns": stamp, "updated_ns": stamp,
                                      "heartbeat_ns": stamp, "version": stamp}]  # fmt: skip
    records += [{"type": "metrics", "project": PROJECT, "run_id": "long-run", "step": step, "time_ns": stamp + step,
                 "values": {"acc": step % 10}} for step in range(5000)]  # fmt: skip
    assert client.post("/api/v1/records", json=records).status_code == 200
    blocks = [{"type": "panel", "panel": "run_chart", "settings": {"runs": ["long-run"], "metric": "acc"}}]
    report = _create(client, blocks)
    spec = re.search(r'class="chart-spec">(.*?)</script>', client.get(f"/reports/{report['report_id']}").text)
    assert spec
    import json

    drawn = json.loads(spec.group(1))
    assert len(drawn["xs"]["step"]) <= MAX_POINTS and drawn["series"][0]["values"][0] == pytest.approx(2.0)


def test_the_editor_form_works_without_javascript(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    page = client.get("/reports/new", params={"project": PROJECT})
    assert page.status_code == 200 and 'id="report-editor"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf and client.cookies.get("tracehouse_csrf_reports") == csrf.group(1)
    first = re.search(r'name="order" value="([0-9a-f]+)"', page.text)
    assert first
    form = {"csrf": csrf.group(1), "project": PROJECT, "title": "From the form", "description": "",
            "order": [first.group(1)], f"b.{first.group(1)}.type": "markdown", f"b.{first.group(1)}.text": "*hi*",
            "action": "add:trace_link"}  # fmt: skip
    added = client.post("/reports/new", data=form)
    assert added.status_code == 200 and 'id="unsaved"' in added.text and "*hi*" in added.text
    keys = re.findall(r'<fieldset class="block-editor" data-key="([0-9a-f]+)" data-type="(\w+)"', added.text)
    assert [t for _, t in keys] == ["markdown", "trace_link"]
    trace_key = keys[1][0]
    form.update({"order": [trace_key, first.group(1)], f"b.{trace_key}.type": "trace_link",
                 f"b.{trace_key}.trace_id": seeded["slowest_trace"], f"b.{trace_key}.title": "The slow one",
                 "action": "save"})  # fmt: skip
    saved = client.post("/reports/new", data=form, follow_redirects=False)
    assert saved.status_code == 303
    view = client.get(saved.headers["location"])
    assert "The slow one" in _panel(view.text, 0) and "<em>hi</em>" in _panel(view.text, 1)
    report_id = saved.headers["location"].rsplit("/", 1)[1]
    edit = client.get(f"/reports/{report_id}/edit")
    keys = re.findall(r'<fieldset class="block-editor" data-key="([0-9a-f]+)" data-type="(\w+)"', edit.text)
    moved = client.post(f"/reports/{report_id}/edit", data={**form, "order": [k for k, _ in keys],
                        f"b.{keys[1][0]}.type": "markdown", f"b.{keys[1][0]}.text": "*hi*",
                        f"b.{keys[0][0]}.type": "trace_link", f"b.{keys[0][0]}.trace_id": seeded["slowest_trace"],
                        "action": f"up:{keys[1][0]}"})  # fmt: skip
    order = re.findall(r'data-key="[0-9a-f]+" data-type="(\w+)"', moved.text.split("<template")[0])
    assert order == ["markdown", "trace_link"]


def test_a_bad_save_keeps_the_form_as_typed(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = ui
    page = client.get("/reports/new", params={"project": PROJECT})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    form = {"csrf": csrf.group(1), "project": PROJECT, "title": "Typed", "order": ["k1"], "b.k1.type": "runs_table",
            "b.k1.filter": '{"config.lr": ', "b.k1.limit": "5", "action": "save"}  # fmt: skip
    answer = client.post("/reports/new", data=form)
    assert answer.status_code == 400 and "blocks[0].settings.filter" in answer.text
    assert 'value="Typed"' in answer.text and "{&#34;config.lr&#34;: " in answer.text


def test_the_list_page_and_the_export(ui: tuple[TestClient, dict[str, Any]], tmp_path: Path) -> None:
    client, seeded = ui
    report = _create(client, every_panel(seeded), title="Exported study")
    listing = client.get("/reports", params={"project": PROJECT})
    assert listing.status_code == 200 and f'href="/reports/{report["report_id"]}">Exported study</a>' in listing.text
    assert client.get("/api/v1/ui/reports", params={"project": PROJECT}).json()["project"] == PROJECT
    exported = client.get(f"/reports/{report['report_id']}/export")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="report-exported-study-{report["report_id"]}.html"'
    )
    body = exported.text
    assert "http://" not in body and "https://" not in body and "//" not in re.sub(r"<script>.*?</script>", "", body,
                                                                                   flags=re.S)  # fmt: skip
    assert not re.search(r"\b(src|href)=", body), "an exported report points nowhere"
    assert "uPlot" in body and 'class="chart-spec"' in body and "900.0 ms" in body and "exact_match.mean" in body
