"""What the trace page adds to a trace's waterfall: totals, errors with their stack traces, retrieved
documents as documents, feedback scores, and the session and user the trace belongs to.

Errors come from the span's `exception` events (OpenTelemetry's `exception.type`, `exception.message`,
`exception.stacktrace`, as `Span.record_exception` and tracehouse's decorator write them), or from
`exception.*` span attributes some SDKs set instead; a failed span with neither shows its status
message. Documents come from the `context` column: tracehouse's `set_context` documents and
OpenInference's `retrieval.documents.N.document.*` (folded by collector/otlp/conventions.py into
{"text", "id", "score", "metadata"}), LangChain's `page_content`, or plain strings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse.collector.store.trace_sort import usage_sum
from tracehouse.collector.ui import data, trace_scores

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

_CONTENT_KEYS = ("content", "text", "page_content", "document.content", "document")
_ID_KEYS = ("id", "document.id", "doc_id")
_SCORE_KEYS = ("score", "document.score", "relevance_score")
_EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")


def documents(text: Any) -> list[dict[str, Any]]:
    """Retrieved documents as {"id", "score", "content", "metadata", "other"}; a context that is not a
    JSON list is one document of that text."""
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        value = orjson.loads(text) if text.lstrip()[:1] in ("[", "{") else None
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        value = value.get("documents") if isinstance(value.get("documents"), list) else [value]
    if not isinstance(value, list):
        return [_document({"content": text})]
    return [_document(item if isinstance(item, dict) else {"content": item}) for item in value]


def _pick(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[Optional[str], Any]:
    return next(((k, item[k]) for k in keys if k in item), (None, None))


def _document(item: dict[str, Any]) -> dict[str, Any]:
    content_key, content = _pick(item, _CONTENT_KEYS)
    id_key, doc_id = _pick(item, _ID_KEYS)
    score_key, score = _pick(item, _SCORE_KEYS)
    metadata = item.get("metadata", item.get("document.metadata"))
    if isinstance(metadata, str) and metadata.lstrip().startswith("{"):
        try:
            metadata = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            pass
    used = {content_key, id_key, score_key, "metadata", "document.metadata"}
    other = {k: v for k, v in item.items() if k not in used}
    if isinstance(score, str):
        try:
            score = float(score)
        except ValueError:
            pass
    return {
        "id": None if doc_id is None else str(doc_id),
        "score": score if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "content": content if isinstance(content, str) else "" if content is None else _dumps(content),
        "metadata": metadata if isinstance(metadata, dict) else ({} if metadata is None else {"value": metadata}),
        "other": {k: v if isinstance(v, str) else _dumps(v) for k, v in other.items()},
    }


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def exceptions(
    names: list[str], attributes: list[dict[str, str]], span_attributes: dict[str, str]
) -> list[dict[str, str]]:
    """A span's recorded exceptions: type, message, stack trace (as stored)."""
    found = [
        {"type": a.get("exception.type", ""), "message": a.get("exception.message", ""),
         "stacktrace": a.get("exception.stacktrace", "")}
        for name, a in zip(names, attributes, strict=False) if name == "exception"
    ]  # fmt: skip
    if not found and any(k in span_attributes for k in _EXCEPTION_KEYS):
        found.append({"type": span_attributes.get("exception.type", ""),
                      "message": span_attributes.get("exception.message", ""),
                      "stacktrace": span_attributes.get("exception.stacktrace", "")})  # fmt: skip
    return found


def _span_extras(store: Store, project: str, result: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    """Per span id: its events' names and attributes, session and user (columns the tree leaves out); and
    the trace's usage sums (input, output, total tokens, cost; store/trace_sort.py's `usage_sum`)."""
    starts = [s["start_time"] for s in result["spans"]]
    params = {"project": project, "t": result["trace_id"], "lo": min(starts) - timedelta(milliseconds=1),
              "hi": max(starts) + timedelta(milliseconds=1)}  # fmt: skip
    where = "project = {project:String} AND trace_id = {t:String} AND start_time BETWEEN " \
        "{lo:DateTime64(9, 'UTC')} AND {hi:DateTime64(9, 'UTC')}"  # fmt: skip
    _, rows = store.query_rows(
        f"SELECT span_id, event_names, event_attributes, session_id, user_id FROM spans WHERE {where}", params
    )
    sums = ", ".join(usage_sum(c) for c in ("input_tokens", "output_tokens", "total_tokens", "cost_usd"))
    _, usage = store.query_rows(f"SELECT {sums} FROM spans WHERE {where}", params)
    extras = {str(r[0]): {"event_names": list(r[1]), "event_attributes": [dict(a) for a in r[2]],
                          "session_id": r[3], "user_id": r[4]} for r in rows}  # fmt: skip
    return extras, list(usage[0])


def trace(store: Store, project: str, trace_id: str) -> dict[str, Any]:
    """The trace page's data: the waterfall (ui/data.py) with totals, errors, documents and scores."""
    result = data.trace(store, project, trace_id)
    spans = result["spans"]
    extras, (input_tokens, output_tokens, total_tokens, cost) = _span_extras(store, project, result)
    scores = trace_scores.scores_of(store, project, [trace_id], [s["span_id"] for s in spans])
    by_span: dict[str, list[dict[str, Any]]] = {}
    for score in scores:
        by_span.setdefault(score["span_id"], []).append(score)
    for span in spans:
        extra = extras.get(span["span_id"], {})
        span["documents"] = documents(span.get("context"))
        span["exceptions"] = exceptions(extra.get("event_names", []), extra.get("event_attributes", []),
                                        span.get("attributes") or {})  # fmt: skip
        span["scores"] = by_span.get(span["span_id"], [])
    errors = [s for s in spans if s.get("status") == "error"]
    result["totals"] = {
        "duration_ms": result["duration_ms"], "spans": len(spans), "input_tokens": input_tokens,
        "output_tokens": output_tokens, "total_tokens": total_tokens, "cost_usd": cost, "errors": len(errors),
    }  # fmt: skip
    result["errors"] = [{"span_id": s["span_id"], "name": s["name"], "status_message": s.get("status_message") or "",
                         "exceptions": s["exceptions"]} for s in errors]  # fmt: skip
    result["scores"] = [s for s in scores if not s["span_id"]]
    result["score_summary"] = trace_scores.summarise(scores)
    result["session_id"] = next((e["session_id"] for e in extras.values() if e["session_id"]), "")
    result["user_id"] = next((e["user_id"] for e in extras.values() if e["user_id"]), "")
    return result


__all__ = ["documents", "exceptions", "trace"]
