"""Framework callbacks' cost per training step: tracehouse's integrations against W&B's (offline).

Run from the repository root (needs the `dev` and `bench` extras: the frameworks and wandb)::

    python bench/integrations.py                          # defaults: 300 steps, 3 rounds
    python bench/integrations.py --steps 200 --repeats 1 --only xgboost,lightgbm

For each framework (Keras on torch, PyTorch Lightning, Transformers' Trainer, XGBoost, LightGBM) and
each peer (`bare`: no logger; `tracehouse`; `wandb`: the library's W&B integration, offline), a fresh
interpreter builds tiny CPU work, starts the peer's run before the clock, warms up untimed, then
times `--steps` training steps with the callback logging every step (see _integrations_work.py).

Figure: overhead per step = (peer's loop time - bare loop time) / steps, in microseconds, the median
of the rounds; ratio = tracehouse's overhead / W&B's. Afterwards, outside the clock: finish time and
what was stored (tracehouse: metric rows of the per-step key, queried; wandb: history steps in its
`.wandb` log), and each child's peak RSS. Target (PASS/FAIL): tracehouse's overhead at most W&B's
where W&B's integration runs, every step stored. A peer that cannot run is `skipped: <reason>`
(W&B's Keras callbacks need TensorFlow, which this machine lacks).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from _common import emit, finish, fmt_number, machine_info, median, parse_choices, peak_rss_mb, progress, render_table
from _common import run_child as _run_child

FRAMEWORKS = ("keras", "lightning", "transformers", "xgboost", "lightgbm")
PEERS = ("bare", "tracehouse", "wandb")
HERE = Path(__file__).resolve().parent


def child(framework: str, peer: str, steps: int) -> None:
    """One framework's loop with one peer, in this fresh interpreter; emits the marked result."""
    from _integrations_work import STEP_KEY, WORK

    folder = Path(tempfile.mkdtemp(prefix=f"bench-{framework}-{peer}-"))
    if peer == "tracehouse":
        import tracehouse as th

        th.configure(data_dir=folder / "tracehouse", project="bench-integrations", silent=True)
    elif peer == "wandb":
        from _wandb_log import offline_env

        offline_env(folder)
    os.chdir(folder)  # Lightning and Transformers write their own folders in the working directory
    try:
        seconds, run = WORK[framework](peer, steps)
    except Exception as error:
        emit({"skipped": f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"})
        traceback.print_exc()
        return
    result: dict[str, Any] = {"seconds": seconds, "steps": steps, "peak_rss_mb": peak_rss_mb()}
    if peer != "bare":
        result.update(_finish_and_count(peer, run, folder, STEP_KEY[framework][peer]))
    emit(result)


def _finish_and_count(peer: str, run: Any, folder: Path, key: str) -> dict[str, Any]:
    started = time.perf_counter()
    if peer == "tracehouse":
        import tracehouse as th

        run_id = run.id
        th.finish()
        finished = time.perf_counter() - started
        found = th.query("SELECT uniqExact(step) AS n FROM metrics WHERE run_id = {r:String} AND key = {k:String}",
                         {"r": run_id, "k": key})  # fmt: skip
        return {"finish_s": finished, "stored": int(found["n"].iloc[0])}
    import wandb
    from _wandb_log import count_wandb_history, offline_run_log

    run_id = run.id
    wandb.finish()
    finished = time.perf_counter() - started
    counted = count_wandb_history(offline_run_log(folder, run_id), (key,))
    return {"finish_s": finished, "stored": counted["values_stored"]}


def run_child(framework: str, peer: str, steps: int) -> dict[str, Any]:
    argv = [str(HERE / "integrations.py"), "--child", framework, peer, "--steps", str(steps)]
    return _run_child(argv, env={"PYTHONPATH": str(HERE), "TOKENIZERS_PARALLELISM": "false"}, timeout=900)


def measure(frameworks: list[str], peers: list[str], steps: int, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for framework in frameworks:
        rounds: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
        for index in range(repeats):
            order = peers[index % len(peers) :] + peers[: index % len(peers)]  # rotate who runs first
            for peer in order:
                progress(f"{framework} / {peer} (round {index + 1} of {repeats})")
                rounds[peer].append(run_child(framework, peer, steps))
        results[framework] = {peer: _summarise(runs) for peer, runs in rounds.items()}
        _overheads(results[framework], steps)
    return results


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in runs if "skipped" not in r]
    if not done:
        return {"skipped": runs[0].get("skipped", "no result")}
    summary = {key: median([r[key] for r in done]) for key in ("seconds", "peak_rss_mb", "finish_s", "stored")
               if all(key in r for r in done)}  # fmt: skip
    summary["steps"] = done[0]["steps"]
    summary["stored_min"] = min(r.get("stored", r["steps"]) for r in done)
    return summary


def _overheads(by_peer: dict[str, Any], steps: int) -> None:
    bare = by_peer.get("bare", {}).get("seconds")
    for peer in ("tracehouse", "wandb"):
        entry = by_peer.get(peer, {})
        if bare is not None and "seconds" in entry:
            entry["overhead_us"] = (entry["seconds"] - bare) / steps * 1e6
    ours, theirs = by_peer.get("tracehouse", {}).get("overhead_us"), by_peer.get("wandb", {}).get("overhead_us")
    if ours is not None and theirs is not None and theirs > 0:
        by_peer["ratio"] = ours / theirs


def report(results: dict[str, Any]) -> str:
    rows, verdicts = [], []
    for framework in results["frameworks"]:
        by_peer = results["figures"][framework]
        for peer in results["peers"]:
            entry = by_peer.get(peer, {})
            if "skipped" in entry:
                rows.append([framework, peer, f"skipped: {entry['skipped']}", "", "", "", "", ""])
                continue
            stored = f"{int(entry['stored_min'])}/{entry['steps']}" if peer != "bare" else ""
            rows.append([framework, peer, fmt_number(entry.get("seconds", 0) * 1000 / entry["steps"], 1),
                         fmt_number(entry.get("overhead_us"), 0), fmt_number(entry.get("finish_s"), 3), stored,
                         fmt_number(entry.get("peak_rss_mb"), 0), fmt_number(by_peer.get("ratio"), 2)
                         if peer == "tracehouse" else ""])  # fmt: skip
        verdicts.append(_verdict(framework, by_peer))
    table = render_table(["framework", "peer", "ms/step", "overhead us/step", "finish s", "stored", "peak RSS MB",
                          "ours/W&B"], rows, left=(0, 1))  # fmt: skip
    return f"{table}\n\n" + "\n".join(verdicts)


def _verdict(framework: str, by_peer: dict[str, Any]) -> str:
    ours = by_peer.get("tracehouse", {})
    if "skipped" in ours or "overhead_us" not in ours:
        return f"{framework}: FAIL tracehouse did not run ({ours.get('skipped', 'no bare figure')})"
    complete = ours["stored_min"] >= ours["steps"]
    if "ratio" not in by_peer:
        word = "PASS" if complete else "FAIL"
        return (f"{framework}: {word} every step stored: {complete}; W&B's integration did not run "
                f"({by_peer.get('wandb', {}).get('skipped', 'no figure')})")  # fmt: skip
    word = "PASS" if complete and by_peer["ratio"] <= 1.0 else "FAIL"
    return f"{framework}: {word} tracehouse overhead {by_peer['ratio']:.2f}x W&B's, every step stored: {complete}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(FRAMEWORKS), help=f"frameworks, of {', '.join(FRAMEWORKS)}")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "PEER"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "integrations.json"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps)
        return 0
    started = time.perf_counter()
    frameworks = parse_choices(args.only, FRAMEWORKS, "framework")
    peers = parse_choices(args.peers, PEERS, "peer")
    packages = ("tracehouse", "wandb", "keras", "lightning", "transformers", "xgboost-cpu", "lightgbm", "torch")
    results = {"machine": machine_info(packages), "steps": args.steps, "repeats": args.repeats,
               "frameworks": frameworks, "peers": peers,
               "figures": measure(frameworks, peers, args.steps, args.repeats)}  # fmt: skip
    return finish(results, started, report, args.out)


if __name__ == "__main__":
    sys.exit(main())
