"""The spans bench/ingest.py sends: their GenAI attributes and prompt, and part 1's pre-built OTLP bodies.

OpenTelemetry is imported inside the functions, so a sender child loads only what it uses.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

MODEL = "gpt-4o-mini"
PROMPT = (
    "Answer the question using only the retrieved context. Question #%07d: how do I rotate the API key of a "
    "project without downtime? Context: keys are stored hashed; a project may hold two keys at once."
)


def span_attributes(i: int) -> dict[str, Any]:
    """The attributes of span number `i`: GenAI system, operation, model, token counts, a ~190-character prompt."""
    return {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 150 + i % 60,
        "gen_ai.usage.output_tokens": 20 + i % 40,
        "input.value": PROMPT % i,
    }


def build_bodies(count: int, batch: int, project: str, seed: int) -> list[bytes]:
    """`count` ExportTraceServiceRequest bodies of `batch` fresh spans each (a worker process runs this)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app", "tracehouse.project": project}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.ingest")
    bodies = []
    i = seed
    for _ in range(count):
        for _ in range(batch // 2):
            with (
                tracer.start_as_current_span("rag.answer", attributes=span_attributes(i)),
                tracer.start_as_current_span(f"chat {MODEL}", attributes=span_attributes(i + 1)),
            ):
                pass
            i += 2
        if batch % 2:
            with tracer.start_as_current_span("rag.answer", attributes=span_attributes(i)):
                i += 1
        spans = exporter.get_finished_spans()
        exporter.clear()
        bodies.append(encode_spans(spans).SerializeToString())
    provider.shutdown()
    return bodies


def prebuild(
    spans: int, batch: int, workers: int = 2, project: str = "ingest", first: int = 0
) -> tuple[list[bytes], list[int]]:
    """Bodies holding exactly `spans` spans (the last one may be smaller) of `project`, built in `workers`
    processes; span numbers start at `first` (distinct ids per part)."""
    sizes = [batch] * (spans // batch) + ([spans % batch] if spans % batch else [])
    full = spans // batch
    chunks = [(full * w // workers, full * (w + 1) // workers) for w in range(workers)]
    bodies: list[bytes] = []
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(build_bodies, hi - lo, batch, project, first + lo * batch) for lo, hi in chunks]
        tail = pool.submit(build_bodies, 1, sizes[-1], project, first + full * batch) if len(sizes) > full else None
        for future in futures:
            bodies.extend(future.result())
        if tail is not None:
            bodies.extend(tail.result())
    return bodies, sizes
