"""A store seeded for the trace pages: 23 traces with ties in every sort key, unknown tokens and cost,
failures with stack traces, retrieved documents, sessions, users and feedback scores, through a
collector's HTTP API (tracehouse's records, and OTLP from the OpenTelemetry SDK with OpenInference
attributes). `seed_traces(post, post_otlp)` returns what the pages must show.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

PROJECT = "tr"
HOSTILE = "<script>alert('th')</script>"
STACK = f'Traceback (most recent call last):\n  File "app.py", line 3, in answer\n    raise ValueError("{HOSTILE}")\nValueError: {HOSTILE}\n'  # noqa: E501
HOSTILE_SESSION = "<img src=x onerror=alert(1)>"
N_JSON_TRACES = 22
Post = Callable[[str, Any], Any]


def trace_id(i: int) -> str:
    return format(0xA000 + i, "032x")


def _span(i: int, span: int, parent: int, name: str, kind: str, start_ns: int, duration_ms: float,
          attributes: dict[str, Any], **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "type": "span", "project": PROJECT, "name": name, "trace_id": trace_id(i),
        "span_id": format(0xB0000 + i * 16 + span, "016x"),
        "parent_span_id": format(0xB0000 + i * 16 + parent, "016x") if parent else "",
        "start_ns": start_ns, "end_ns": start_ns + int(duration_ms * 1e6), "status": extra.get("status", "ok"),
        "status_message": extra.get("status_message", ""), "attributes": {"tracehouse.span.kind": kind, **attributes},
        "events": extra.get("events", []), "span_kind": "INTERNAL", "scope": "seed",
        "resource": {"service.name": "rag"},
    }  # fmt: skip


def _documents(i: int) -> str:
    return json.dumps([
        {"id": f"doc-{i}-1", "score": 0.92, "text": f"Paris is the capital of France ({i}).",
         "metadata": {"source": "atlas.pdf", "page": 3}},
        {"id": f"doc-{i}-2", "score": 0.41, "text": f"{HOSTILE} hostile document", "metadata": {"source": HOSTILE}},
    ])  # fmt: skip


def _trace(i: int, start: int) -> list[dict[str, Any]]:
    """Trace i: root `turn` (session and user on the root only) > `retrieve` (documents) > `generate`
    (tokens, except every fifth trace); durations repeat (ties), traces 4 and 9 fail."""
    duration = 100.0 + 50 * (i % 4)
    session = "sess-a" if i < 8 else "sess-b" if i < 14 else HOSTILE_SESSION if i == 14 else ""
    user = "alice" if i < 8 else "bob" if i < 15 else ""
    root_attributes = {"input.value": f"question {i}", "output.value": f"answer {i}"}
    if session:
        root_attributes["session.id"] = session
    if user:
        root_attributes["langfuse.user.id" if i % 2 else "user.id"] = user
    failing = i in (4, 9)
    usage = {} if i % 5 == 0 else {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100 + i,
                                   "gen_ai.usage.output_tokens": 20 if i % 3 else 40}  # fmt: skip
    events = [{"name": "exception", "time_ns": start + 10**6, "attributes": {
        "exception.type": "ValueError", "exception.message": HOSTILE, "exception.stacktrace": STACK,
        "exception.escaped": "true"}}] if failing else []  # fmt: skip
    return [
        _span(i, 1, 0, "turn", "chain", start, duration, root_attributes),
        _span(i, 2, 1, "retrieve", "retriever", start, 5.0, {"gen_ai.retrieval.documents": _documents(i)}),
        _span(i, 3, 1, "generate", "llm", start + 6 * 10**6, duration - 10,
              {"input.value": f"question {i}", "output.value": f"answer {i}", **usage},
              status="error" if failing else "ok", status_message=f"ValueError: {HOSTILE}" if failing else "",
              events=events),
    ]  # fmt: skip


def otlp_trace() -> bytes:
    """One trace from the OpenTelemetry SDK: an OpenInference retriever with flattened documents and a
    failing step whose exception the SDK records (with its stack trace)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "oi-app", "tracehouse.project": PROJECT}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("openinference-like")
    with tracer.start_as_current_span("oi-query", attributes={"openinference.span.kind": "CHAIN",
                                                              "session.id": "sess-oi", "user.id": "carol",
                                                              "input.value": "where is Paris?"}):  # fmt: skip
        with tracer.start_as_current_span("oi-retrieve", attributes={
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.id": "kb-17", "retrieval.documents.0.document.score": 0.83,
            "retrieval.documents.0.document.content": "Paris is in France.",
            "retrieval.documents.0.document.metadata": '{"source": "kb", "lang": "en"}',
            "retrieval.documents.1.document.id": "kb-4", "retrieval.documents.1.document.score": 0.2,
            "retrieval.documents.1.document.content": "Lyon is in France too.",
        }):  # fmt: skip
            pass
        with tracer.start_as_current_span("oi-fail") as failing:
            try:
                raise KeyError("missing <b>key</b>")
            except KeyError as error:
                failing.record_exception(error)
                failing.set_status(Status(StatusCode.ERROR, "KeyError"))
    return bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())


def seed_traces(post: Post, post_otlp: Callable[[bytes], Any]) -> dict[str, Any]:
    """Post the traces, then feedback scores as `th.score` records: on trace 1, on trace 2's generate
    span (by span id only, as `th.score(span_id, ...)` sends it) and a label on trace 3."""
    base = time.time_ns() - 900 * 10**9
    records = []
    for i in range(N_JSON_TRACES):
        start = base + (i if i != 21 else 20) * 10 * 10**9  # traces 20 and 21 start at the same nanosecond
        records += _trace(i, start)
    post("/api/v1/records", records)
    post_otlp(otlp_trace())
    now = time.time_ns()
    score = {"type": "score", "project": PROJECT, "source": "feedback", "comment": "", "time_ns": now}
    post("/api/v1/records", [
        {**score, "target_type": "trace", "trace_id": trace_id(1), "span_id": "", "name": "helpful", "value": 1.0,
         "comment": "fixed my issue"},
        {**score, "target_type": "span", "trace_id": "", "span_id": format(0xB0000 + 2 * 16 + 3, "016x"),
         "name": "accuracy", "value": 0.25},
        {**score, "target_type": "trace", "trace_id": trace_id(3), "span_id": "", "name": "verdict",
         "value": HOSTILE},
    ])  # fmt: skip
    return {"project": PROJECT, "traces": N_JSON_TRACES + 1, "failing": [trace_id(4), trace_id(9)],
            "documents_trace": trace_id(4), "scored": trace_id(1), "span_scored": trace_id(2),
            "labelled": trace_id(3)}  # fmt: skip
