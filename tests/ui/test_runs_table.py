"""The runs table and the compare page over runs logged by the SDK (`th.init` / `log`) through a real
collector: default and chosen columns, number formatting, sorting in SQL per column type (numbers as
numbers, missing values last), paging, the filter form against the same filter in JSON, bad filters,
group aggregates, the compare diffs, and hostile names and values escaped."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from statistics import mean
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi")
import httpx
from conftest import SESSION_STORE_URL
from servers import InProcessCollector

import tracehouse as th
from tracehouse.collector.server import ServeOptions

PROJECT = "table"
HOSTILE = "<script>alert('run')</script>"
RUNS: list[dict[str, Any]] = [
    {"name": "alpha", "tags": ["baseline"], "config": {"lr": 0.1, "opt": "adam", "batch": 8, "_seed": 1,
     "model_digest": "ab" * 32}, "log": {"loss": 0.05, "acc": 0.91, "throughput": 12345.678, "tokens": 1234567}},
    {"name": "beta", "tags": ["baseline", "long"], "config": {"lr": 0.01, "opt": "sgd", "batch": 64,
     "model_digest": "cd" * 32}, "log": {"loss": 0.2, "acc": 0.8, "throughput": 99.5, "tokens": 10}},
    {"name": "gamma", "tags": [], "config": {"lr": 0.001, "opt": "adam", "batch": 128, "model_digest": "ef" * 32},
     "log": {"loss": 1.5, "acc": 0.5, "throughput": 7.25, "tokens": 2000}},
    {"name": "delta", "tags": ["long"], "config": {"lr": 0.5, "opt": "sgd", "model_digest": "01" * 32},
     "log": {"loss": 3.0}, "fail": True},
    {"name": HOSTILE, "tags": ["<b>tag</b>"], "config": {"lr": 0.2, "opt": "<img src=x onerror=alert(1)>",
     "batch": 2, "<i>key</i>": 1, "model_digest": "23" * 32}, "log": {"loss": 0.7, "acc": 0.6}},
]  # fmt: skip


def _log(spec: dict[str, Any]) -> str:
    run = th.init(project=PROJECT, name=spec["name"], config=spec["config"], tags=spec["tags"])
    for step in range(3):
        run.log({key: value * (3 - step) if key == "loss" else value for key, value in spec["log"].items()})
    run.finish(exit_code=1 if spec.get("fail") else None)
    return run.id


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    base = tmp_path_factory.mktemp("runs-table")
    database = f"runs_table_{os.getpid()}_{time.monotonic_ns()}"
    options = ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project=PROJECT,
                           spool_dir=base / "wal", blob_location=str(base / "blobs"))  # fmt: skip
    with InProcessCollector(options) as collector:
        th.configure(endpoint=collector.url, data_dir=str(base / "sdk"), project=PROJECT, silent=True)
        try:
            ids = {spec["name"]: _log(spec) for spec in RUNS}
            th.sync()  # every record delivered to the collector
            with httpx.Client(base_url=collector.url, timeout=60) as client:
                yield client, ids
        finally:
            th.configure()


def _json(client: httpx.Client, path: str = "/api/v1/ui/runs", **params: Any) -> Any:
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _names(data: dict[str, Any]) -> list[str]:
    return [r["name"] for r in data["runs"]]


def test_default_columns_are_fields_common_summary_metrics_and_varying_config(
    logged: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, _ = logged
    data = _json(client)
    assert data["columns"] == ["name", "state", "created_at", "duration", "tags", "summary.loss", "summary.acc",
                               "summary.throughput", "summary.tokens", "config.lr", "config.opt",
                               "config.batch"]  # fmt: skip
    assert "config.model_digest" in data["available"] and "config._seed" in data["available"]  # pickable, not shown
    assert data["total"] == 5 and data["running"] is False


def test_chosen_columns_and_formatted_numbers(logged: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = logged
    data = _json(client, cols=["summary.throughput", "summary.tokens", "config.lr", "config.nope"], sort="name")
    assert data["columns"] == ["name", "summary.throughput", "summary.tokens", "config.lr"]  # unknown ones left out
    alpha = next(r for r in data["runs"] if r["name"] == "alpha")
    assert alpha["summary.throughput"] == pytest.approx(12345.678) and alpha["summary.tokens"] == 1234567
    assert alpha["cells"] == {"name": "alpha", "summary.throughput": "12,346", "summary.tokens": "1,234,567",
                              "config.lr": "0.1"}  # fmt: skip
    gamma = next(r for r in data["runs"] if r["name"] == "gamma")
    assert gamma["cells"]["summary.throughput"] == "7.25" and gamma["cells"]["config.lr"] == "0.001"
    page = client.get("/runs", params={"project": PROJECT, "cols": ["summary.tokens", "tags"]}).text
    assert '<td data-col="summary.tokens" class="num">1,234,567</td>' in page
    assert re.search(r'<th data-col="tags">.*?tags', page) and 'data-col="config.lr"' not in page
    assert 'data-col="duration"' not in page
    none = _json(client, cols="")  # every box unticked: the name alone
    assert none["columns"] == ["name"]


RUNS_INDEX = {spec["name"]: index for index, spec in enumerate(RUNS)}
HELD = {  # what each column holds per run; a run without the key is absent
    "config.batch": {"alpha": 8, "beta": 64, "gamma": 128, HOSTILE: 2},  # 2 < 8 < 64 < 128, not "128" < "2"
    "summary.acc": {"alpha": 0.91, "beta": 0.8, "gamma": 0.5, HOSTILE: 0.6},
    "summary.loss": {"alpha": 0.05, "beta": 0.2, "gamma": 1.5, "delta": 3.0, HOSTILE: 0.7},
    "summary.tokens": {"alpha": 1234567, "beta": 10, "gamma": 2000},
    "config.lr": {"alpha": 0.1, "beta": 0.01, "gamma": 0.001, "delta": 0.5, HOSTILE: 0.2},
    "config.opt": {"alpha": "adam", "beta": "sgd", "gamma": "adam", "delta": "sgd",
                   HOSTILE: "<img src=x onerror=alert(1)>"},
    "name": {spec["name"]: spec["name"] for spec in RUNS},
    "state": {spec["name"]: "failed" if spec.get("fail") else "finished" for spec in RUNS},
    "created_at": dict(RUNS_INDEX),
}  # fmt: skip


@pytest.mark.parametrize("column", list(HELD))
def test_sort_by_each_kind_of_column_puts_missing_values_last(
    logged: tuple[httpx.Client, dict[str, str]], column: str
) -> None:
    client, _ = logged
    held = HELD[column]
    for desc in (False, True):
        order = _names(_json(client, sort=column, desc="1" if desc else "0"))
        # ties and runs without the key: newest first
        present = sorted(held, key=lambda name: (held[name], RUNS_INDEX[name] * (1 if desc else -1)), reverse=desc)
        missing = sorted(set(RUNS_INDEX) - set(held), key=RUNS_INDEX.__getitem__, reverse=True)
        assert order == present + missing, (column, desc)
    assert _names(_json(client, sort="config.batch"))[:2] == [HOSTILE, "alpha"]


def test_pages_hold_the_sorted_runs_in_order(logged: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = logged
    pages = [_json(client, sort="config.lr", per_page="2", page=str(n)) for n in (1, 2, 3)]
    assert [p["pages"] for p in pages] == [3, 3, 3] and [len(p["runs"]) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in _names(p)] == _names(_json(client, sort="config.lr"))
    page = client.get("/runs", params={"project": PROJECT, "sort": "config.lr", "per_page": "2", "page": "2"}).text
    assert 'id="prev-page"' in page and 'id="next-page"' in page and "page 2 of 3" in page


@pytest.mark.parametrize(
    "form, equivalent",
    [
        ({"state": "failed"}, {"state": "failed"}),
        ({"tags": "long"}, {"tags": {"$in": ["long"]}}),
        ({"name": "AL"}, {"name": {"$regex": "(?i)al"}}),
        ({"name": "<script>"}, {"name": {"$regex": r"<script>"}}),
        ({"ck": "lr", "cop": "<", "cv": "0.05"}, {"config.lr": {"$lt": 0.05}}),
        ({"ck": "opt", "cop": "=", "cv": "adam"}, {"config.opt": "adam"}),
        ({"ck": "batch", "cop": ">=", "cv": "64"}, {"config.batch": {"$gte": 64}}),
        ({"sk": "loss", "sop": "!=", "sv": "0.05"}, {"summary.loss": {"$ne": 0.05}}),
        ({"sk": "acc", "sop": ">", "sv": "0.55", "state": "finished", "filter": '{"config.opt": "adam"}'},
         {"$and": [{"summary.acc": {"$gt": 0.55}}, {"state": "finished"}, {"config.opt": "adam"}]}),
    ],
)  # fmt: skip
def test_the_filter_form_finds_what_the_same_json_filter_finds(
    logged: tuple[httpx.Client, dict[str, str]], form: dict[str, str], equivalent: dict[str, Any]
) -> None:
    import json

    client, _ = logged
    by_form, by_json = _json(client, **form), _json(client, filter=json.dumps(equivalent))
    assert _names(by_form) == _names(by_json) and by_form["total"] == by_json["total"]
    everything = set(_names(_json(client)))
    assert set(_names(by_form)) < everything  # each one narrows the table
    assert th.runs(project=PROJECT, filters=by_form["filters"])["name"].tolist() == _names(by_json)  # the SDK agrees


@pytest.mark.parametrize(
    "params, words",
    [
        ({"filter": "{not json"}, "filter: expected JSON"),
        ({"filter": '{"config.lr": {"$near": 1}}'}, "unknown operator"),
        ({"ck": "lr", "cop": "~", "cv": "1"}, "cop: expected one of = != &lt; &lt;= &gt; &gt;= for &#39;lr&#39;"),
        ({"state": "sleeping"}, "state: expected one of running, finished"),
        ({"sort": "summary.nope"}, "no column &#39;summary.nope&#39; to sort by"),
        ({"group": "config.nope"}, "no config key &#39;config.nope&#39; to group by"),
        ({"page": "0"}, "page: expected a whole number"),
    ],
)
def test_a_bad_filter_is_a_message_on_the_page_and_400_in_json(
    logged: tuple[httpx.Client, dict[str, str]], params: dict[str, str], words: str
) -> None:
    client, _ = logged
    page = client.get("/runs", params={"project": PROJECT, **params})
    assert page.status_code == 400 and words in page.text and "Traceback" not in page.text
    assert 'id="run-filters"' in page.text  # the form is still there
    answer = client.get("/api/v1/ui/runs", params={"project": PROJECT, **params})
    plain = words.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
    assert answer.status_code == 400 and plain in answer.json()["error"]
    typed = client.get("/runs", params={"project": PROJECT, "filter": "{broken", "name": "kept <b>"}).text
    assert 'value="{broken"' in typed and 'value="kept &lt;b&gt;"' in typed  # the form shows what was typed


def test_group_by_a_config_key_aggregates_the_shown_summary_metrics(
    logged: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, _ = logged
    data = _json(client, group="config.opt", cols=["summary.loss", "summary.acc"])
    groups = {g["label"]: g for g in data["groups"]}
    assert set(groups) == {"adam", "sgd", "<img src=x onerror=alert(1)>"}
    adam = groups["adam"]
    assert adam["count"] == 2 and adam["metrics"]["summary.loss"]["mean"] == pytest.approx(mean([0.05, 1.5]))
    assert adam["metrics"]["summary.loss"]["min"] == pytest.approx(0.05)
    assert adam["metrics"]["summary.loss"]["max"] == pytest.approx(1.5)
    sgd = groups["sgd"]["metrics"]["summary.acc"]
    assert groups["sgd"]["count"] == 2 and sgd["n"] == 1 and sgd["mean"] == pytest.approx(0.8)  # delta has no acc
    assert [r["group_label"] for r in data["runs"]] == sorted(r["group_label"] for r in data["runs"])  # rows grouped
    page = client.get("/runs", params={"project": PROJECT, "group": "config.opt", "cols": "summary.loss"}).text
    assert page.count('class="group-row"') == 3 and 'data-stat="summary.loss:mean">0.775</td>' in page
    narrowed = re.search(r'<a href="([^"]+)">adam</a>', page)
    assert narrowed is not None
    only_adam = client.get(narrowed.group(1).replace("&amp;", "&").replace("/runs?", "/api/v1/ui/runs?")).json()
    assert sorted(_names(only_adam)) == ["alpha", "gamma"]
    by_state = _json(client, group="state")
    assert {g["label"]: g["count"] for g in by_state["groups"]} == {"failed": 1, "finished": 4}


def test_compare_shows_config_and_summary_diffs(logged: tuple[httpx.Client, dict[str, str]]) -> None:
    client, ids = logged
    pair = f"{ids['alpha']},{ids['gamma']}"
    data = _json(client, "/api/v1/ui/runs/compare", ids=pair)
    config = {r["key"]: r for r in data["config_rows"]}
    assert config["lr"]["values"] == [0.1, 0.001] and config["lr"]["differs"]
    assert config["opt"]["cells"] == ["adam", "adam"] and not config["opt"]["differs"]
    assert config["_seed"]["values"] == [1, None] and config["_seed"]["differs"]  # missing in one: differs
    summary = {r["key"]: r for r in data["summary_rows"]}
    assert summary["throughput"]["cells"] == ["12,346", "7.25"] and summary["throughput"]["differs"]
    only = _json(client, "/api/v1/ui/runs/compare", ids=pair, diff="1")
    assert "opt" not in {r["key"] for r in only["config_rows"]} and only["differing"]["config"] == 4
    assert [r["run_id"] for r in data["runs"]] == [ids["alpha"], ids["gamma"]] and data["keys"][0] == "acc"
    page = client.get("/runs/compare", params={"project": PROJECT, "ids": [ids["alpha"], ids["gamma"]]}).text
    assert '<tr class="differs" data-key="lr"><th>lr</th><td class="num">0.1</td><td class="num">0.001</td>' in page
    assert '<tr class="same" data-key="opt">' in page and 'id="metric-loss"' in page
    shorter = client.get("/runs/compare", params={"project": PROJECT, "ids": pair, "diff": "1"}).text
    assert 'data-key="opt"' not in shorter and "show every key" in shorter


def test_hostile_names_tags_keys_and_values_are_escaped(logged: tuple[httpx.Client, dict[str, str]]) -> None:
    client, ids = logged
    cols = ["tags", "config.opt", "config.<i>key</i>"]
    page = client.get("/runs", params={"project": PROJECT, "cols": cols, "group": "config.opt"}).text
    body = page.split("</style>", 2)[2]
    assert "&lt;script&gt;alert(&#39;run&#39;)&lt;/script&gt;" in body and HOSTILE not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img" not in body
    assert "&lt;b&gt;tag&lt;/b&gt;" in body and "<b>tag" not in body and "<i>key" not in body
    assert re.findall(r"<script[^>]*>", body) == ['<script src="/static/runs.js" defer>']
    compared = client.get("/runs/compare", params={"project": PROJECT, "ids": [ids[HOSTILE], ids["alpha"]]}).text
    inner = compared.split("</style>", 2)[2]
    assert "&lt;script&gt;alert(&#39;run&#39;)&lt;/script&gt;" in inner and "<img" not in inner and "<i>" not in inner
    script = client.get("/static/runs.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "textContent" in script.text
    assert "script-src 'self'" in page_headers(client)


def page_headers(client: httpx.Client) -> str:
    return client.get("/runs", params={"project": PROJECT}).headers["content-security-policy"]


def test_a_project_with_no_runs_says_so(logged: tuple[httpx.Client, dict[str, str]], tmp_path: Path) -> None:
    client, _ = logged
    answer = client.get("/api/v1/ui/runs", params={"project": "never-logged"})
    assert answer.status_code == 404 and "never-logged" in answer.json()["error"]
    empty = _json(client, filter='{"config.lr": {"$gt": 100}}')
    assert empty["runs"] == [] and empty["total"] == 0
    assert "no runs match this filter" in client.get("/runs", params={"project": PROJECT, "state": "running"}).text


def test_name_contains_is_literal_text_not_a_pattern(logged: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = logged
    assert _names(_json(client, filter='{"name": {"$regex": "l.h"}}')) == ["alpha"]  # as a pattern: "lph"
    assert _names(_json(client, name="l.h")) == [] and _names(_json(client, name="('run')")) == [HOSTILE]


@pytest.mark.parametrize(
    "value, text",
    [(0.012345, "0.01235"), (3.14159, "3.142"), (12345.678, "12,346"), (0.1, "0.1"), (2.0, "2"), (1234567, "1,234,567"),
     (-0.5, "-0.5"), (1e-7, "1e-07"), (2.5e18, "2.5e+18"), (True, "true"), (float("nan"), "—"), (None, "—"),
     (float("-inf"), "-∞")],
)  # fmt: skip
def test_numbers_read_as_people_read_them(value: Any, text: str) -> None:
    from tracehouse._numbers import significant

    assert significant(value) == text


@pytest.mark.parametrize("seconds, text", [(4.24, "4.2s"), (42, "42s"), (185, "3m 05s"), (7380, "2h 03m"),
                                           (273600, "3d 04h"), (None, "")])  # fmt: skip
def test_durations_read_as_a_runs_length(seconds: Any, text: str) -> None:
    from tracehouse.collector.ui.runs_cells import duration

    assert duration(seconds) == text
