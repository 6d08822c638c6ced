"""A small RAG app on the OpenAI client, traced with one line: `th.instrument_openai()`.

    OPENAI_API_KEY=sk-... python examples/rag_openai.py
    OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=x python examples/rag_openai.py   # any compatible server

`@th.trace` marks retrieve / generate / answer; the OpenAI call inside `generate` becomes a
`chat {model}` span under it with the messages, the answer, tokens, cost and (streamed) the time to
the first token. At the end it prints each trace as a tree and the latency per span name.
"""

from __future__ import annotations

import os
import re

import openai

import tracehouse as th
from tracehouse.cli.main import format_table, format_tree

DOCUMENTS = [
    {"id": "doc-1", "text": "API keys rotate every 90 days; the old key is revoked a day after the new one is live."},
    {"id": "doc-2", "text": "Traces are kept for 30 days in the hot store, then moved to object storage."},
    {"id": "doc-3", "text": "On-call engineers answer pages within 15 minutes during business hours."},
]
MODEL = os.environ.get("RAG_MODEL", "gpt-4o-mini")

th.instrument_openai()
client = openai.OpenAI(max_retries=1)


@th.trace(kind="retriever")
def retrieve(question: str, k: int = 2) -> list[dict[str, str]]:
    words = set(re.findall(r"\w+", question.lower()))
    ranked = sorted(DOCUMENTS, key=lambda d: -len(words & set(re.findall(r"\w+", d["text"].lower()))))
    th.current_span().set_context(ranked[:k])
    return ranked[:k]


@th.trace(kind="chain")
def generate(question: str, documents: list[dict[str, str]], stream: bool) -> str:
    context = "\n".join(d["text"] for d in documents)
    messages = [
        {"role": "system", "content": f"Answer in one sentence from this context:\n{context}"},
        {"role": "user", "content": question},
    ]
    if not stream:
        reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0)
        return reply.choices[0].message.content or ""
    pieces = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)


@th.trace(kind="chain")
def answer(question: str, stream: bool = False) -> str:
    return generate(question, retrieve(question), stream)


def main() -> None:
    for n, question in enumerate(["How often do API keys rotate?", "How long are traces kept?"]):
        print(f"Q: {question}\nA: {answer(question, stream=n % 2 == 1)}\n")
    th.flush()
    for trace_id in th.traces(limit=2)["trace_id"]:
        print("\n".join(format_tree(th.trace_tree(str(trace_id)))))
    table = th.latency(by="name", since="1h")
    columns = ["name", "count", "p50_ms", "p95_ms", "input_tokens", "output_tokens", "cost_usd"]
    print(format_table(columns, table[columns].astype(object).where(table[columns].notna(), None).values.tolist()))


if __name__ == "__main__":
    main()
