"""A small RAG app traced with `@th.trace`, run on the embedded store: no server, no configuration.

    python examples/rag_demo.py

It answers a few questions over an in-memory document set (a keyword retriever and a stand-in
"LLM" that composes an answer and reports token usage), then prints the latency table per span
name and per model, one trace as a tree, and where the data lives.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import tracehouse as th
from tracehouse.cli.main import format_table, format_tree

DOCUMENTS = [
    {"id": "doc-1", "text": "tracehouse stores LLM traces and training runs in ClickHouse."},
    {"id": "doc-2", "text": "The @trace decorator records inputs, outputs, latency and errors of a function."},
    {"id": "doc-3", "text": "Spans are written to a spool first, so a crash loses nothing already flushed."},
    {"id": "doc-4", "text": "The embedded store is chDB, an in-process ClickHouse engine."},
    {"id": "doc-5", "text": "Latency percentiles per span name or model come from one SQL query."},
]
QUESTIONS = [
    "Where does tracehouse store traces?",
    "What does the trace decorator record?",
    "What happens to spans after a crash?",
    "Which engine is the embedded store?",
    "How are latency percentiles computed?",
]
MODELS = ["gpt-4o-mini", "gpt-4.1-nano"]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z@]+", text.lower()))


@th.trace(kind="embedding")
def embed(text: str) -> list[float]:
    """A stand-in embedding: a bag-of-letters vector."""
    time.sleep(random.uniform(0.001, 0.003))
    return [text.lower().count(c) / max(len(text), 1) for c in "aeiou"]


@th.trace(kind="retriever")
def retrieve(question: str, top_k: int = 2) -> list[dict[str, object]]:
    """Rank documents by word overlap with the question."""
    embed(question)
    scored = [
        {"id": d["id"], "text": d["text"], "score": len(_words(question) & _words(d["text"])) / len(_words(question))}
        for d in DOCUMENTS
    ]
    best = sorted(scored, key=lambda d: d["score"], reverse=True)[:top_k]
    th.current_span().set_context(best)
    return best


@th.trace(kind="llm")
def generate(question: str, documents: list[dict[str, object]], model: str) -> str:
    """A stand-in LLM call: composes an answer and reports token usage like a real provider."""
    prompt = "Answer from the context.\n" + "\n".join(str(d["text"]) for d in documents) + f"\nQ: {question}"
    time.sleep(random.uniform(0.01, 0.04))
    answer = str(documents[0]["text"]) if documents else "I don't know."
    th.current_span().set_usage(
        model=model,
        provider="openai",
        input_tokens=len(prompt.split()) * 4 // 3,
        output_tokens=len(answer.split()) * 4 // 3,
    )
    return answer


@th.trace(kind="chain")
def answer(question: str, model: str = "gpt-4o-mini") -> str:
    """The RAG pipeline: retrieve, then generate."""
    return generate(question, retrieve(question), model=model)


def cli_command() -> str:
    """How to run `tracehouse` from where the user stands: plain when it is on PATH (the venv is
    active), else the path of this interpreter's script (`.venv/bin/tracehouse`)."""
    script = Path(sys.executable).parent / "tracehouse"
    on_path = shutil.which("tracehouse")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "tracehouse"
    if not script.exists():
        return f"{sys.executable} -m tracehouse"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def main() -> None:
    random.seed(7)
    started = datetime.now(timezone.utc)
    for round_ in range(4):
        for question in QUESTIONS:
            answer(question, model=MODELS[round_ % 2])

    settings = th.get_settings()
    print(f"Traced {4 * len(QUESTIONS)} questions in project {settings.project!r}; the tables cover this run.\n")
    for by in ("name", "model"):
        table = th.latency(by=by, since=started)
        columns = [by, "count", "p50_ms", "p95_ms", "p99_ms", "error_rate", "input_tokens", "output_tokens", "cost_usd"]
        print(f"Latency by {by} (this run):")
        print(format_table(columns, table[columns].astype(object).where(table[columns].notna(), None).values.tolist()))
        print()
    newest = th.traces(limit=1, since=started)
    print("The newest trace:")
    print("\n".join(format_tree(th.trace_tree(str(newest.trace_id[0])))))
    print()
    print(f"Spool (write-ahead log): {settings.spool_dir}")
    print(f"Store (chDB, ClickHouse SQL): {settings.store_url}  database {settings.database!r}")
    print(
        f"Query it: {cli_command()} query "
        '"SELECT name, duration_ms, model, total_tokens FROM spans ORDER BY start_time DESC LIMIT 5"'
    )
    print(f"Browse it: {cli_command()} ui")


if __name__ == "__main__":
    main()
