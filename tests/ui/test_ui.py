"""The web UI's data endpoints and pages over a seeded store (in-process; the browser tests are in
test_ui_browser.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from ui_seed import PROJECT, XSS, seed

from tracehouse.collector.server import ServeOptions, build


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    database = f"ui_{os.getpid()}_{time.monotonic_ns()}"
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                               spool_dir=tmp_path / "wal"))  # fmt: skip
    with collector_client(parts.app) as client:

        def post(path: str, payload: Any) -> Any:
            answer = client.post(path, json=payload)
            assert answer.status_code == 200, answer.text
            return answer.json()

        yield client, seed(post)
    parts.close()


def _get(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_dashboard_data_holds_the_seeded_numbers(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = ui
    data = _get(client, "/api/v1/ui/dashboard", range="1h", by="model")
    assert data["overview"]["count"] == 30 and data["overview"]["tokens"] == sum(110 + i for i in range(10))
    assert data["overview"]["error_rate"] == pytest.approx(2 / 30, abs=1e-4)
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["gpt-4o"]["count"] == 5 and groups["gpt-4o-mini"]["count"] == 5 and groups[""]["count"] == 20
    assert data["slowest"][0]["duration_ms"] == pytest.approx(900.0) and data["slowest"][0]["name"] == "answer"
    assert sum(p["count"] for p in data["all"]["points"]) == 30
    assert data["series"]["bucket_seconds"] == 30  # an hour in buckets of 30 s: at most 120 points
    assert _get(client, "/api/v1/projects")["projects"] == [PROJECT]


def test_trace_list_filters_and_pages(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    everything = _get(client, "/api/v1/ui/traces")
    assert len(everything["traces"]) == 10 and everything["next"] is None
    assert [t["duration_ms"] for t in everything["traces"]] == pytest.approx(seeded["durations"][::-1])
    assert {t["status"] for t in _get(client, "/api/v1/ui/traces", status="error")["traces"]} == {"error"}
    assert len(_get(client, "/api/v1/ui/traces", status="error")["traces"]) == 2
    assert len(_get(client, "/api/v1/ui/traces", min_ms="150", max_ms="200")["traces"]) == 4
    assert len(_get(client, "/api/v1/ui/traces", model="gpt-4o", kind="llm")["traces"]) == 5
    assert [t["input_preview"] for t in _get(client, "/api/v1/ui/traces", text="question 4")["traces"]] == [
        "question 4"
    ]
    first = client.get("/api/v1/ui/traces", params={"project": PROJECT, "colour": "x"})
    assert first.status_code == 200  # unknown parameters are ignored
    pages, after = [], None
    for _ in range(5):  # keyset pagination, 4 a page: the cursor by hand
        page = _get(client, "/api/v1/ui/traces", limit="4", **({"after": after} if after else {}))
        pages.append(page)
        after = page["next"]
        if after is None:
            break
    assert [len(p["traces"]) for p in pages] == [4, 4, 2]


def test_trace_data_is_a_waterfall_with_conversations(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    data = _get(client, f"/api/v1/ui/traces/{seeded['slowest_trace']}")
    names = [(s["name"], s["depth"]) for s in data["spans"]]
    assert names == [("answer", 0), ("retrieve", 1), ("generate", 1)]
    generate = data["spans"][2]
    assert generate["messages"][1] == {"role": "user", "content": "question 9"}
    assert data["spans"][0]["width_pct"] == pytest.approx(100.0)
    assert [d["content"] for d in data["spans"][1]["documents"]] == ["doc A", "doc <b>B</b>"]


def test_runs_compare_and_sweep_data(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    runs = _get(client, "/api/v1/ui/runs", sort="config.lr", desc="0")
    seeded_runs = [r for r in runs["runs"] if r["run_id"] in seeded["runs"]]
    assert [r["run_id"] for r in seeded_runs] == ["run-b", "run-a"]  # sorted by lr ascending
    assert "config.model.layers" in runs["available"] and "summary.loss" in runs["columns"]
    filtered = _get(client, "/api/v1/ui/runs", filter='{"config.lr": {"$gt": 0.05}, "tags": "seed"}')
    assert [r["run_id"] for r in filtered["runs"]] == ["run-a"]
    one = _get(client, "/api/v1/ui/runs/run-a")
    assert len(one["metrics"]["loss"]) == 20 and one["metrics"]["loss"][1][1] == pytest.approx(0.05)
    compared = _get(client, "/api/v1/ui/runs/compare", ids="run-a,run-b")
    assert [r["run_id"] for r in compared["runs"]] == ["run-a", "run-b"] and compared["keys"] == ["loss"]
    assert compared["configs"]["run-b"]["lr"] == 0.01
    sweep = _get(client, f"/api/v1/ui/sweeps/{seeded['sweep_id']}")
    assert sweep["state"] == "finished" and len(sweep["trials"]) == 4
    assert sweep["best"]["params"] == {"lr": 0.01, "opt": "adam"} and sweep["param_names"] == ["lr", "opt"]
    assert [s["sweep_id"] for s in _get(client, "/api/v1/ui/sweeps")["sweeps"]] == [seeded["sweep_id"]]


@pytest.mark.parametrize(
    "path, params, status, words",
    [
        ("/api/v1/ui/dashboard", {"range": "2x"}, 400, "range: expected one of 15m"),
        ("/api/v1/ui/dashboard", {"range": "custom", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"}, 400,
         "is not after the start"),
        ("/api/v1/ui/dashboard", {"by": "colour"}, 400, "by: expected one of"),
        ("/api/v1/ui/traces", {"min_ms": "fast"}, 400, "min_ms: expected a number"),
        ("/api/v1/ui/traces", {"min_ms": "10", "max_ms": "5"}, 400, "below the minimum"),
        ("/api/v1/ui/traces", {"kind": "robot"}, 400, "kind: expected one of"),
        ("/api/v1/ui/traces/123", {}, 400, "32 lowercase hex"),
        ("/api/v1/ui/traces/" + "f" * 32, {}, 404, "no trace"),
        ("/api/v1/ui/runs", {"filter": "{not json"}, 400, "filter: expected JSON"),
        ("/api/v1/ui/runs", {"filter": '{"config.lr": {"$near": 1}}'}, 400, "unknown operator"),
        ("/api/v1/ui/runs", {"sort": "config.nope"}, 400, "no column"),
        ("/api/v1/ui/runs/nope", {}, 404, "no run 'nope'"),
        ("/api/v1/ui/runs/compare", {}, 400, "choose 1 to 10 runs"),
        ("/api/v1/ui/sweeps/nope", {}, 404, "no sweep 'nope'"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_and_unknown_ids_404(
    ui: tuple[TestClient, dict[str, Any]], path: str, params: dict[str, str], status: int, words: str
) -> None:
    client, _ = ui
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == status and words in answer.json()["error"]
    page = client.get(path.replace("/api/v1/ui/dashboard", "/").replace("/api/v1/ui", ""),
                      params={"project": PROJECT, **params})  # fmt: skip
    assert page.status_code == status and words.replace("'", "&#39;") in page.text  # the page says it too
    assert "Traceback" not in page.text


def test_pages_render_the_seeded_data_and_escape_user_content(ui: tuple[TestClient, dict[str, Any]]) -> None:
    client, seeded = ui
    for path in ("/", "/traces", f"/traces/{seeded['xss_trace']}", "/runs", "/runs/run-a",
                 "/runs/compare?ids=run-a&ids=run-b", "/sweeps", f"/sweeps/{seeded['sweep_id']}"):  # fmt: skip
        page = client.get(path + ("&" if "?" in path else "?") + f"project={PROJECT}")
        assert page.status_code == 200, (path, page.text[:500])
        assert "<script>alert" not in page.text, path
    trace_page = client.get(f"/traces/{seeded['xss_trace']}", params={"project": PROJECT}).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; what is tracehouse?" in trace_page
    assert XSS not in trace_page
    dashboard = client.get("/", params={"project": PROJECT, "range": "1h"}).text
    assert '<b id="calls">30</b>' in dashboard and '"name":"p95"' in dashboard
    unknown = client.get("/", params={"project": "nope-project"})  # a misspelt project says so, on the page
    assert unknown.status_code == 404 and "no project &#39;nope-project&#39; in the store" in unknown.text
    assert f"the projects are {PROJECT}" in unknown.text


def test_tracehouse_ui_serves_the_local_store(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import REPO
    from servers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tracehouse", "ui", "--no-browser", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline, page = time.monotonic() + 60, ""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    page = answer.read().decode()
            except OSError:
                time.sleep(0.2)
        assert "Prompt latency" in page and "no calls in this range" in page
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and f"tracehouse UI at http://127.0.0.1:{port}/" in out
