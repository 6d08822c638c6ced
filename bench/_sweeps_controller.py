"""Part 1 of `sweeps.py`: the sweep controller on an embedded store with --trials finished trials.

A child process sets the sweep up (untimed), then times `next_trial` directly, through the SDK's
`LocalSweeps` (which adds the spool catch-up) and with each store call timed by phase.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import math
import os
import pstats
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from _common import median, own_peak_rss_mb

PROJECT = "bench"
VARIANTS = ("controller", "local", "phases")
SEARCHED = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
    "layers": {"distribution": "int_uniform", "min": 1, "max": 8},
}
GRID: dict[str, dict[str, list[Any]]] = {
    "lr": {"values": [10.0**-k for k in range(1, 11)]},
    "optimizer": {"values": ["adam", "sgd", "rmsprop", "adagrad"]},
    "layers": {"values": [1, 2, 3, 4, 5, 6, 7, 8]},
}  # 320 points: the finished trials and every claim of the timed (and profiled) calls must fit
GRID_POINTS = math.prod(len(p["values"]) for p in GRID.values())
PHASES = ("sweep row", "trials query", "agents query", "runs query", "history query", "suggest", "other")
INSERT_PHASES = {"sweep_agents": "beat insert", "sweep_trials": "claim insert"}


def sweep_config(method: str) -> dict[str, Any]:
    return {"method": method, "metric": {"name": "loss", "goal": "minimize"},
            "parameters": GRID if method == "grid" else SEARCHED}  # fmt: skip


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in (0, 1])."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": median(values), "p90": percentile(values, 0.9), "max": max(values), "n": len(values)}


def _train_search() -> None:
    import tracehouse as th

    with th.init() as run:
        c = run.config
        base = math.log10(c.lr) ** 2 / 10 + c.layers / 8 + {"adam": 0.0, "sgd": 0.3}.get(c.optimizer, 0.5)
        for step in range(5):
            run.log({"loss": base / (step + 1)})


class _PhaseStore:
    """The store, each query and insert timed into `phases` (ms) by what it reads or writes."""

    def __init__(self, store: Any, phases: dict[str, float]) -> None:
        self._store, self._phases = store, phases

    def _add(self, phase: str, started: float) -> None:
        self._phases[phase] = self._phases.get(phase, 0.0) + (time.perf_counter() - started) * 1e3

    @staticmethod
    def _query_phase(sql: str) -> str:
        for marker, phase in (("FROM sweeps FINAL", "sweep row"), ("FROM sweep_trials", "trials query"),
                              ("FROM sweep_agents", "agents query"), ("FROM metrics", "history query"),
                              ("FROM runs FINAL", "runs query")):  # fmt: skip
            if marker in sql:
                return phase
        return "other query"

    def query_rows(self, sql: str, parameters: Any = None, settings: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self._store.query_rows(sql, parameters, settings)
        finally:
            self._add(self._query_phase(sql), started)

    def insert(self, table: str, columns: Any, dedup_token: Optional[str] = None) -> None:
        started = time.perf_counter()
        try:
            self._store.insert(table, columns, dedup_token)
        finally:
            self._add(INSERT_PHASES.get(table, f"{table} insert"), started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _timed_phases(controller_module: Any, store: Any, call: Callable[[Any], Any]) -> dict[str, float]:
    """One call with the store and `suggest` timed; {phase: ms, "total": ms}."""
    phases: dict[str, float] = {}
    original = controller_module.suggest

    def suggest(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases["suggest"] = phases.get("suggest", 0.0) + (time.perf_counter() - started) * 1e3

    controller_module.suggest = suggest
    try:
        started = time.perf_counter()
        call(_PhaseStore(store, phases))
        total = (time.perf_counter() - started) * 1e3
    finally:
        controller_module.suggest = original
    phases["other"] = total - sum(phases.values())
    phases["total"] = total
    return phases


def _profile(call: Callable[[], Any], calls: int, top: int = 12) -> list[list[Any]]:
    """cProfile over `calls` calls: the `top` functions by own time, per call in ms."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # documented, not in the stubs
    rows = []
    for (path, line, name), (_, ncalls, tottime, cumtime, _) in stats.items():
        short = f"{Path(path).name}:{line}({name})" if path != "~" else name
        rows.append([short, ncalls / calls, tottime / calls * 1e3, cumtime / calls * 1e3])
    rows.sort(key=lambda r: -r[2])
    return [[r[0], round(r[1], 1), round(r[2], 2), round(r[3], 2)] for r in rows[:top]]


def _insert_costs(store: Any, rounds: int = 30) -> dict[str, Any]:
    """Median ms of one-row inserts into sweep_agents and two scratch copies of it, taking turns."""
    db = store.database
    base = "ENGINE = ReplacingMergeTree(version) ORDER BY (project, sweep_id, agent_id)"
    store.command(f"CREATE TABLE `{db}`.bench_nofsync AS `{db}`.sweep_agents {base} "
                  "SETTINGS non_replicated_deduplication_window = 10000")  # fmt: skip
    store.command(f"CREATE TABLE `{db}`.bench_plain AS `{db}`.sweep_agents {base}")
    tables = {"sweep_agents (as shipped: fsync + dedup window)": "sweep_agents",
              "no fsync, dedup window": "bench_nofsync", "no fsync, no dedup window": "bench_plain"}  # fmt: skip
    times: dict[str, list[float]] = {label: [] for label in tables}
    for i in range(rounds):
        for label, table in tables.items():
            now = time.time_ns()
            row = {"project": ["scratch"], "sweep_id": ["s"], "agent_id": [f"a{i}"], "host": ["h"], "pid": [1],
                   "started_at": [now // 1000], "heartbeat_at": [now // 1000], "version": [now]}  # fmt: skip
            started = time.perf_counter()
            store.insert(table, row)
            times[label].append((time.perf_counter() - started) * 1e3)
    select = []
    for _ in range(rounds):
        started = time.perf_counter()
        store.query_rows("SELECT 1")
        select.append((time.perf_counter() - started) * 1e3)
    _, parts = store.query_rows(
        "SELECT table, count(), sum(rows) FROM system.parts WHERE database = {d:String} AND active "
        "AND table IN ('sweeps', 'sweep_trials', 'sweep_agents', 'runs', 'metrics') GROUP BY table ORDER BY table",
        {"d": db},
    )
    return {"insert_ms": {label: spread(values) for label, values in times.items()}, "select_1_ms": spread(select),
            "active_parts": [[str(t), int(n), int(r)] for t, n, r in parts]}  # fmt: skip


def _setup(args: argparse.Namespace) -> tuple[str, int, float]:
    """A sweep with --trials finished trials (untimed): (sweep id, finished trials, seconds)."""
    import tracehouse as th

    th.configure(data_dir=Path(args.data_dir), project=PROJECT)
    started = time.perf_counter()
    sweep_id = th.sweep(sweep_config(args.method), project=PROJECT)
    ran = th.agent(sweep_id, function=_train_search, count=args.trials, project=PROJECT)
    th.sync()
    setup_seconds = time.perf_counter() - started
    trials = th.sweep_status(sweep_id, project=PROJECT)["trials"]
    finished = sum(1 for t in trials if t["state"] == "finished" and t["metric"] is not None)
    if ran != args.trials or finished != args.trials or len(trials) != args.trials:
        raise RuntimeError(f"setup: {ran} ran, {finished} of {len(trials)} trials finished with the metric")
    return sweep_id, finished, setup_seconds


def child_controller(args: argparse.Namespace) -> dict[str, Any]:
    """Part 1: the controller's cost per trial, directly, through LocalSweeps, and by phase."""
    import tracehouse.collector.sweeps.controller as controller_module
    from tracehouse.collector.sweeps.controller import controller_for
    from tracehouse.reads.reading import get_store
    from tracehouse.spans.runtime import runtime
    from tracehouse.sweeps.sweep import LocalSweeps

    method = args.method
    sweep_id, finished, setup_seconds = _setup(args)

    store, host, pid = get_store(), "bench-host", os.getpid()
    agent_id = "benchtimed"
    seen: list[int] = []

    # the process's one controller: its in-memory state is the steady state
    controller = controller_for(store, runtime.sink().submit)

    def direct(on: Any = None) -> None:
        controller.store = on or store  # the phases variant times the store calls through a wrapper
        try:
            answer = controller.next_trial(PROJECT, sweep_id, agent_id, host, pid)
        finally:
            controller.store = store
        if answer["action"] != "run":
            raise RuntimeError(f"next_trial answered {answer}")
        seen.append(int(answer["trial_index"]))

    def local() -> None:
        answer = LocalSweeps().next_trial(PROJECT, sweep_id, agent_id, host, pid)
        if answer["action"] != "run":
            raise RuntimeError(f"next_trial answered {answer}")
        seen.append(int(answer["trial_index"]))

    for _ in range(2):  # warm-up: first-call costs (query plans, column types) are not the steady state
        direct()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    phases: list[dict[str, float]] = []
    gc.collect()
    for round_no in range(args.calls):
        shift = round_no % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            if variant == "phases":
                one = _timed_phases(controller_module, store, direct)
                phases.append(one)
                times[variant].append(one["total"])
                continue
            call = direct if variant == "controller" else local
            t0 = time.perf_counter()
            call()
            times[variant].append((time.perf_counter() - t0) * 1e3)
    result: dict[str, Any] = {
        "method": method,
        "search_space": f"grid of {GRID_POINTS} points" if method == "grid"
        else "lr log_uniform_values, optimizer categorical(3), layers int_uniform(1-8)",
        "trials_finished": finished,
        "setup_seconds": setup_seconds,
        "agent_ms_per_trial": setup_seconds / args.trials * 1e3,
        "trials_in_store": [min(seen[2:]), max(seen[2:])],  # a claim's index = trials in the store before it
        "timed_ms": {v: spread(values) for v, values in times.items()},
        "timed_raw_ms": {v: [round(x, 3) for x in values] for v, values in times.items()},
        "phases_ms": {p: median([one.get(p, 0.0) for one in phases]) for p in (*PHASES, "total")},
        "peak_rss_mb": own_peak_rss_mb(),
    }  # fmt: skip
    extra = {p: median([one[p] for one in phases]) for p in {k for one in phases for k in one} - {*PHASES, "total"}}
    if extra:
        result["phases_ms_extra"] = extra
    if args.profile:
        result["profile"] = _profile(direct, args.calls)
        result["inserts"] = _insert_costs(store)
        result["peak_rss_mb_after_profile"] = own_peak_rss_mb()
    return result
