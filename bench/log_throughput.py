"""Experiment-tracking cost per step: tracehouse's ``run.log`` against wandb (offline) and MLflow (file store).

Run from the repository root::

    python bench/log_throughput.py                     # defaults: 10,000 steps, 3 rounds (~40 s on 2 cores)
    python bench/log_throughput.py --steps 2000 --repeats 1
    python bench/log_throughput.py --only tracehouse,wandb

What is measured: a training loop that logs 10 float metrics per step. Each of ``--repeats`` rounds starts a
fresh interpreter per peer (one after the other, the order rotating each round), with its own temp dir:

1. ``import`` of the library, timed in the child (the interpreter start is not).
2. setup, timed apart from init: ``tracehouse.configure(data_dir=<tmp>, project="bench")``,
   ``mlflow.set_tracking_uri(...)``; wandb is set up by its environment variables only.
3. ``init``: the first call, cold, as a user sees it: ``tracehouse.init(project="bench", config=...)``,
   ``wandb.init(project="bench", mode="offline", dir=<tmp>, config=...)``,
   ``mlflow.set_experiment("bench")`` + ``mlflow.start_run()`` + ``log_params(config)``.
4. ``log``: ``--steps`` calls, one per step, with a dict of 10 floats whose values change every step
   (the dicts are built before the clock starts): ``run.log(d)`` for tracehouse and wandb,
   ``mlflow.log_metrics(d, step=i)`` for MLflow. Figure = loop time / steps.
5. ``finish``: ``run.finish()`` / ``mlflow.end_run()``. tracehouse's finish writes the queued steps to the
   spool and fsyncs it; durable = nothing left queued or dropped afterwards.
6. Afterwards, outside the figures above: what was stored. tracehouse: ``tracehouse.query`` of
   ``count()`` and ``uniqExact(step)`` over ``metrics`` for the run (its time, which includes opening the
   embedded store and ingesting the spool, is reported as "query s"), and ``tracehouse.history()``'s row
   count. MLflow: ``MlflowClient().get_metric_history`` of every key. wandb: an offline run cannot be
   queried before ``wandb sync``, so its ``.wandb`` transaction log is read back and its history records
   counted.
7. Peak RSS (``VmHWM``) of the child through finish (the read-back comes later), and of the helper
   processes it started (wandb's ``wandb-core`` and ``wandb-symon``) at the end of the loop; CPU seconds of
   log + finish, the child's (all threads) plus its helpers'.

A figure is the median of the rounds. Targets (PASS/FAIL): tracehouse log <= 8 us per call and >= 20x faster
than wandb, init <= 50 ms, finish <= 200 ms with every step durable, every step queryable afterwards.
Results are also written as JSON to ``bench/results/log_throughput.json``. A peer that cannot be imported or
run is reported as ``skipped: <reason>``. ``--parts media`` (in the default parts) logs an image and a table per
step instead, tracehouse against wandb, ``--media-steps`` steps: see ``_log_media.py``.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import _log_media
from _common import (
    emit,
    finish,
    fmt_number,
    machine_info,
    median,
    own_peak_rss_mb,
    parse_choices,
    proc_cpu_seconds,
    proc_status_mb,
    progress,
    render_table,
    run_child,
)
from _wandb_log import count_wandb_history, offline_env, offline_run_log

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "log_throughput.json"
PEERS = ("tracehouse", "wandb", "mlflow")
PARTS = ("metrics", "media")
KEYS = tuple(f"m{i}" for i in range(10))
CONFIG = {"lr": 0.001, "batch_size": 32, "model": "bench"}
TARGET_LOG_US = 8.0
TARGET_WANDB_RATIO = 20.0
TARGET_INIT_MS = 50.0
TARGET_FINISH_MS = 200.0

Payloads = list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# children: one peer per fresh interpreter
# ---------------------------------------------------------------------------------------------
def _payloads(steps: int) -> Payloads:
    """One dict of 10 floats per step, every value different from the step before."""
    return [{key: 1.0 / (step + 1) + j * 0.5 for j, key in enumerate(KEYS)} for step in range(steps)]


def _descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (Linux /proc; empty elsewhere)."""
    found = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            children = [int(c) for c in Path(path).read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


class _Helpers:
    """CPU seconds and peak RSS of the processes a peer starts (wandb's service), read now and then."""

    def __init__(self) -> None:
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.peak_rss_mb = 0.0

    def read(self) -> None:
        for pid in _descendants(os.getpid()):
            cpu = proc_cpu_seconds(pid)
            if cpu is not None:
                self.start.setdefault(pid, cpu)
                self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def read_rss(self) -> None:
        pids = _descendants(os.getpid())
        self.peak_rss_mb = sum(proc_status_mb(pid, "VmHWM") or 0.0 for pid in pids)

    def cpu_seconds(self) -> float:
        return sum(self.last[pid] - self.start[pid] for pid in self.last)


def _timed_loop(log: Callable[..., Any], payloads: Payloads, pass_step: bool) -> float:
    """Seconds for one `log` call per payload (called with `step=` when `pass_step`)."""
    gc.collect()
    t0 = time.perf_counter()
    if pass_step:
        for step, payload in enumerate(payloads):
            log(payload, step=step)
    else:
        for payload in payloads:
            log(payload)
    return time.perf_counter() - t0


def _run_peer(
    import_lib: Callable[[], Any],
    setup: Callable[[Any], Any],
    init: Callable[[Any], Any],
    log: Callable[[Any, Any], Callable[..., Any]],
    finish: Callable[[Any, Any], Any],
    steps: int,
    pass_step: bool = False,
    payloads: Optional[Payloads] = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Time import, setup, init, the log loop and finish of one peer; returns (module, run, figures)."""
    payloads = _payloads(steps) if payloads is None else payloads
    t0 = time.perf_counter()
    lib = import_lib()
    t1 = time.perf_counter()
    setup(lib)
    t2 = time.perf_counter()
    run = init(lib)
    t3 = time.perf_counter()
    helpers = _Helpers()
    helpers.read()
    cpu0 = time.process_time()
    loop_seconds = _timed_loop(log(lib, run), payloads, pass_step)
    helpers.read()
    helpers.read_rss()
    t4 = time.perf_counter()
    finish(lib, run)
    t5 = time.perf_counter()
    cpu = time.process_time() - cpu0
    helpers.read()
    return lib, run, {
        "steps": steps,
        "import_ms": (t1 - t0) * 1e3,
        "setup_ms": (t2 - t1) * 1e3,
        "init_ms": (t3 - t2) * 1e3,
        "loop_seconds": loop_seconds,
        "log_us": loop_seconds / steps * 1e6,
        "finish_ms": (t5 - t4) * 1e3,
        "cpu_seconds": cpu + helpers.cpu_seconds(),
        "helper_cpu_seconds": helpers.cpu_seconds(),
        "helper_peak_rss_mb": round(helpers.peak_rss_mb, 1),
        "peak_rss_mb": own_peak_rss_mb(),  # through finish; the read-back afterwards is not counted
    }  # fmt: skip


def peer_tracehouse(steps: int, data_dir: Path) -> dict[str, Any]:
    def import_lib() -> Any:
        import tracehouse

        return tracehouse

    lib, run, result = _run_peer(
        import_lib,
        lambda th: th.configure(data_dir=data_dir, project="bench"),
        lambda th: th.init(project="bench", config=CONFIG),
        lambda lib, run: run.log,
        lambda lib, run: run.finish(),
        steps,
    )
    from tracehouse.spans.runtime import runtime

    sink = runtime._sink
    pending, dropped, failed = (sink.pending(), sink.dropped, sink.failed_writes) if sink else (0, 0, 0)
    result["spool_records"] = sink.written if sink else 0  # one per step, plus the run's state records
    result["durable"] = result["spool_records"] > steps and pending == 0 and dropped == 0 and failed == 0
    t0 = time.perf_counter()
    counted = lib.query(
        "SELECT count() AS n, uniqExact(step) AS s FROM metrics WHERE run_id = {r:String}", {"r": run.id}
    )
    t1 = time.perf_counter()
    history = lib.history(run.id, project="bench")
    t2 = time.perf_counter()
    result.update(
        values_stored=int(counted["n"].iloc[0]),
        steps_stored=int(counted["s"].iloc[0]),
        query_seconds=t1 - t0,
        history_rows=len(history),
        history_seconds=t2 - t1,
    )
    return result


def peer_wandb(steps: int, data_dir: Path) -> dict[str, Any]:
    offline_env(data_dir)

    def import_lib() -> Any:
        import wandb

        return wandb

    _, run, result = _run_peer(
        import_lib,
        lambda wandb: None,
        lambda wandb: wandb.init(project="bench", mode="offline", dir=str(data_dir), config=CONFIG),
        lambda lib, run: run.log,
        lambda lib, run: run.finish(),
        steps,
    )
    result.update(count_wandb_history(offline_run_log(data_dir, run.id), KEYS))
    return result


def peer_mlflow(steps: int, data_dir: Path, store: str) -> dict[str, Any]:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no usage pings from the benchmark
    if store == "file":
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 refuses its file store without it
        uri = (data_dir / "mlruns").as_uri()  # must not exist yet: the default experiment is created with it
    else:
        uri = f"sqlite:///{data_dir / 'mlflow.db'}"

    def import_lib() -> Any:
        import mlflow

        return mlflow

    def init(mlflow: Any) -> Any:
        mlflow.set_experiment("bench")
        run = mlflow.start_run()
        mlflow.log_params(CONFIG)
        return run

    lib, run, result = _run_peer(
        import_lib,
        lambda mlflow: mlflow.set_tracking_uri(uri),
        init,
        lambda mlflow, run: mlflow.log_metrics,
        lambda mlflow, run: mlflow.end_run(),
        steps,
        pass_step=True,
    )
    t0 = time.perf_counter()
    client = lib.tracking.MlflowClient()
    histories = [client.get_metric_history(run.info.run_id, key) for key in KEYS]
    result.update(
        store=uri.split(":", 1)[0],
        values_stored=sum(len(h) for h in histories),
        steps_stored=len({m.step for h in histories for m in h}),
        query_seconds=time.perf_counter() - t0,
    )
    return result


def child_main(args: argparse.Namespace) -> int:
    """Entry point of a child process: run one peer and emit its JSON result."""
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="th-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.part == "media":
            result = _log_media.peer(args.peer, args.steps, data_dir, _run_peer, CONFIG)
        elif args.peer == "tracehouse":
            result = peer_tracehouse(args.steps, data_dir)
        elif args.peer == "wandb":
            result = peer_wandb(args.steps, data_dir)
        else:
            result = peer_mlflow(args.steps, data_dir, args.mlflow_store)
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    result["final_peak_rss_mb"] = own_peak_rss_mb()  # read-back included (tracehouse opens its embedded store)
    emit(result)
    return 0


# ---------------------------------------------------------------------------------------------
# parent: rounds, medians, report
# ---------------------------------------------------------------------------------------------
FIGURES = ("import_ms", "setup_ms", "init_ms", "log_us", "finish_ms", "query_seconds", "history_seconds",
           "cpu_seconds", "peak_rss_mb", "final_peak_rss_mb", "helper_peak_rss_mb")  # fmt: skip


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One peer's rounds -> the median of each figure; stored counts and durability from the worst round."""
    done = [r for r in rounds if "skipped" not in r]
    if not done:
        return {"skipped": rounds[-1]["skipped"] if rounds else "not run", "rounds": rounds}
    summary: dict[str, Any] = {"rounds_done": len(done), "rounds": rounds}
    for figure in FIGURES:
        values = [r[figure] for r in done if r.get(figure) is not None]
        summary[figure] = median(values) if values else None
    summary["log_us_min"] = min(r["log_us"] for r in done)
    summary["log_us_max"] = max(r["log_us"] for r in done)
    for count in ("steps_stored", "values_stored", "history_rows"):
        if all(count in r for r in done):
            summary[count] = min(r[count] for r in done)
    if "store" in done[-1]:
        summary["store"] = done[-1]["store"]
    if all("durable" in r for r in done):
        summary["durable"] = all(r["durable"] for r in done)
    notes = sorted({r["note"] for r in rounds if "note" in r} | {f"skipped: {r['skipped']}" for r in rounds
                                                                 if "skipped" in r})  # fmt: skip
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def _ratio(peers: dict[str, dict[str, Any]], other: str, figure: str) -> Optional[float]:
    mine, theirs = peers.get("tracehouse", {}), peers.get(other, {})
    if mine.get(figure) is None or theirs.get(figure) is None or not mine[figure]:
        return None
    return float(theirs[figure] / mine[figure])


def _verdict(ok: Optional[bool]) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def evaluate(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """PASS/FAIL against the targets (tracehouse's medians); a check whose input is missing is SKIP."""
    th = results["peers"].get("tracehouse", {})
    steps = results["steps"]
    log_us, init_ms, finish_ms = th.get("log_us"), th.get("init_ms"), th.get("finish_ms")
    ratio = _ratio(results["peers"], "wandb", "log_us")
    stored = th.get("steps_stored"), th.get("values_stored"), th.get("history_rows")
    queryable = None if None in stored else stored == (steps, steps * len(KEYS), steps)
    return [
        ("tracehouse log us/call", fmt_number(log_us, 2), f"<= {TARGET_LOG_US:g}",
         _verdict(None if log_us is None else log_us <= TARGET_LOG_US)),
        ("wandb / tracehouse log us/call", fmt_number(ratio, 1), f">= {TARGET_WANDB_RATIO:g}",
         _verdict(None if ratio is None else ratio >= TARGET_WANDB_RATIO)),
        ("tracehouse init ms", fmt_number(init_ms, 1), f"<= {TARGET_INIT_MS:g}",
         _verdict(None if init_ms is None else init_ms <= TARGET_INIT_MS)),
        ("tracehouse finish ms, all durable", f"{fmt_number(finish_ms, 1)}, {th.get('durable', '-')}",
         f"<= {TARGET_FINISH_MS:g}, True",
         _verdict(None if finish_ms is None else finish_ms <= TARGET_FINISH_MS and th.get("durable") is True)),
        ("tracehouse steps / values / history rows queryable", " / ".join(fmt_number(n, 0) for n in stored),
         f"{steps:,} / {steps * len(KEYS):,} / {steps:,}", _verdict(queryable)),
    ]  # fmt: skip


def report(results: dict[str, Any]) -> str:
    """The human-readable report of a full run: the parts run, then every check."""
    out = [_metrics_report(results)] if results["peers"] else []
    if "media" in results:
        out.append(_log_media.report(results["media"]))
    out.append(render_table(["check", "value", "target", "result"], results["checks"]))
    return "\n\n".join(out)


def _metrics_report(results: dict[str, Any]) -> str:
    peers: dict[str, dict[str, Any]] = results["peers"]
    steps = results["steps"]
    out = [f"log throughput: {steps:,} steps of log({{{len(KEYS)} float metrics}}), median of "
           f"{results['repeats']} round(s), each peer in a fresh interpreter per round"]  # fmt: skip
    rows = []
    for name, peer in peers.items():
        if "skipped" in peer:
            rows.append([name, *["-"] * 11, f"skipped: {peer['skipped']}"])
            continue
        stored = "/".join(fmt_number(peer.get(k), 0) for k in ("steps_stored", "values_stored"))
        rows.append([
            name, fmt_number(peer["import_ms"], 0), fmt_number(peer["setup_ms"], 1), fmt_number(peer["init_ms"], 1),
            fmt_number(peer["log_us"], 2), f"{peer['log_us_min']:,.2f}-{peer['log_us_max']:,.2f}",
            fmt_number(peer["finish_ms"], 1), stored, fmt_number(peer.get("query_seconds"), 2),
            fmt_number(peer["cpu_seconds"], 2), fmt_number(peer["peak_rss_mb"], 0),
            fmt_number(peer["helper_peak_rss_mb"], 0) if peer["helper_peak_rss_mb"] else "-", peer.get("note", ""),
        ])  # fmt: skip
    headers = ["peer", "import ms", "setup ms", "init ms", "log us", "log us range", "finish ms", "steps/values stored",
               "query s", "CPU s", "RSS MB", "helpers MB", "note"]  # fmt: skip
    out.append(render_table(headers, rows, left=(0, len(headers) - 1)))
    mlflow = peers.get("mlflow", {})
    if "store" in mlflow:
        opt_in = ", MLFLOW_ALLOW_FILE_STORE=true" if mlflow["store"] == "file" else ""
        out.append(f"(mlflow: {mlflow['store']} store{opt_in}, stored = get_metric_history() of every key, "
                   "query s its time)")  # fmt: skip
    if "steps_stored" in peers.get("wandb", {}):
        out.append("(wandb: offline, stored = history records read back from the .wandb log; not queryable "
                   "before wandb sync)")  # fmt: skip
    th = peers.get("tracehouse", {})
    if "history_rows" in th:
        out.append(
            f"(tracehouse: query s = the first tracehouse.query(), store open and spool ingest included; "
            f"then history() {th['history_rows']:,} rows in {th['history_seconds']:.2f} s; "
            f"peak RSS {th['final_peak_rss_mb']:.0f} MB with the store open)"
        )

    out.append("")
    ratio_rows = []
    for other in ("wandb", "mlflow"):
        figures = ("log_us", "init_ms", "finish_ms", "cpu_seconds")
        ratios = (fmt_number(_ratio(peers, other, figure), 1) for figure in figures)
        ratio_rows.append([f"{other} / tracehouse", *ratios])
    out.append(render_table(["ratio", "log us", "init ms", "finish ms", "CPU s"], ratio_rows))
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    selected = [p for p in PEERS if p in parse_choices(args.only, PEERS, "peer")] if args.only else list(PEERS)
    parts = parse_choices(args.parts, PARTS, "part")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "steps": args.steps,
        "repeats": args.repeats,
        "mlflow_store": args.mlflow_store,
        **machine_info(("tracehouse", "wandb", "mlflow-skinny", "mlflow", "chdb", "orjson")),
        "peers": {},
    }
    rounds: dict[str, list[dict[str, Any]]] = {peer: [] for peer in selected} if "metrics" in parts else {}
    with tempfile.TemporaryDirectory(prefix="th-bench-") as tmp:
        for round_no in range(args.repeats if rounds else 0):
            shift = round_no % len(selected)
            for peer in selected[shift:] + selected[:shift]:
                progress(f"round {round_no + 1}/{args.repeats}: {peer} ...")
                data_dir = Path(tmp) / f"{peer}-{round_no}"
                argv = [str(HERE), "--steps", str(args.steps), "--peer", peer, "--data-dir", str(data_dir),
                        "--mlflow-store", args.mlflow_store]  # fmt: skip
                rounds[peer].append(run_child(argv))
        if "media" in parts:
            results["media"] = _log_media.run_rounds(HERE, selected, args.media_steps, args.repeats, Path(tmp))
    results["peers"] = {peer: summarise(rounds[peer]) for peer in rounds}
    results["checks"] = (evaluate(results) if rounds else []) + (
        _log_media.checks(results["media"]) if "media" in results else []
    )
    return finish(results, started, report, args.out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=10_000, help="log calls per peer (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, a fresh interpreter per peer each (default 3)")
    parser.add_argument("--only", default="", help=f"comma-separated peers to run (default all: {','.join(PEERS)})")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts (default all: {','.join(PARTS)})"
    )
    parser.add_argument("--media-steps", type=int, default=_log_media.DEFAULT_STEPS,
                        help=f"steps of the media part (default {_log_media.DEFAULT_STEPS})")  # fmt: skip
    parser.add_argument("--mlflow-store", choices=("file", "sqlite"), default="file",
                        help="MLflow backend: file store (default) or sqlite (needs the full mlflow)")  # fmt: skip
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=PARTS, default="metrics", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.media_steps < 1:
        parser.error("--steps, --media-steps and --repeats must be positive")
    if args.peer:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
