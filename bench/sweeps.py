"""Sweep controller overhead per trial (suggest + record), and an end-to-end sweep with two agents.

Run from the repository root::

    python bench/sweeps.py                          # defaults: 100 finished trials, 20 calls per variant (~45 s)
    python bench/sweeps.py --calls 40 --methods bayes
    python bench/sweeps.py --parts controller --profile   # plus cProfile and an insert breakdown per method

Each part runs in a fresh interpreter (``_common.run_child``), one after the other:

1. ``controller``, one child per method (``grid`` of 320 points, ``random``, ``bayes``; the last two over
   ``lr`` log_uniform_values, ``optimizer`` categorical, ``layers`` int_uniform). Untimed setup: the sweep is
   created on an embedded store and ``tracehouse.agent(sweep, function=train, count=--trials)`` runs trivial
   in-process trials (``th.init()``, 5 ``run.log({"loss": ...})``); ``tracehouse.sync()``, then
   ``sweep_status`` must show ``--trials`` finished trials with the metric. Two warm-up calls, then
   ``--calls`` rounds of three timed calls each, the order rotating every round:

   - ``controller``: ``controller_for(get_store()).next_trial(...)``: the process's one controller, whose
     sweep state is in memory (loaded once); bayes reads the runs and metric histories of trials not settled
     yet; suggest; the claim (and at most every 10 s the agent's beat) is recorded through the spool;
   - ``local``: ``tracehouse.sweeps.sweep.LocalSweeps().next_trial(...)``, the path an in-process agent takes:
     the same plus the spool catch-up (nothing is pending here: its fixed cost);
   - ``phases``: the controller again with its store wrapped by a recorder timing each query and insert,
     and ``suggest`` wrapped likewise (a few microseconds added), for the breakdown table.

   Every timed call claims a trial that stays claimed (pending), so the store holds 100 finished trials plus
   the 2 warm-up claims and up to ``3 x --calls`` claimed ones while timing (bayes feeds claimed trials to
   TPE as running). Figures: median, p90 (nearest rank), max in ms. Targets on the controller median:
   bayes < 50 ms, grid and random < 5 ms.
2. ``collector``: ``python -m tracehouse serve`` on a free port with a fresh data dir (ready on ``/readyz``);
   a driver process configures ``endpoint=`` and starts two agent processes (own data dirs) that import
   tracehouse, configure the endpoint and wait; the clock starts, the driver calls ``th.sweep`` (grid of
   20 points, ``run_cap`` 20) and hands the id to both agents, which run ``th.agent(id, function=train)``.
   Wall time = ``th.sweep`` to both agents returning (target < 10 s); also until both exited and until
   ``sweep_status`` shows every trial finished. Checked through the endpoint: exactly 20 trials, 20 distinct
   grid points, all finished, both agents ran some, and each run's stored config is its trial's point.
3. ``threads``: the same sweep with two ``th.agent`` threads in one process on the embedded store.

Peak RSS (``VmHWM``) of every child, and of the collector. ``--profile`` adds, per method, cProfile's top
functions over ``--calls`` more controller calls and inserts into ``sweep_agents`` against copies of it in a
throwaway table without ``fsync_after_insert``/``fsync_part_directory`` (and without the dedup window).
Results are also written as JSON to ``bench/results/sweeps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from _common import (
    RESULT_MARKER,
    emit,
    finish,
    fmt_number,
    machine_info,
    own_peak_rss_mb,
    parse_choices,
    progress,
    render_table,
    run_child,
)
from _sweeps_controller import GRID_POINTS, PHASES, PROJECT, VARIANTS, child_controller

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "sweeps.json"
METHODS = ("grid", "random", "bayes")
PARTS = ("controller", "collector", "threads")
TARGET_MS = {"grid": 5.0, "random": 5.0, "bayes": 50.0}
TARGET_E2E_SECONDS = 10.0
E2E_TRIALS = 20
READY = "BENCH_READY"

E2E_GRID = {"x": {"values": [1, 2, 3, 4, 5]}, "y": {"values": [1, 2, 3, 4]}}  # 20 points


def e2e_config() -> dict[str, Any]:
    return {"method": "grid", "run_cap": E2E_TRIALS, "metric": {"name": "loss", "goal": "minimize"},
            "parameters": E2E_GRID}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# parts 2 and 3 children: an end-to-end sweep of E2E_TRIALS trivial trials with two agents
# ---------------------------------------------------------------------------------------------
def _train_trivial() -> None:
    import tracehouse as th

    with th.init() as run:
        for step in range(5):
            run.log({"loss": run.config.x * run.config.y / (step + 1)})


def child_agent(args: argparse.Namespace) -> int:
    """An agent process: import and configure, say ready, read the sweep id, run the agent, emit."""
    import tracehouse as th

    th.configure(endpoint=args.url, data_dir=Path(args.data_dir), project=PROJECT)
    print(READY, flush=True)
    sweep_id = sys.stdin.readline().strip()
    started = time.perf_counter()
    ran = th.agent(sweep_id, function=_train_trivial, project=PROJECT)
    emit({"ran": ran, "agent_seconds": time.perf_counter() - started, "peak_rss_mb": own_peak_rss_mb()})
    return 0


def _check_sweep(th: Any, sweep_id: str, started: float, limit: float = 60.0) -> dict[str, Any]:
    """Poll sweep_status until every trial is finished (or `limit`); then what the results hold."""
    while True:
        status = th.sweep_status(sweep_id, project=PROJECT)
        trials = status["trials"]
        done = len(trials) >= E2E_TRIALS and all(t["state"] == "finished" for t in trials)
        if done or time.perf_counter() - started > limit:
            break
        time.sleep(0.05)
    visible = time.perf_counter() - started
    results = th.sweep_results(sweep_id, project=PROJECT)
    points = {(int(x), int(y)) for x, y in zip(results["x"], results["y"], strict=True)}
    runs = th.query("SELECT run_id, config FROM runs FINAL WHERE project = {p:String} AND sweep_id = {s:String}",
                    {"p": PROJECT, "s": sweep_id})  # fmt: skip
    stored = {r: json.loads(c) for r, c in zip(runs["run_id"], runs["config"], strict=True)}
    mismatched = sum(1 for r, x, y in zip(results["run_id"], results["x"], results["y"], strict=True)
                     if stored.get(r, {}).get("x") != x or stored.get(r, {}).get("y") != y)  # fmt: skip
    return {
        "visible_seconds": visible,
        "trials": len(results),
        "distinct_points": len(points),
        "states": sorted(set(results["state"])),
        "sweep_state": status["state"],
        "trials_per_agent": sorted(results["agent_id"].value_counts().tolist(), reverse=True),
        "config_mismatches": mismatched,
    }


def child_driver(args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: create the sweep at the collector, hand it to two waiting agent processes, time until done."""
    import tracehouse as th

    data_dir = Path(args.data_dir)
    th.configure(endpoint=args.url, data_dir=data_dir / "driver", project=PROJECT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    agents, logs = [], []
    spawned = time.perf_counter()
    for i in range(args.agents):
        log = open(data_dir / f"agent{i}.log", "wb")  # noqa: SIM115  # closed below
        logs.append(log)
        argv = [sys.executable, str(HERE), "--role", "agent", "--url", args.url, "--data-dir",
                str(data_dir / f"agent{i}")]  # fmt: skip
        agents.append(subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                       text=True))  # fmt: skip
    try:
        for agent in agents:
            if agent.stdout is None or agent.stdout.readline().strip() != READY:
                raise RuntimeError("an agent process did not get ready")
        ready_seconds = time.perf_counter() - spawned
        started = time.perf_counter()
        sweep_id = th.sweep(e2e_config(), project=PROJECT)
        for agent in agents:
            assert agent.stdin is not None
            agent.stdin.write(sweep_id + "\n")
            agent.stdin.flush()
        reports = []
        for agent in agents:
            assert agent.stdout is not None
            line = agent.stdout.readline()
            if not line.startswith(RESULT_MARKER):
                raise RuntimeError(f"an agent ended without a result: {line.strip()[:200]!r}")
            reports.append(json.loads(line[len(RESULT_MARKER) :]))
        returned = time.perf_counter() - started
        codes = [agent.wait(60) for agent in agents]
        exited = time.perf_counter() - started
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
        for log in logs:
            log.close()
    if any(codes):
        raise RuntimeError(f"agent exit codes {codes}: {(data_dir / 'agent0.log').read_text()[-300:]}")
    result = {
        "variant": "collector, 2 agent processes",
        "agent_ready_seconds": ready_seconds,
        "wall_seconds": returned,
        "exited_seconds": exited,
        "ran_per_agent": [r["ran"] for r in reports],
        "agent_seconds": [r["agent_seconds"] for r in reports],
        "agent_peak_rss_mb": [r["peak_rss_mb"] for r in reports],
    }
    result.update(_check_sweep(th, sweep_id, started))
    result["driver_peak_rss_mb"] = own_peak_rss_mb()
    return result


def child_threads(args: argparse.Namespace) -> dict[str, Any]:
    """Part 3: two th.agent threads in one process on the embedded store."""
    import tracehouse as th

    th.configure(data_dir=Path(args.data_dir), project=PROJECT)
    t0 = time.perf_counter()
    th.query("SELECT 1")  # open the embedded store before the clock, as the collector is started before its clock
    store_open = time.perf_counter() - t0
    ran: list[int] = []
    errors: list[str] = []

    def work() -> None:
        try:
            ran.append(th.agent(sweep_id, function=_train_trivial, project=PROJECT))
        except Exception as error:  # reported, not hidden
            errors.append(f"{type(error).__name__}: {error}")

    started = time.perf_counter()
    sweep_id = th.sweep(e2e_config(), project=PROJECT)
    threads = [threading.Thread(target=work, name=f"agent{i}") for i in range(args.agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    returned = time.perf_counter() - started
    if errors:
        raise RuntimeError("; ".join(errors))
    result = {"variant": "embedded, 2 agent threads", "store_open_seconds": store_open, "wall_seconds": returned,
              "exited_seconds": returned, "ran_per_agent": sorted(ran, reverse=True)}  # fmt: skip
    result.update(_check_sweep(th, sweep_id, started))
    result["peak_rss_mb"] = own_peak_rss_mb()
    return result


def child_main(args: argparse.Namespace) -> int:
    if args.role == "agent":
        return child_agent(args)
    try:
        if args.role == "controller":
            result = child_controller(args)
        elif args.role == "driver":
            result = child_driver(args)
        else:
            result = child_threads(args)
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    emit(result)
    return 0


# ---------------------------------------------------------------------------------------------
# parent: parts in order, checks, report
# ---------------------------------------------------------------------------------------------
def _verdict(ok: Optional[bool]) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def _stray_processes() -> list[str]:
    """Running `tracehouse serve`, py-spy or pytest processes that would compete for the CPU and the disk."""
    try:
        found = subprocess.run(["pgrep", "-af", "tracehouse serve|py-spy|pytest"], capture_output=True, text=True,
                               check=False)  # fmt: skip
    except OSError:
        return []
    return [line for line in found.stdout.splitlines() if line.strip()]


def part_collector(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from _ingest_collector import CollectorProcess

    collector = CollectorProcess(tmp / "collector-data")
    try:
        collector.start()
        collector.wait_ready()
        argv = [str(HERE), "--role", "driver", "--url", collector.url, "--data-dir", str(tmp / "driver"),
                "--agents", str(args.agents)]  # fmt: skip
        (tmp / "driver").mkdir(parents=True, exist_ok=True)
        result = run_child(argv, timeout=300)
        result["collector_start_seconds"] = collector.start_seconds
        result["collector_peak_rss_mb"] = collector.peak_rss_mb()
        result["collector_exit"] = collector.stop()
    except RuntimeError as error:
        result = {"skipped": str(error).splitlines()[0][:300]}
    finally:
        collector.kill()
    return result


def evaluate(results: dict[str, Any]) -> list[list[str]]:
    checks = []
    for method in METHODS:
        part = results["controller"].get(method)
        if part is None:
            continue
        value = None if "skipped" in part else part["timed_ms"]["controller"]["median"]
        checks.append([f"{method}: controller ms per next_trial (median)", fmt_number(value, 1),
                       f"< {TARGET_MS[method]:g}",
                       _verdict(None if value is None else value < TARGET_MS[method])])  # fmt: skip
    for key in ("collector", "threads"):
        part = results.get(key)
        if part is None:
            continue
        if "skipped" in part:
            checks.append([f"{key}: end-to-end", "-", "", "SKIP"])
            continue
        wall = part["wall_seconds"]
        checks.append([f"{part['variant']}: th.sweep -> agents returned, s", fmt_number(wall, 2),
                       f"< {TARGET_E2E_SECONDS:g}", _verdict(wall < TARGET_E2E_SECONDS)])  # fmt: skip
        correct = (part["trials"] == E2E_TRIALS and part["distinct_points"] == E2E_TRIALS
                   and part["states"] == ["finished"] and sum(part["ran_per_agent"]) == E2E_TRIALS
                   and all(n > 0 for n in part["ran_per_agent"]) and part["config_mismatches"] == 0)  # fmt: skip
        checks.append([f"{part['variant']}: trials / distinct points / finished / ran / mismatches",
                       f"{part['trials']} / {part['distinct_points']} / {part['states'] == ['finished']} / "
                       f"{'+'.join(map(str, part['ran_per_agent']))} / {part['config_mismatches']}",
                       f"{E2E_TRIALS} / {E2E_TRIALS} / True / both > 0 / 0", _verdict(correct)])  # fmt: skip
    return checks


def _ms(figures: dict[str, float]) -> list[str]:
    return [fmt_number(figures[k], 1) for k in ("median", "p90", "max")]


def report(results: dict[str, Any]) -> str:
    out = []
    controller = results["controller"]
    if controller:
        out.append(f"sweep controller: next_trial (suggest + record) with {results['trials']} finished trials in the "
                   f"embedded store, {results['calls']} timed calls per variant, ms")  # fmt: skip
        rows = []
        for method, part in controller.items():
            if "skipped" in part:
                rows.append([method, *["-"] * 11, f"skipped: {part['skipped']}"])
                continue
            timed = part["timed_ms"]
            rows.append([method, fmt_number(part["setup_seconds"], 1), fmt_number(part["agent_ms_per_trial"], 0),
                         "-".join(map(str, part["trials_in_store"])), *_ms(timed["controller"]), *_ms(timed["local"]),
                         fmt_number(part["peak_rss_mb"], 0), ""])  # fmt: skip
        headers = ["method", "setup s", "agent ms/trial", "trials in store", "ctrl med", "ctrl p90", "ctrl max",
                   "local med", "local p90", "local max", "RSS MB", "note"]  # fmt: skip
        out.append(render_table(headers, rows, left=(0, len(headers) - 1)))
        out.append("(ctrl = controller_for(store).next_trial; local = LocalSweeps().next_trial, spool catch-up "
                   "included; setup = th.agent running the finished trials + sync; agent ms/trial = setup / "
                   "trials)")  # fmt: skip
        out.append("")
        out.append("where a controller call goes (median ms per phase over the 'phases' calls; medians do not add up)")
        rows = [[method, *(fmt_number(part["phases_ms"][p], 2) for p in (*PHASES, "total"))]
                for method, part in controller.items() if "skipped" not in part]  # fmt: skip
        out.append(render_table(["method", *PHASES, "total"], rows))
        for method, part in controller.items():
            if "profile" in part:
                out.append("")
                out.append(f"cProfile, {method}: top functions by own time, per next_trial call")
                out.append(render_table(["function", "calls", "own ms", "cumulative ms"], part["profile"]))
                inserts = part["inserts"]
                rows = [[label, *_ms(f)] for label, f in inserts["insert_ms"].items()]
                rows.append(["SELECT 1 (round trip to chDB)", *_ms(inserts["select_1_ms"])])
                out.append(render_table(["one-row insert into", "med ms", "p90 ms", "max ms"], rows))
                parts = "; ".join(f"{t} {n} ({r:,} rows)" for t, n, r in inserts["active_parts"])
                out.append(f"(active parts read with FINAL, at the end: {parts})")
    for key in ("collector", "threads"):
        part = results.get(key)
        if part is None:
            continue
        out.append("")
        if "skipped" in part:
            out.append(f"end-to-end ({key}): skipped: {part['skipped']}")
            continue
        out.append(f"end-to-end: {part['variant']}, grid of {E2E_TRIALS} points, run_cap {E2E_TRIALS}, trivial trials")
        rss = (f"collector {fmt_number(part.get('collector_peak_rss_mb'), 0)} MB, agents "
               f"{' / '.join(fmt_number(x, 0) for x in part['agent_peak_rss_mb'])} MB, driver "
               f"{fmt_number(part['driver_peak_rss_mb'], 0)} MB" if key == "collector"
               else f"process {fmt_number(part['peak_rss_mb'], 0)} MB")  # fmt: skip
        rows = [[fmt_number(part["wall_seconds"], 2), fmt_number(part["exited_seconds"], 2),
                 fmt_number(part["visible_seconds"], 2), "+".join(map(str, part["ran_per_agent"])),
                 "+".join(map(str, part["trials_per_agent"])), part["trials"], part["distinct_points"],
                 ",".join(part["states"]), part["sweep_state"], rss]]  # fmt: skip
        headers = ["returned s", "exited s", "all finished s", "ran", "trials by agent_id", "trials", "points",
                   "states", "sweep", "peak RSS"]  # fmt: skip
        out.append(render_table(headers, rows, left=(len(headers) - 1,)))
        if key == "collector":
            exit_info = part.get("collector_exit", {})
            out.append(f"(clock from th.sweep; agents ready {part['agent_ready_seconds']:.2f} s before it; collector "
                       f"ready in {fmt_number(part.get('collector_start_seconds'), 2)} s, exit code "
                       f"{exit_info.get('exit_code')} on SIGTERM)")  # fmt: skip
        else:
            out.append(f"(clock from th.sweep; the embedded store was opened {part['store_open_seconds']:.2f} s "
                       "before it)")  # fmt: skip
    out.append("")
    load = " / ".join(f"{x:.2f}" for x in results["load_average_start"])
    out.append(f"(load average 1/5/15 min at the start {load}, at the end "
               f"{' / '.join(f'{x:.2f}' for x in results['load_average_end'])}; {os.cpu_count()} CPUs)")  # fmt: skip
    if results.get("stray_processes"):
        out.append("WARNING: other processes were running: " + "; ".join(results["stray_processes"]))
    out.append("")
    out.append(render_table(["check", "value", "target", "result"], results["checks"]))
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    parts = parse_choices(args.parts, PARTS, "part")
    methods = [m for m in METHODS if m in parse_choices(args.methods, METHODS, "method")]
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trials": args.trials,
        "calls": args.calls,
        "agents": args.agents,
        **machine_info(("tracehouse", "chdb", "clickhouse-connect", "optuna", "fastapi", "uvicorn")),
        "stray_processes": _stray_processes(),
        "load_average_start": os.getloadavg(),
        "controller": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="th-bench-sweeps-"))
    try:
        if "controller" in parts:
            for method in methods:
                progress(f"controller: {method} ({args.trials} trials of setup, then {args.calls} x 3 timed calls) ...")
                argv = [str(HERE), "--role", "controller", "--method", method, "--trials", str(args.trials),
                        "--calls", str(args.calls), "--data-dir", str(tmp / f"controller-{method}"),
                        *(["--profile"] if args.profile else [])]  # fmt: skip
                results["controller"][method] = run_child(argv, timeout=600)
        if "collector" in parts:
            progress("end-to-end: collector + 2 agent processes ...")
            results["collector"] = part_collector(args, tmp)
        if "threads" in parts:
            progress("end-to-end: 2 agent threads on the embedded store ...")
            argv = [str(HERE), "--role", "threads", "--agents", str(args.agents), "--data-dir", str(tmp / "threads")]
            results["threads"] = run_child(argv, timeout=300)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_average_end"] = os.getloadavg()
    results["checks"] = evaluate(results)
    return finish(results, started, report, args.out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=100, help="finished trials in the store (default 100)")
    parser.add_argument("--calls", type=int, default=20, help="timed next_trial calls per variant (default 20)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods (default all)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts (default {','.join(PARTS)})")
    parser.add_argument("--agents", type=int, default=2, help="agents in the end-to-end parts (default 2)")
    parser.add_argument("--profile", action="store_true", help="add cProfile and insert breakdowns per method")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--role", choices=("controller", "driver", "agent", "threads"), help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.calls < 1 or args.agents < 1:
        parser.error("--trials, --calls and --agents must be positive")
    claims = args.trials + 2 + (len(VARIANTS) + 1) * args.calls  # setup, warm-up, timed rounds, profiled calls
    if claims > GRID_POINTS and "grid" in args.methods:
        parser.error(f"grid has {GRID_POINTS} points; --trials + 4 x --calls + 2 must not exceed it")
    if args.role:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
