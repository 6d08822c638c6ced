"""Feedback scores in the UI: read from `scores` (what `th.score` and evaluations write) for a trace
and its spans or for a page of listed traces, and added from the trace page.

Adding one is a form POST to `/traces/{trace_id}/scores`: the edge guard refuses cross-site
requests (Origin, Sec-Fetch-Site), and the form carries a CSRF token that must match a cookie only
this origin sets (double submit, as `/login` does). The caller needs a key for the trace's project;
the score is written as a `score` record through the collector's write-ahead log, the same path and
mapping (`store/rows/evals.py`) a `th.score` record from a process takes.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.http.deps import parts
from tracehouse.collector.store.queries import TRACE_ID_RE
from tracehouse.collector.ui.render import context, html

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

CSRF_COOKIE = "tracehouse_csrf_traces"
CSRF_PATH = "/traces"
MAX_NAME, MAX_COMMENT = 200, 4000
router = APIRouter(include_in_schema=False)
_COLUMNS = ("score_id", "target_type", "trace_id", "span_id", "name", "value", "string_value", "comment", "source",
            "created_at")  # fmt: skip


def scores_of(store: Store, project: str, trace_ids: list[str], span_ids: list[str]) -> list[dict[str, Any]]:
    """Every score on these traces or spans, oldest first; `value` None for a label (`string_value`)."""
    if not trace_ids and not span_ids:
        return []
    _, rows = store.query_rows(
        f"SELECT {', '.join(_COLUMNS)} FROM scores FINAL WHERE project = {{p:String}} AND "
        "((trace_id != '' AND trace_id IN {t:Array(String)}) OR (span_id != '' AND span_id IN {s:Array(String)})) "
        "ORDER BY created_at, score_id LIMIT 10000",
        {"p": project, "t": trace_ids, "s": span_ids},
    )
    found = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
    for score in found:
        value = score["value"]
        score["value"] = None if value is None or not math.isfinite(float(value)) else float(value)
    return found


def summarise(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per score name: how many, the mean of the numbers, the labels given (most frequent first)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for score in scores:
        by_name.setdefault(str(score["name"]), []).append(score)
    out = []
    for name, given in sorted(by_name.items()):
        numbers = [s["value"] for s in given if s["value"] is not None]
        labels: dict[str, int] = {}
        for s in given:
            if s["value"] is None and s["string_value"]:
                labels[s["string_value"]] = labels.get(s["string_value"], 0) + 1
        out.append({"name": name, "count": len(given), "mean": sum(numbers) / len(numbers) if numbers else None,
                    "labels": sorted(labels, key=lambda k: (-labels[k], k))})  # fmt: skip
    return out


def list_summaries(store: Store, project: str, traces: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The score summary of each listed trace (its own scores and its spans'; `span_ids` of each trace)."""
    ids = [str(t["trace_id"]) for t in traces]
    span_trace = {str(span): str(t["trace_id"]) for t in traces for span in t.get("span_ids") or ()}
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for score in scores_of(store, project, ids, list(span_trace)):
        owner = score["trace_id"] or span_trace.get(score["span_id"], "")
        by_trace.setdefault(owner, []).append(score)
    return {trace_id: summarise(given) for trace_id, given in by_trace.items() if trace_id in ids}


def numeric_score_names(store: Store, project: str, limit: int = 50) -> list[str]:
    """The names of the project's numeric scores (what the trace list can sort by), alphabetical."""
    _, rows = store.query_rows(
        "SELECT DISTINCT name FROM scores WHERE project = {p:String} AND isFinite(value) AND string_value = '' "
        "ORDER BY name LIMIT {n:UInt32}",
        {"p": project, "n": limit},
    )
    return [str(row[0]) for row in rows]


def csrf_token(request: Request) -> str:
    """The token the trace page's form carries: the cookie's when the browser has one, else a new one
    (set on the response by `with_csrf_cookie`)."""
    token = request.cookies.get(CSRF_COOKIE) or ""
    if len(token) < 24:
        token = secrets.token_urlsafe(24)
    request.state.csrf = token
    return token


def with_csrf_cookie(request: Request, response: Response) -> Response:
    """The page's response with the CSRF cookie its form needs (HttpOnly, SameSite=Strict)."""
    token = getattr(request.state, "csrf", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path=CSRF_PATH)
    return response


def parse_score(form: dict[str, list[str]], span_ids: set[str]) -> dict[str, Any]:
    """The score a form asks for: name, value (a finite number, or a label), comment, span (optional)."""
    name = (form.get("name") or [""])[0].strip()
    raw = (form.get("value") or [""])[0].strip()
    comment = (form.get("comment") or [""])[0]
    span_id = (form.get("span_id") or [""])[0].strip()
    if not name or len(name) > MAX_NAME:
        raise ConfigError("name", f"expected a score name of 1 to {MAX_NAME} characters, got {name[:40]!r}")
    if not raw or len(raw) > MAX_NAME:
        raise ConfigError("value", f"expected a number or a label of up to {MAX_NAME} characters, got {raw[:40]!r}")
    if len(comment) > MAX_COMMENT:
        raise ConfigError("comment", f"at most {MAX_COMMENT} characters, got {len(comment)}")
    if span_id and span_id not in span_ids:
        raise ConfigError("span_id", f"no span {span_id[:40]!r} in this trace")
    value: Any = raw
    lowered = raw.lower()
    if lowered in ("true", "false"):
        value = 1.0 if lowered == "true" else 0.0  # stored as th.score stores a bool
    else:
        try:
            number = float(raw)
        except ValueError:
            number = None
        if number is not None and not math.isfinite(number):
            raise ConfigError("value", f"expected a finite number or a label, got {raw!r}")
        value = raw if number is None else number
    return {"name": name, "value": value, "comment": comment, "span_id": span_id}


def _refused(status: int, heading: str, error: str) -> Response:
    return html("error.html", status, page="traces", project="", projects=[], request_path="/traces", error=error,
                heading=heading, status=status)  # fmt: skip


@router.post("/traces/{trace_id}/scores")
async def add_score(request: Request, trace_id: str) -> Response:
    """Add a feedback score to a trace (or one of its spans) from the trace page's form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _refused(415, "Unsupported", "expected a form")
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    sent, expected = (form.get("csrf") or [""])[0], request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _refused(403, "Forbidden", "this form expired or came from another site; open the trace page again")
    if not TRACE_ID_RE.match(trace_id):
        return _refused(400, "Bad request", f"trace_id: expected 32 lowercase hex digits, got {trace_id[:40]!r}")
    from tracehouse.collector.store import queries as q

    collector = parts(request)
    try:
        project, _ = await context(request, collector)
        tree = await collector.read(q.trace_tree, collector.store, project, trace_id)
        spans = _span_ids(tree)
        score = parse_score(form, spans)
    except NotFoundError as error:
        return _refused(404, "Not found", str(error))
    except ConfigError as error:
        return _refused(400, "Bad request", str(error))
    record = {"type": "score", "project": project, "target_type": "span" if score["span_id"] else "trace",
              "trace_id": trace_id, "span_id": score["span_id"], "name": score["name"], "value": score["value"],
              "comment": score["comment"], "source": "ui", "time_ns": time.time_ns()}  # fmt: skip
    await collector.ingest(collector.record, record)
    target = f"/traces/{trace_id}?project={quote(project)}" + (f"&span={score['span_id']}" if score["span_id"] else "")
    return RedirectResponse(target + "#scores", 303)


def _span_ids(tree: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("span_id"):
            found.add(str(node["span_id"]))
        stack.extend(node.get("children", []))
    return found


__all__ = ["CSRF_COOKIE", "add_score", "csrf_token", "list_summaries", "parse_score", "router", "scores_of",
           "summarise", "with_csrf_cookie"]  # fmt: skip
