"""The data the pages hand to their charts (charts.js draws it with uPlot): read back from the HTML's
JSON blocks over a seeded store (in-process; the browser tests are in test_ui_charts_browser.py)."""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from ui_charts_seed import NAMES, PROJECT, seed_charts

from tracehouse.collector.server import ServeOptions, build
from tracehouse.collector.ui import charts
from tracehouse.collector.ui.dashboard_charts import TOP_GROUPS, epoch

_SPEC = re.compile(r'<script type="application/json" class="chart-spec">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    database = f"uicharts_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path_factory.mktemp("wal")))  # fmt: skip
    with collector_client(parts.app) as test_client:

        def post(path: str, payload: Any) -> Any:
            answer = test_client.post(path, json=payload)
            assert answer.status_code == 200, answer.text
            return answer.json()

        yield test_client, seed_charts(post)
    parts.close()


def specs(client: TestClient, path: str, **params: Any) -> dict[str, dict[str, Any]]:
    """The page's chart specs by chart id."""
    page = client.get(path, params={"project": PROJECT, **params})
    assert page.status_code == 200, page.text[:800]
    found = [json.loads(block) for block in _SPEC.findall(page.text)]
    return {spec["id"]: spec for spec in found}


def test_dashboard_charts_span_the_window_with_gaps_as_nulls(client: tuple[TestClient, dict[str, Any]]) -> None:
    test_client, _ = client
    data = test_client.get("/api/v1/ui/dashboard", params={"project": PROJECT, "range": "1h"}).json()
    start, end, width = epoch(data["start"]), epoch(data["end"]), data["series"]["bucket_seconds"]
    found = specs(test_client, "/", range="1h")
    assert list(found) == ["latency", "p95-by-group", "calls-chart", "error-rate-chart", "tokens-chart", "cost-chart"]
    for spec in found.values():
        assert spec["window"] == [pytest.approx(start), pytest.approx(end)]  # the chosen hour, not the data's
        xs = spec["xs"]["time"]
        assert xs[0] == start // width * width and xs[-1] < end <= xs[-1] + width
        assert all(b - a == width for a, b in itertools.pairwise(xs))  # every bucket, empty ones included
        assert spec["span_gaps"] is False and spec["x_axes"]["time"]["time"] is True
    calls = found["calls-chart"]
    xs = calls["xs"]["time"]
    quiet = [i for i, t in enumerate(xs) if end - 39 * 60 <= t and t + width <= end - 21 * 60]  # the seeded gap
    assert quiet and all(s["values"][i] is None for s in calls["series"] for i in quiet)
    total = sum(v for s in calls["series"] for v in s["values"] if v is not None)
    assert total == data["overview"]["count"]


def test_grouped_charts_show_the_top_groups_and_other_in_distinct_colours(
    client: tuple[TestClient, dict[str, Any]],
) -> None:
    test_client, _ = client
    found = specs(test_client, "/", range="1h", by="name")
    calls = found["calls-chart"]
    names = [s["name"] for s in calls["series"]]
    assert len(names) == TOP_GROUPS + 1 and names[-1] == "other"
    assert set(names[:5]) == set(NAMES[:5])  # the five busiest names first
    colours = [s["color"] for s in calls["series"]]
    assert len(set(colours)) == len(colours) and colours[-1] == charts.OTHER_COLOUR
    assert len(set(charts.PALETTE)) == len(charts.PALETTE) >= 20
    assert [charts.colour(i) for i in range(20)] == list(charts.PALETTE[:20])
    groups = {g["group"]: g["count"] for g in test_client.get(
        "/api/v1/ui/dashboard", params={"project": PROJECT, "range": "1h", "by": "name"}).json()["groups"]}  # fmt: skip
    counted = {s["name"]: sum(v for v in s["values"] if v is not None) for s in calls["series"]}
    assert counted["other"] == sum(groups.values()) - sum(groups[n] for n in names[:-1])
    assert all(counted[n] == groups[n] for n in names[:-1])


def test_log_axis_starts_on_when_the_spread_passes_a_thousand(client: tuple[TestClient, dict[str, Any]]) -> None:
    test_client, _ = client
    found = specs(test_client, "/", range="1h", by="name")
    p95 = found["p95-by-group"]  # op-00 takes 1 ms, op-01 5 s
    positive = [v for s in p95["series"] for v in s["values"] if v]
    assert max(positive) / min(positive) > 1000 and p95["log"] is True and p95["log_ok"] is True
    calls = found["calls-chart"]
    positive = [v for s in calls["series"] for v in s["values"] if v]
    assert (max(positive) / min(positive) > 1000) is calls["log"] is False
    assert charts.log_default([{"values": [0.0, None, 2.0]}]) == (False, True)
    assert charts.log_default([{"values": [0.0, None]}]) == (False, False)  # nothing a log axis can place


def test_chart_json_cannot_close_its_script_block() -> None:
    hostile = "</script><script>alert(1)</script>&"
    spec = charts.spec("c", hostile, {"step": [1, 2]}, {"step": {"label": "step"}},
                       [charts.series_entry(hostile, [1.0, None], 0)])  # fmt: skip
    markup = charts.figure(spec)
    block = _SPEC.findall(markup)
    assert len(block) == 1 and "<" not in block[0] and json.loads(block[0])["series"][0]["name"] == hostile
    assert "<script>alert" not in markup.replace(block[0], "")
    assert "no data in this range" in charts.figure(
        charts.spec("e", "empty", {"step": [1]}, {"step": {}}, [charts.series_entry("a", [None], 0)])
    )


def test_static_files_are_served_and_nothing_else(client: tuple[TestClient, dict[str, Any]]) -> None:
    test_client, _ = client
    script = test_client.get("/static/vendor/uPlot.iife.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"uPlot" in script.content and "script-src 'self'" in script.headers["content-security-policy"]
    assert test_client.get("/static/vendor/uPlot.min.css").headers["content-type"].startswith("text/css")
    assert b"chart-spec" in test_client.get("/static/charts.js").content
    for path in ("/static/../pages.py", "/static/vendor/README.md", "/static/%2e%2e/render.py", "/static/nope.js"):
        assert test_client.get(path).status_code == 404, path
    assert Path(charts.__file__).with_name("static").joinpath("vendor", "uPlot.LICENSE").exists()


def test_run_charts_offer_step_time_relative_and_the_declared_step_metric(
    client: tuple[TestClient, dict[str, Any]],
) -> None:
    test_client, seeded = client
    found = specs(test_client, f"/runs/{seeded['run']}")
    assert "metric-epoch" not in found  # define_metric(hidden=True): no chart of its own
    loss = found["metric-loss"]
    assert set(loss["xs"]) == {"step", "time", "relative", "epoch"} and loss["x"] == "epoch"  # its step metric
    assert loss["xs"]["step"] == list(range(30))
    assert loss["xs"]["epoch"] == [s // 10 for s in range(30)]  # step_sync: the last epoch logged before
    assert loss["xs"]["relative"] == pytest.approx([2.0 * s for s in range(30)])
    assert loss["x_axes"]["time"]["time"] is True and loss["x_axes"]["epoch"]["label"] == "epoch"
    assert loss["log"] is True and loss["series"][0]["values"][0] == pytest.approx(10.0)  # 10 down to 0.00037
    assert specs(test_client, f"/runs/{seeded['run']}", x="relative")["metric-loss"]["x"] == "relative"
    smoothed = specs(test_client, f"/runs/{seeded['run']}", smooth="0.5")["metric-loss"]["series"]
    assert [s["name"] for s in smoothed] == ["loss", "loss (raw)"] and smoothed[1]["faint"] is True
    assert smoothed[0]["values"][1] == pytest.approx((0.5 * 10.0 + 1.25) / 1.5)  # W&B's debiased EMA
    page = test_client.get(f"/runs/{seeded['run']}", params={"project": PROJECT})
    assert '<select name="x" id="x-axis">' in page.text and "<option >epoch</option>" in page.text
    bad = test_client.get(f"/runs/{seeded['run']}", params={"project": PROJECT, "x": "<b>wall</b>"})
    assert bad.status_code == 400 and "x: expected one of step, time, relative, epoch" in bad.text
    assert "<b>wall</b>" not in bad.text


def test_a_step_metric_without_step_sync_leaves_unlogged_steps_without_x() -> None:
    from tracehouse.collector.ui.run_charts import run_charts, step_metrics

    metrics = {"val/acc": [[0, 0.5, 10.0], [1, 0.6, 11.0], [2, 0.7, 12.0]], "epoch": [[0, 1.0, 10.0], [2, 2.0, 12.0]]}
    rules = {"val/*": {"step_metric": "epoch", "step_sync": False}}
    assert step_metrics(metrics, rules) == ["epoch"]
    acc = next(s for s in run_charts(metrics, rules, None, 0.0) if s["id"] == "metric-val/acc")
    assert acc["x"] == "epoch" and acc["xs"]["epoch"] == [1.0, None, 2.0]  # the glob's rule applies
    synced = {"val/*": {"step_metric": "epoch"}}
    assert next(s for s in run_charts(metrics, synced, "step", 0.0) if s["id"] == "metric-val/acc")["x"] == "step"


def test_compare_overlays_each_run_over_the_union_of_steps(client: tuple[TestClient, dict[str, Any]]) -> None:
    test_client, seeded = client
    trial_run = seeded["trials"][0][0]
    loss = specs(test_client, "/runs/compare", ids=f"{seeded['run']},{trial_run}")["metric-loss"]
    assert loss["xs"]["step"] == list(range(30)) and loss["span_gaps"] is True
    names = [s["name"] for s in loss["series"]]
    assert names == [f"define-metric ({seeded['run']})", trial_run]  # a run without a name shows its id
    assert loss["series"][1]["values"][0] is not None and loss["series"][1]["values"][1:] == [None] * 29
    assert len({s["color"] for s in loss["series"]}) == 2
    by_x = [s["by_x"] for s in loss["series"]]
    assert by_x[0]["step"] == loss["series"][0]["values"]
    for axis in ("time", "relative"):  # each axis: the union of the runs' x values, each run aligned with it
        xs = loss["xs"][axis]
        assert xs == sorted(xs) and all(len(b[axis]) == len(xs) for b in by_x)
        assert sum(v is not None for v in by_x[0][axis]) == 30 and sum(v is not None for v in by_x[1][axis]) == 1
    assert loss["xs"]["relative"][0] == 0.0  # each run's time from its own first point
    timed = specs(test_client, "/runs/compare", ids=f"{seeded['run']},{trial_run}", x="relative")["metric-loss"]
    assert timed["x"] == "relative"
    answer = test_client.get("/runs/compare", params={"project": PROJECT, "ids": seeded["run"], "x": "epoch<"})
    assert answer.status_code == 400 and "x: expected one of step, time, relative" in answer.text


def test_sweep_importance_log_axes_and_names(client: tuple[TestClient, dict[str, Any]]) -> None:
    import math

    import pandas as pd

    test_client, seeded = client
    sweep = test_client.get(f"/api/v1/ui/sweeps/{seeded['sweep_id']}", params={"project": PROJECT}).json()
    assert sweep["log_params"] == ["lr"]  # log_uniform_values; opt and width are categorical
    assert [t["name"] for t in sweep["trials"]] == [t["run_id"] for t in sweep["trials"]]  # unnamed runs: their ids
    trials = [t for t in sweep["trials"] if t["metric"] is not None]
    frame = pd.DataFrame({
        "lr": [math.log10(t["params"]["lr"]) for t in trials], "width": [t["params"]["width"] for t in trials],
        "opt=adam": [float(t["params"]["opt"] == "adam") for t in trials],
        "opt=sgd": [float(t["params"]["opt"] == "sgd") for t in trials], "metric": [t["metric"] for t in trials],
    })  # fmt: skip
    spearman = frame.corr(method="spearman")["metric"].drop("metric").fillna(0.0)
    pearson = frame.corr()["metric"].drop("metric")
    rows = {r["param"]: r for r in sweep["importance"]}
    assert set(rows) == set(spearman.index)
    for name in rows:
        assert rows[name]["importance"] == pytest.approx(abs(spearman[name]) / spearman.abs().sum())
        assert rows[name]["correlation"] == pytest.approx(pearson[name])
    assert [r["importance"] for r in sweep["importance"]] == sorted((r["importance"] for r in sweep["importance"]),
                                                                    reverse=True)  # fmt: skip
    assert "Spearman" in sweep["importance_method"]
    page = test_client.get(f"/sweeps/{seeded['sweep_id']}", params={"project": PROJECT}).text
    assert 'data-axis="lr" data-scale="log"' in page and 'data-axis="width" data-scale="linear"' in page
    assert "Spearman rank correlation" in page and 'id="importance"' in page
    found = specs(test_client, f"/sweeps/{seeded['sweep_id']}")
    assert found["param-lr"]["x_axes"]["lr"]["log"] is True and found["param-width"]["x_axes"]["width"]["log"] is False
    assert found["param-lr"]["points_only"] is True and len(found["metric-by-trial"]["xs"]["trial"]) == len(trials)
    listing = test_client.get("/sweeps", params={"project": PROJECT}).text
    assert f"<td>{seeded['sweep_id']}</td>" in listing  # a sweep without a name shows its id


def test_spearman_ranks_ties_by_their_average() -> None:
    from tracehouse.collector.ui.sweep_views import pearson, spearman

    assert spearman([1, 2, 2, 3], [3, 1, 2, 5]) == pytest.approx(0.316228, abs=1e-6)  # as pandas gives
    assert spearman([1, 1, 1], [1, 2, 3]) is None and pearson([1.0], [2.0]) is None


def test_a_hostile_metric_key_stays_data(client: tuple[TestClient, dict[str, Any]]) -> None:
    test_client, _ = client
    key = "</script><img src=x onerror=alert(1)>"
    records = [{"type": "run", "project": PROJECT, "run_id": "xss-run", "name": key, "state": "finished",
                "config": {}, "summary": {}, "created_ns": 10**18, "updated_ns": 10**18, "heartbeat_ns": 10**18,
                "version": 10**18}]  # fmt: skip
    records += [{"type": "metrics", "project": PROJECT, "run_id": "xss-run", "step": s, "time_ns": 10**18 + s,
                 "values": {key: float(s)}} for s in range(3)]  # fmt: skip
    assert test_client.post("/api/v1/records", json=records).status_code == 200
    page = test_client.get("/runs/xss-run", params={"project": PROJECT})
    assert page.status_code == 200 and "<img src=x" not in page.text
    chart = specs(test_client, "/runs/xss-run")[f"metric-{key}"]
    assert chart["title"] == key and chart["series"][0]["values"] == [0.0, 1.0, 2.0]
