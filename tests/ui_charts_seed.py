"""A store seeded for the chart tests (project "charts"), through a collector's HTTP API.

`seed_charts(post)` writes:
- spans of 25 span names over the last hour, none from 40 to 20 minutes ago (a gap), latencies from
  1 ms to 5 s (a spread that starts the latency chart log-scaled), and a few spans days ago (7d);
- a run `dm-run` whose `loss` has the step metric `epoch` (define_metric), 30 steps, epoch = step // 10;
- a random sweep over `lr` (log_uniform_values) and `opt` (categorical) whose trial runs have no names.
Returns what the tests check against.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

Post = Callable[[str, Any], Any]
PROJECT = "charts"
NAMES = [f"op-{i:02d}" for i in range(25)]
RUN = "dm-run"
SWEEP_TRIALS = 8


def _span(index: int, name: str, start_ns: int, duration_ms: float) -> dict[str, Any]:
    return {
        "type": "span", "project": PROJECT, "name": name, "trace_id": format(10_000 + index, "032x"),
        "span_id": format(10_000 + index, "016x"), "parent_span_id": "", "start_ns": start_ns,
        "end_ns": start_ns + int(duration_ms * 1e6), "status": "ok", "status_message": "",
        "attributes": {"tracehouse.span.kind": "function"}, "events": [], "span_kind": "INTERNAL", "scope": "seed",
        "resource": {"service.name": "charts"},
    }  # fmt: skip


def _spans(now: int) -> list[dict[str, Any]]:
    records, index = [], 0
    minute = 60 * 10**9
    for ago in [*range(2, 20), *range(41, 58)]:  # minutes ago; nothing 20 to 40 minutes ago
        for k, name in enumerate(NAMES):
            if (k + ago) % 3 and k > 4:  # the first five names are the busiest
                continue
            duration = 1.0 if k == 0 else 5000.0 if k == 1 else 10.0 + k * 3
            records.append(_span(index, name, now - ago * minute + k * 10**9, duration))
            index += 1
    for days in (2, 4, 6):
        records.append(_span(index, NAMES[0], now - days * 86400 * 10**9, 20.0))
        index += 1
    return records


def _run(now: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [
        {"type": "run", "project": PROJECT, "run_id": RUN, "name": "define-metric", "state": "finished",
         "config": {"lr": 0.1}, "summary": {"loss": 0.01}, "created_ns": now, "updated_ns": now + 10**9,
         "heartbeat_ns": now + 10**9, "version": now + 10**9},
        {"type": "values", "project": PROJECT, "run_id": RUN, "step": 0, "time_ns": now, "values": {
            "_define_metric/loss": {"_type": "metric_definition", "name": "loss", "summary": ["min"], "goal": None,
                                    "step_metric": "epoch", "step_sync": True, "hidden": False},
            "_define_metric/epoch": {"_type": "metric_definition", "name": "epoch", "summary": ["last"],
                                     "goal": None, "step_metric": None, "step_sync": True, "hidden": True}}},
    ]  # fmt: skip
    for step in range(30):
        values: dict[str, Any] = {"loss": 10.0 / (step + 1) ** 3}  # 10 down to 0.00037: a wide spread
        if step % 10 == 0:
            values["epoch"] = step // 10  # logged at the start of each epoch only: step_sync fills the rest
        records.append({"type": "metrics", "project": PROJECT, "run_id": RUN, "step": step,
                        "time_ns": now + step * 2 * 10**9, "values": values})  # fmt: skip
    return records


def seed_charts(post: Post) -> dict[str, Any]:
    """Write the chart fixtures; returns the sweep id and its trials (run id, params, metric)."""
    now = time.time_ns() - 60 * 10**9
    post("/api/v1/records", _spans(now) + _run(now))
    sweep_id = post("/api/v1/sweeps", {"project": PROJECT, "config": {
        "method": "random", "metric": {"name": "loss", "goal": "minimize"}, "run_cap": SWEEP_TRIALS,
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
                       "opt": {"values": ["adam", "sgd"]}, "width": {"values": [16, 32, 64]}},
    }})["sweep_id"]  # fmt: skip
    trials = []
    for _ in range(SWEEP_TRIALS):
        answer = post(f"/api/v1/sweeps/{sweep_id}/next", {"project": PROJECT, "agent_id": "charts"})
        if answer["action"] != "run":
            break
        run_id, params = answer["run_id"], answer["params"]
        loss = abs(math.log10(params["lr"]) + 3) + (0.5 if params["opt"] == "sgd" else 0.0)
        stamp = time.time_ns()
        post("/api/v1/records", [
            {"type": "run", "project": PROJECT, "run_id": run_id, "name": "", "state": "finished",
             "config": params, "summary": {"loss": loss}, "sweep_id": sweep_id, "created_ns": stamp,
             "updated_ns": stamp + 10**9, "heartbeat_ns": stamp, "version": stamp},
            {"type": "metrics", "project": PROJECT, "run_id": run_id, "step": 0, "time_ns": stamp,
             "values": {"loss": loss}},
        ])  # fmt: skip
        trials.append((run_id, params, loss))
    return {"project": PROJECT, "sweep_id": sweep_id, "trials": trials, "run": RUN}
