"""The trace pages over HTTP (in-process collector, real chDB): the list's sorting, paging both ways,
totals and error filter (page, JSON twin and REST API agree with SQL), the trace page's stack traces,
documents and scores, the score form's CSRF defence, and the sessions and users pages."""

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
from paging import walk_pages
from traces_seed import HOSTILE, HOSTILE_SESSION, PROJECT, STACK, seed_traces, trace_id

from tracehouse.collector.server import ServeOptions, build

Seeded = tuple[TestClient, dict[str, Any]]
# what each sort means, written independently of the code under test
SORT_SQL = {
    "start": "toUnixTimestamp64Nano(min(start_time))",
    "duration": "max(toUnixTimestamp64Nano(end_time)) - min(toUnixTimestamp64Nano(start_time))",
    "tokens": "if(countIf(total_tokens IS NOT NULL) = 0, -1, toInt64(sum(ifNull(total_tokens, 0))))",  # unknown: -1
    "cost": "if(countIf(cost_usd IS NOT NULL) = 0, -1., sum(ifNull(cost_usd, 0)))",
}


def _client(tmp_path: Path) -> Any:
    database = f"uitr_{os.getpid()}_{time.monotonic_ns()}"
    return build(ServeOptions(store_url=SESSION_STORE_URL, database=database, default_project="default",
                              spool_dir=tmp_path / "wal"))  # fmt: skip


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    parts = _client(tmp_path)
    with collector_client(parts.app) as client:

        def post(path: str, payload: Any) -> Any:
            answer = client.post(path, json=payload)
            assert answer.status_code == 200, answer.text
            return answer.json()

        def post_otlp(body: bytes) -> None:
            answer = client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
            assert answer.status_code == 200, answer.text

        yield client, seed_traces(post, post_otlp)
    parts.close()


def _get(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sql(client: TestClient, sql: str) -> list[list[Any]]:
    answer = client.post("/api/v1/query", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    rows: list[list[Any]] = answer.json()["rows"]
    return rows


def _expected(client: TestClient, sort: str, order: str, where: str = "1") -> list[str]:
    direction = order.upper()
    rows = _sql(client, f"SELECT trace_id FROM spans WHERE project = '{PROJECT}' GROUP BY trace_id HAVING {where} "
                        f"ORDER BY {SORT_SQL[sort]} {direction}, trace_id {direction}")  # fmt: skip
    return [r[0] for r in rows]


def _walk(client: TestClient, **params: Any) -> tuple[list[list[str]], list[list[str]]]:
    """Every page of the trace list forward, then backward from the last."""
    return walk_pages(lambda **paging: _get(client, "/api/v1/ui/traces", **params, **paging), "traces", "trace_id")


@pytest.mark.parametrize("sort", ["start", "duration", "tokens", "cost"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_every_sort_pages_both_ways_in_the_order_sql_gives(seeded: Seeded, sort: str, order: str) -> None:
    client, info = seeded
    expected = _expected(client, sort, order)
    assert len(expected) == info["traces"] == 23
    forward, backward = _walk(client, sort=sort, order=order)
    assert [len(p) for p in forward] == [5, 5, 5, 5, 3]
    assert [t for p in forward for t in p] == expected  # no gap, no duplicate, ties broken by trace id
    assert backward == forward  # the same pages coming back
    rest = _get(client, "/api/v1/traces", sort=sort, order=order, limit=100)
    assert [r[0] for r in rest["rows"]] == expected  # the REST API sorts the same way


def test_default_order_is_newest_first_and_equal_starts_keep_both(seeded: Seeded) -> None:
    client, _ = seeded
    listed = _get(client, "/api/v1/ui/traces")
    assert listed["sort"] == "start" and listed["order"] == "desc"
    ids = [t["trace_id"] for t in listed["traces"]]
    assert ids == _expected(client, "start", "desc") and trace_id(20) in ids and trace_id(21) in ids
    assert listed["prev"] is None and listed["next"] is None


def test_totals_and_error_filter_agree_with_sql_everywhere(seeded: Seeded) -> None:
    client, _ = seeded
    (count, tokens, cost, failed), = _sql(client, f"""
        SELECT count(), sum(t), sum(c), countIf(e > 0) FROM (SELECT trace_id, sumOrNull(total_tokens) AS t,
        sumOrNull(cost_usd) AS c, countIf(status = 'error') AS e FROM spans WHERE project = '{PROJECT}'
        GROUP BY trace_id)""")  # fmt: skip
    totals = _get(client, "/api/v1/ui/traces", limit="3")["totals"]
    assert (totals["traces"], totals["tokens"], totals["errors"]) == (count, tokens, failed) == (23, tokens, 3)
    assert totals["cost_usd"] == pytest.approx(cost)
    errors_only = _get(client, "/api/v1/ui/traces", error="1")
    failing = sorted(_expected(client, "start", "desc", "countIf(status = 'error') > 0"))
    assert sorted(t["trace_id"] for t in errors_only["traces"]) == failing and len(failing) == 3
    assert {t["status"] for t in errors_only["traces"]} == {"error"} and errors_only["totals"]["traces"] == 3
    rest = _get(client, "/api/v1/traces", error="1", limit=100)
    assert sorted(r[0] for r in rest["rows"]) == failing
    assert sorted(r[0] for r in _get(client, "/api/v1/traces", status="error", limit=100)["rows"]) == failing
    without = _get(client, "/api/v1/ui/traces", error="0", limit="100")
    assert without["totals"]["traces"] == 20 and not set(failing) & {t["trace_id"] for t in without["traces"]}
    page = client.get("/traces", params={"project": PROJECT, "error": "1"})
    assert page.status_code == 200 and page.text.count('class="trace-row"') == 3
    assert '<b id="total-errors" class="status-error">3</b>' in page.text


@pytest.mark.parametrize(
    "path, params, words",
    [
        ("/api/v1/ui/traces", {"sort": "colour"}, "sort: expected one of start, duration, tokens, cost"),
        ("/api/v1/traces", {"sort": "colour"}, "sort: expected one of start, duration, tokens, cost"),
        ("/api/v1/ui/traces", {"order": "up"}, "order: expected desc or asc"),
        ("/api/v1/traces", {"order": "up"}, "order: expected desc or asc"),
        ("/api/v1/ui/traces", {"error": "maybe"}, "error: expected 1"),
        ("/api/v1/traces", {"error": "maybe"}, "error: expected 1"),
        ("/api/v1/ui/traces", {"error": "1", "status": "ok"}, "but status asks for 'ok'"),
        ("/api/v1/traces", {"error": "1", "status": "ok"}, "but status asks for 'ok'"),
        ("/api/v1/ui/traces", {"after": "nope"}, "after: expected a cursor"),
        ("/api/v1/ui/traces", {"after": "9" * 30 + "_" + "a" * 32}, "after: expected a cursor"),
        ("/api/v1/ui/traces", {"sort": "cost", "after": "nan_" + "a" * 32}, "after: expected a cursor"),
        ("/api/v1/ui/traces", {"sort": "cost", "after": "inf_" + "a" * 32}, "after: expected a cursor"),
        ("/api/v1/ui/traces", {"sort": "start", "before": "1.5_" + "a" * 32}, "before: expected a cursor"),
        ("/api/v1/ui/traces", {"after": "1_" + "a" * 32, "before": "1_" + "a" * 32}, "not both"),
        ("/api/v1/ui/traces", {"limit": "0"}, "limit: expected a page size from 1 to 500"),
        ("/api/v1/ui/sessions", {"range": "3x"}, "range: expected one of"),  # any duration is a range
    ],
)  # fmt: skip
def test_bad_list_arguments_are_400_naming_them(seeded: Seeded, path: str, params: dict[str, str], words: str) -> None:
    client, _ = seeded
    answer = client.get(path, params={"project": PROJECT, **params})
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text
    if path.startswith("/api/v1/ui/"):
        page = client.get(path.replace("/api/v1/ui", ""), params={"project": PROJECT, **params})
        assert page.status_code == 400 and words.replace("'", "&#39;") in page.text


def test_sort_headers_and_page_links_keep_the_view(seeded: Seeded) -> None:
    client, _ = seeded
    page = client.get("/traces", params={"project": PROJECT, "sort": "duration", "order": "desc", "limit": "5",
                                         "name": "turn"}).text  # fmt: skip
    assert re.search(r'id="sort-duration" href="[^"]*sort=duration&amp;order=asc', page)  # clicking flips it
    assert re.search(r'id="sort-cost" href="[^"]*sort=cost&amp;order=desc', page)
    older = re.search(r'id="next-page" href="([^"]+)"', page)
    assert older and "after=" in older.group(1) and "name=turn" in older.group(1) and "limit=5" in older.group(1)
    assert 'id="prev-page"' not in page  # the first page has nothing before it
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert 'id="prev-page"' in second and "← previous" in second


def test_trace_page_shows_totals_stack_trace_and_documents_escaped(seeded: Seeded) -> None:
    client, info = seeded
    failing = info["failing"][0]
    data = _get(client, f"/api/v1/ui/traces/{failing}")
    assert data["totals"]["spans"] == 3 and data["totals"]["errors"] == 1
    assert data["totals"]["input_tokens"] == 104 and data["totals"]["output_tokens"] == 20
    generate = next(s for s in data["spans"] if s["name"] == "generate")
    assert generate["exceptions"] == [{"type": "ValueError", "message": HOSTILE, "stacktrace": STACK}]
    retrieve = next(s for s in data["spans"] if s["name"] == "retrieve")
    assert retrieve["documents"][0] == {
        "id": "doc-4-1", "score": 0.92, "content": "Paris is the capital of France (4).",
        "metadata": {"source": "atlas.pdf", "page": 3}, "other": {},
    }  # fmt: skip
    page = client.get(f"/traces/{failing}", params={"project": PROJECT, "span": generate["span_id"]}).text
    assert "<script>alert" not in page
    escaped_stack = STACK.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    assert f'<pre class="stacktrace">{escaped_stack.replace(chr(39), "&#39;")}</pre>' in page
    assert '<span class="exc-type">ValueError</span>' in page
    assert '<b id="trace-errors" class="status-error">1</b>' in page
    assert '<b id="trace-tokens">104 / 20</b>' in page
    docs = client.get(f"/traces/{failing}", params={"project": PROJECT, "span": retrieve["span_id"]}).text
    assert '<code class="doc-id">doc-4-1</code>' in docs and '<b class="doc-score">0.92</b>' in docs
    assert "<dt>source</dt><dd>atlas.pdf</dd>" in docs
    assert "&lt;script&gt;alert(&#39;th&#39;)&lt;/script&gt; hostile" in docs
    assert "<script>alert" not in docs


def test_openinference_documents_and_sdk_exceptions_from_otlp(seeded: Seeded) -> None:
    client, _ = seeded
    ((oi_trace,),) = _sql(client, f"SELECT any(trace_id) FROM spans WHERE project = '{PROJECT}' AND name = 'oi-query'")
    data = _get(client, f"/api/v1/ui/traces/{oi_trace}")
    retrieve = next(s for s in data["spans"] if s["name"] == "oi-retrieve")
    assert [(d["id"], d["score"], d["content"]) for d in retrieve["documents"]] == [
        ("kb-17", 0.83, "Paris is in France."), ("kb-4", 0.2, "Lyon is in France too.")]  # fmt: skip
    assert retrieve["documents"][0]["metadata"] == {"source": "kb", "lang": "en"}
    failed = next(s for s in data["spans"] if s["name"] == "oi-fail")
    (recorded,) = failed["exceptions"]
    assert recorded["type"] == "KeyError" and "missing <b>key</b>" in recorded["message"]
    assert "Traceback (most recent call last)" in recorded["stacktrace"] and "raise KeyError" in recorded["stacktrace"]
    assert data["session_id"] == "sess-oi" and data["user_id"] == "carol"


def test_scores_show_in_the_list_and_on_the_trace(seeded: Seeded) -> None:
    client, info = seeded
    listed = {t["trace_id"]: t["scores"] for t in _get(client, "/api/v1/ui/traces", limit="100")["traces"]}
    assert listed[info["scored"]] == [{"name": "helpful", "count": 1, "mean": 1.0, "labels": []}]
    assert listed[info["span_scored"]] == [{"name": "accuracy", "count": 1, "mean": 0.25, "labels": []}]
    assert listed[info["labelled"]] == [{"name": "verdict", "count": 1, "mean": None, "labels": [HOSTILE]}]
    data = _get(client, f"/api/v1/ui/traces/{info['span_scored']}")
    generate = next(s for s in data["spans"] if s["name"] == "generate")
    assert [(s["name"], s["value"]) for s in generate["scores"]] == [("accuracy", 0.25)] and data["scores"] == []
    page = client.get(f"/traces/{info['scored']}", params={"project": PROJECT}).text
    assert "fixed my issue" in page and 'class="score-row"' in page
    labelled = client.get("/traces", params={"project": PROJECT, "limit": "100"}).text
    assert "verdict: &lt;script&gt;" in labelled and "<script>alert" not in labelled


def _form_token(client: TestClient, trace: str) -> str:
    page = client.get(f"/traces/{trace}", params={"project": PROJECT})
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found and client.cookies.get("tracehouse_csrf_traces") == found.group(1)
    return found.group(1)


def _score_rows(client: TestClient, trace: str) -> list[list[Any]]:
    return _sql(client, f"SELECT name, value, string_value, comment, source, target_type, span_id FROM scores FINAL "
                        f"WHERE trace_id = '{trace}' AND source = 'ui' ORDER BY created_at")  # fmt: skip


def test_cross_site_score_posts_are_refused_and_write_nothing(seeded: Seeded) -> None:
    client, _ = seeded
    trace = trace_id(6)
    form = {"name": "helpful", "value": "0", "comment": "forged"}
    path = f"/traces/{trace}/scores?project={PROJECT}"
    token = _form_token(client, trace)  # the victim's browser holds a token cookie
    # another site's form: its Origin is refused at the edge, even with a token it guessed right
    forged = client.post(path, data={**form, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "may not change anything" in forged.text
    cross = client.post(path, data={**form, "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    # no browser headers at all: the form must still carry the cookie's token
    assert client.post(path, data=form).status_code == 403
    assert client.post(path, data={**form, "csrf": "x" * 32}).status_code == 403
    client.cookies.clear()
    without_cookie = client.post(path, data={**form, "csrf": token})
    assert without_cookie.status_code == 403 and "came from another site" in without_cookie.text
    assert client.post(path, json={**form, "csrf": token}).status_code == 415
    assert _score_rows(client, trace) == []


def test_adding_a_score_from_the_trace_page(seeded: Seeded) -> None:
    client, _ = seeded
    trace = trace_id(7)
    token = _form_token(client, trace)
    generate = format(0xB0000 + 7 * 16 + 3, "016x")
    path = f"/traces/{trace}/scores?project={PROJECT}"
    added = client.post(path, data={"csrf": token, "name": "helpful", "value": "0.75", "comment": HOSTILE},
                        follow_redirects=False)  # fmt: skip
    assert added.status_code == 303 and added.headers["location"] == f"/traces/{trace}?project={PROJECT}#scores"
    on_span = client.post(path, data={"csrf": token, "name": "tone", "value": "polite", "span_id": generate},
                          follow_redirects=False)  # fmt: skip
    assert on_span.status_code == 303 and f"span={generate}" in on_span.headers["location"]
    assert _score_rows(client, trace) == [["helpful", 0.75, "", HOSTILE, "ui", "trace", ""],
                                          ["tone", None, "polite", "", "ui", "span", generate]]  # fmt: skip
    page = client.get(f"/traces/{trace}", params={"project": PROJECT, "span": generate}).text
    assert "&lt;script&gt;alert" in page and "<script>alert" not in page and "polite" in page
    listed = {t["trace_id"]: t["scores"] for t in _get(client, "/api/v1/ui/traces", limit="100")["traces"]}
    assert {s["name"] for s in listed[trace]} == {"helpful", "tone"}
    for bad, words in (({"name": "", "value": "1"}, "name: expected a score name"),
                       ({"name": "x", "value": "nan"}, "value: expected a finite number"),
                       ({"name": "x", "value": "1", "span_id": "f" * 16}, "no span"),
                       ({"name": "x", "value": "1", "comment": "c" * 5000}, "comment: at most")):  # fmt: skip
        refused = client.post(path, data={"csrf": token, **bad})
        assert refused.status_code == 400 and words in refused.text
    unknown = client.post(f"/traces/{'e' * 32}/scores?project={PROJECT}", data={"csrf": token, "name": "x",
                                                                              "value": "1"})  # fmt: skip
    assert unknown.status_code == 404 and "no trace " + "e" * 32 in unknown.text
    assert len(_score_rows(client, trace)) == 2


def test_a_project_key_scores_only_its_own_project(tmp_path: Path) -> None:
    from tracehouse.collector import Store
    from tracehouse.collector.store.keys import KeyStore

    database = f"uitrk_{os.getpid()}_{time.monotonic_ns()}"
    store = Store(SESSION_STORE_URL, database)
    _, mine = KeyStore(store).create(PROJECT)
    _, other = KeyStore(store).create("elsewhere")
    store.close()
    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=database, require_keys=True,
                               spool_dir=tmp_path / "wal"))  # fmt: skip
    with collector_client(parts.app) as client:
        trace = trace_id(0)
        span = {"type": "span", "project": PROJECT, "name": "turn", "trace_id": trace, "span_id": "c" * 16,
                "parent_span_id": "", "start_ns": time.time_ns() - 10**6, "end_ns": time.time_ns(), "status": "ok",
                "attributes": {}, "events": []}  # fmt: skip
        written = client.post("/api/v1/records", json=[span], headers={"Authorization": f"Bearer {mine}"})
        assert written.status_code == 200
        client.cookies.set("tracehouse_key", other)
        token = _form_token_as(client, trace, expect=403)
        form = {"csrf": token, "name": "x", "value": "1"}
        refused = client.post(f"/traces/{trace}/scores?project={PROJECT}", data=form)
        assert refused.status_code == 403 and "reads only project 'elsewhere'" in refused.text
        client.cookies.set("tracehouse_key", mine)
        token = _form_token_as(client, trace, expect=200)
        ok = client.post(f"/traces/{trace}/scores?project={PROJECT}", data={"csrf": token, "name": "x", "value": "1"},
                         follow_redirects=False)  # fmt: skip
        assert ok.status_code == 303
    parts.close()


def _form_token_as(client: TestClient, trace: str, expect: int) -> str:
    page = client.get(f"/traces/{trace}", params={"project": PROJECT})
    assert page.status_code == expect
    if expect != 200:  # a refused page sets no token: the caller's browser still has one from before
        client.cookies.set("tracehouse_csrf_traces", "t" * 32)
    return str(client.cookies.get("tracehouse_csrf_traces"))


def test_sessions_and_users_group_traces_and_unknown_ids_are_404(seeded: Seeded) -> None:
    client, _ = seeded
    sessions = {g["id"]: g for g in _get(client, "/api/v1/ui/sessions")["items"]}
    assert set(sessions) == {"sess-a", "sess-b", HOSTILE_SESSION, "sess-oi"}
    rows = _sql(client, f"""
        SELECT s, count(), sum(t), countIf(e > 0) FROM (SELECT trace_id, anyIf(session_id, session_id != '') AS s,
        sumOrNull(total_tokens) AS t, countIf(status = 'error') AS e FROM spans WHERE project = '{PROJECT}'
        GROUP BY trace_id) WHERE s != '' GROUP BY s""")  # fmt: skip
    for session, traces, tokens, failed in rows:
        found = sessions[session]
        # the child spans' tokens count, though only the root names the session
        assert (found["traces"], found["tokens"], found["errors"]) == (traces, tokens, failed)
    assert sessions["sess-a"]["traces"] == 8 and sessions["sess-a"]["errors"] == 1
    assert sessions["sess-a"]["users"] == ["alice"]
    one = _get(client, "/api/v1/ui/sessions/sess-b")
    assert [t["trace_id"] for t in one["traces"]] == [trace_id(i) for i in range(8, 14)]  # in time order
    assert one["traces"][0]["input"] == "question 8" and one["traces"][0]["output"] == "answer 8"
    assert one["related"] == ["bob"] and one["totals"]["errors"] == 1
    users = {g["id"]: g for g in _get(client, "/api/v1/ui/users")["items"]}
    assert users["alice"]["traces"] == 8 and users["bob"]["traces"] == 7 and users["carol"]["traces"] == 1
    bob = _get(client, "/api/v1/ui/users/bob")
    assert bob["related"] == sorted(["sess-b", HOSTILE_SESSION])
    for path in ("/sessions", "/users", "/sessions/sess-a", "/users/bob", "/sessions/" + HOSTILE_SESSION):
        page = client.get(path, params={"project": PROJECT})
        assert page.status_code == 200, (path, page.text[:300])
        assert "<img src=x" not in page.text and "<script>alert" not in page.text
    listing = client.get("/sessions", params={"project": PROJECT}).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing and 'href="/sessions/sess-a?project=tr' in listing
    for path, words in (("/api/v1/ui/sessions/nope", "no session 'nope' in project 'tr'"),
                        ("/api/v1/ui/users/nobody", "no user 'nobody' in project 'tr'")):  # fmt: skip
        answer = client.get(path, params={"project": PROJECT})
        assert answer.status_code == 404 and words in answer.json()["error"]
        page = client.get(path.replace("/api/v1/ui", ""), params={"project": PROJECT})
        assert page.status_code == 404 and words.replace("'", "&#39;") in page.text
    trace_page = client.get(f"/traces/{trace_id(9)}", params={"project": PROJECT}).text
    assert 'id="trace-session" href="/sessions/sess-b?' in trace_page and 'id="trace-user"' in trace_page
    nav = client.get("/traces", params={"project": PROJECT}).text
    assert 'href="/sessions?project=tr"' in nav and 'href="/users?project=tr"' in nav


def _post_quality_scores(client: TestClient) -> dict[str, float]:
    """`quality` on six traces: on the trace, on a span by span id only, twice on one trace (mean), a
    label (not a number, ignored by the sort) on another."""
    score = {"type": "score", "project": PROJECT, "source": "eval", "comment": "", "time_ns": time.time_ns(),
             "name": "quality"}  # fmt: skip
    on_trace = {5: 0.9, 6: -2.0, 7: 0.9, 8: 0.1}
    records = [{**score, "target_type": "trace", "trace_id": trace_id(i), "span_id": "", "value": v}
               for i, v in on_trace.items()]  # fmt: skip
    records.append({**score, "target_type": "trace", "trace_id": trace_id(8), "span_id": "", "value": 0.5})
    records.append({**score, "target_type": "span", "trace_id": "", "span_id": format(0xB0000 + 10 * 16 + 3, "016x"),
                    "value": 0.7})  # fmt: skip
    records.append({**score, "target_type": "trace", "trace_id": trace_id(11), "span_id": "", "value": "meh"})
    answer = client.post("/api/v1/records", json=records)
    assert answer.status_code == 200, answer.text
    return {trace_id(5): 0.9, trace_id(6): -2.0, trace_id(7): 0.9, trace_id(8): 0.3, trace_id(10): 0.7}


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sort_by_a_score_pages_both_ways(seeded: Seeded, order: str) -> None:
    client, info = seeded
    means = _post_quality_scores(client)
    ranked = sorted(means, key=lambda t: (means[t], t), reverse=order == "desc")
    forward, backward = _walk(client, sort="score:quality", order=order)
    listed = [t for p in forward for t in p]
    assert len(listed) == info["traces"] and len(set(listed)) == len(listed)
    scored = listed[: len(means)] if order == "desc" else listed[-len(means) :]
    assert scored == ranked  # mean per trace (trace 8: 0.1 and 0.5), span scores count for their trace
    assert backward == forward
    rest = _get(client, "/api/v1/traces", sort="score:quality", order=order, limit=100)
    assert [r[0] for r in rest["rows"]] == listed  # the REST API sorts the same way
    page = client.get("/traces", params={"project": PROJECT, "sort": "score:quality", "order": order}).text
    unscored = _get(client, "/api/v1/ui/traces", sort="score:nobody-gave-this", order=order, limit="100")
    assert len(unscored["traces"]) == info["traces"]  # a score nobody gave: every trace, by id
    link = r'class="sort score-sort" data-score="quality" href="[^"]*sort=score%3Aquality[^"]*">quality [▼▲]'
    assert re.search(link, page)


@pytest.mark.parametrize("sort", ["score:", "score:" + "x" * 201, "score:a\nb", "scores:quality"])
def test_bad_score_sorts_are_400(seeded: Seeded, sort: str) -> None:
    client, _ = seeded
    for path in ("/api/v1/ui/traces", "/api/v1/traces"):
        answer = client.get(path, params={"project": PROJECT, "sort": sort})
        assert answer.status_code == 400 and "score:<score name>" in answer.text, (path, answer.text)
