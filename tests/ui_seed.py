"""A store seeded with known traces, runs and a sweep, through a collector's HTTP API.

`seed(post)` takes a function `post(path, payload) -> dict` (a TestClient or urllib against a live
collector) and returns what the pages must show.
"""

from __future__ import annotations

import time
from typing import Any, Callable

Post = Callable[[str, Any], Any]
PROJECT = "ui"
XSS = "<script>alert('x')</script> what is tracehouse?"


def _span(trace: int, span: int, parent: int, name: str, kind: str, start_ns: int, duration_ms: float,
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    attributes = {"tracehouse.span.kind": kind, **extra.pop("attributes", {})}
    return {
        "type": "span", "project": PROJECT, "name": name, "trace_id": format(trace, "032x"),
        "span_id": format(span, "016x"), "parent_span_id": format(parent, "016x") if parent else "",
        "start_ns": start_ns, "end_ns": start_ns + int(duration_ms * 1e6), "status": extra.pop("status", "ok"),
        "status_message": extra.pop("status_message", ""), "attributes": attributes, "events": [],
        "span_kind": "INTERNAL", "scope": "seed", "resource": {"service.name": "seeded"},
    }  # fmt: skip


def seed(post: Post) -> dict[str, Any]:
    """Ten traces (root `answer` > `retrieve`, `generate`), the slowest 900 ms, two failing; two runs
    with 20 logged steps each; a grid sweep of four trials, finished."""
    now = time.time_ns() - 120 * 10**9  # two minutes ago: inside every range the pages offer
    records = []
    durations = [100.0 + 10 * i for i in range(9)] + [900.0]
    for i, duration in enumerate(durations):
        start = now + i * 10**9
        model = "gpt-4o" if i % 2 else "gpt-4o-mini"
        question = XSS if i == 0 else f"question {i}"
        messages = f'[{{"role": "system", "content": "be brief"}}, {{"role": "user", "content": "{question}"}}]'
        failing = i in (3, 7)
        records += [
            _span(i + 1, (i + 1) * 10, 0, "answer", "chain", start, duration,
                  attributes={"input.value": question, "output.value": f"answer {i}"}),
            _span(i + 1, (i + 1) * 10 + 1, (i + 1) * 10, "retrieve", "retriever", start, 5.0,
                  attributes={"gen_ai.retrieval.documents": '["doc A", "doc <b>B</b>"]'}),
            _span(i + 1, (i + 1) * 10 + 2, (i + 1) * 10, "generate", "llm", start + 6 * 10**6, duration - 10,
                  attributes={"input.value": messages, "output.value": f"answer {i}", "gen_ai.request.model": model,
                              "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10 + i},
                  status="error" if failing else "ok", status_message="rate limited" if failing else ""),
        ]  # fmt: skip
    runs = []
    for index, (run_id, lr) in enumerate((("run-a", 0.1), ("run-b", 0.01))):
        created = now + index * 10**9
        records.append({"type": "run", "project": PROJECT, "run_id": run_id, "name": f"lr-{lr}", "state": "finished",
                        "config": {"lr": lr, "model": {"layers": 2}}, "summary": {"loss": lr / 20},
                        "tags": ["seed"], "created_ns": created, "updated_ns": created + 10**9,
                        "heartbeat_ns": created + 10**9, "version": created + 10**9})  # fmt: skip
        for step in range(20):
            records.append({"type": "metrics", "project": PROJECT, "run_id": run_id, "step": step,
                            "time_ns": created + step * 10**7, "values": {"loss": lr / (step + 1)}})  # fmt: skip
        runs.append(run_id)
    post("/api/v1/records", records)
    sweep_id = post("/api/v1/sweeps", {"project": PROJECT, "config": {
        "method": "grid", "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.1, 0.01]}, "opt": {"values": ["adam", "sgd"]}}}})["sweep_id"]  # fmt: skip
    trials = []
    while True:
        answer = post(f"/api/v1/sweeps/{sweep_id}/next", {"project": PROJECT, "agent_id": "seed"})
        if answer["action"] != "run":
            break
        run_id, params = answer["run_id"], answer["params"]
        loss = params["lr"] * (2 if params["opt"] == "sgd" else 1)
        stamp = time.time_ns()
        post("/api/v1/records", [
            {"type": "run", "project": PROJECT, "run_id": run_id, "name": run_id, "state": "finished",
             "config": params, "summary": {"loss": loss}, "sweep_id": sweep_id, "created_ns": stamp,
             "updated_ns": stamp + 10**9, "heartbeat_ns": stamp, "version": stamp},
            {"type": "metrics", "project": PROJECT, "run_id": run_id, "step": 0, "time_ns": stamp,
             "values": {"loss": loss}},
        ])  # fmt: skip
        trials.append((run_id, params, loss))
    return {"project": PROJECT, "durations": durations, "runs": runs, "sweep_id": sweep_id, "trials": trials,
            "slowest_trace": format(10, "032x"), "xss_trace": format(1, "032x")}  # fmt: skip
