"""The `media` part of `log_throughput.py`: an image and a table logged every step, tracehouse against wandb.

Each step logs ``{"loss": x, "sample": Image(64x64x3 uint8 array), "preds": Table(["id", "pred", "label"],
10 rows)}``: ``th.Image`` / ``th.Table`` for tracehouse, ``wandb.Image`` / ``wandb.Table`` for wandb (offline).
The arrays and rows are built before the clock from a fixed seed (the same inputs for both peers, a different
image every step); the Image and Table objects are made inside the timed loop, as a training loop would.
The peers are set up as in the metrics part; each round runs each peer in a fresh interpreter.

Stored, checked after the clock: tracehouse through ``tracehouse.query`` (``run_values`` rows of both keys,
distinct image digests each present in the blob store, ``run_tables`` rows, ``loss`` in ``metrics``);
wandb from its run dir (history records of the ``.wandb`` log, PNG and table files under ``files/media`` and
the tables' rows).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

from _common import fmt_number, median, progress, render_table, run_child
from _wandb_log import count_wandb_history, offline_env, offline_run_log

PEERS = ("tracehouse", "wandb")
KEYS = ("loss", "sample", "preds")
COLUMNS = ["id", "pred", "label"]
IMAGE_SHAPE = (64, 64, 3)
ROWS = 10
SEED = 1234
DEFAULT_STEPS = 200
TARGET_WANDB_RATIO = 1.0
FIGURES = ("init_ms", "log_us", "finish_ms", "total_seconds", "cpu_seconds", "peak_rss_mb", "helper_peak_rss_mb",
           "query_seconds")  # fmt: skip

Payload = dict[str, Any]
RunPeer = Callable[..., tuple[Any, Any, dict[str, Any]]]


# ---------------------------------------------------------------------------------------------
# children
# ---------------------------------------------------------------------------------------------
def payloads(steps: int) -> list[Payload]:
    """Per step: a loss, a random 64x64x3 uint8 image and 10 table rows, all from one fixed seed."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, size=(steps, *IMAGE_SHAPE), dtype=np.uint8)
    preds = rng.random((steps, ROWS)).round(4).tolist()
    labels = rng.integers(0, 2, size=(steps, ROWS)).tolist()
    return [
        {"loss": 1.0 / (step + 1), "image": images[step],
         "rows": [[step * ROWS + i, preds[step][i], labels[step][i]] for i in range(ROWS)]}
        for step in range(steps)
    ]  # fmt: skip


def _log(lib: Any, run: Any) -> Callable[[Payload], None]:
    """One `run.log` per payload, its Image and Table made in the call (`lib` is tracehouse or wandb)."""

    def log(payload: Payload) -> None:
        run.log({"loss": payload["loss"], "sample": lib.Image(payload["image"]),
                 "preds": lib.Table(columns=COLUMNS, data=payload["rows"])})  # fmt: skip

    return log


def _peer_tracehouse(run_peer: RunPeer, steps: int, data_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    def import_lib() -> Any:
        import tracehouse

        return tracehouse

    lib, run, result = run_peer(
        import_lib,
        lambda th: th.configure(data_dir=data_dir, project="bench"),
        lambda th: th.init(project="bench", config=config),
        _log,
        lambda lib, run: run.finish(),
        steps,
        payloads=payloads(steps),
    )
    from tracehouse.spans.runtime import runtime
    from tracehouse.tracking.blobs import blob_store

    sink = runtime._sink
    pending, dropped, failed = (sink.pending(), sink.dropped, sink.failed_writes) if sink else (0, 0, 0)
    result["durable"] = pending == 0 and dropped == 0 and failed == 0
    t0 = time.perf_counter()
    where = {"r": run.id}
    values = lib.query(
        "SELECT key, count() AS n, uniqExact(step) AS s FROM run_values FINAL WHERE run_id = {r:String} GROUP BY key",
        where,
    )
    result["query_seconds"] = time.perf_counter() - t0
    by_key = {row.key: (int(row.n), int(row.s)) for row in values.itertuples()}
    tables = lib.query("SELECT count() AS n FROM run_tables FINAL WHERE run_id = {r:String} AND key = 'preds'", where)
    loss = lib.query("SELECT count() AS n FROM metrics WHERE run_id = {r:String} AND key = 'loss'", where)
    digests = lib.query(
        "SELECT DISTINCT JSONExtractString(value, 'digest') AS d FROM run_values FINAL "
        "WHERE run_id = {r:String} AND key = 'sample'",
        where,
    )["d"].tolist()
    blobs = blob_store()
    result["stored"] = {
        "images": by_key.get("sample", (0, 0))[0],
        "image_steps": by_key.get("sample", (0, 0))[1],
        "tables": by_key.get("preds", (0, 0))[0],
        "table_rows": int(tables["n"].iloc[0]),
        "loss_rows": int(loss["n"].iloc[0]),
        "blobs": sum(1 for d in digests if d and blobs.exists(d)),
    }
    return result


def _peer_wandb(run_peer: RunPeer, steps: int, data_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    offline_env(data_dir)

    def import_lib() -> Any:
        import wandb

        return wandb

    _, run, result = run_peer(
        import_lib,
        lambda wandb: None,
        lambda wandb: wandb.init(project="bench", mode="offline", dir=str(data_dir), config=config),
        _log,
        lambda lib, run: run.finish(),
        steps,
        payloads=payloads(steps),
    )
    log_path = offline_run_log(data_dir, run.id)
    history = count_wandb_history(log_path, KEYS)
    media = log_path.parent / "files" / "media"
    tables = list(media.rglob("*.table.json"))
    result["stored"] = {
        "history_steps": history["steps_stored"],
        "history_values": history["values_stored"],
        "png_files": len(list(media.rglob("*.png"))),
        "table_files": len(tables),
        "table_rows": sum(len(json.loads(path.read_text())["data"]) for path in tables),
    }
    return result


def peer(name: str, steps: int, data_dir: Path, run_peer: RunPeer, config: dict[str, Any]) -> dict[str, Any]:
    """A child's media run of peer `name`: the timed figures of `run_peer` plus what was stored."""
    if name not in PEERS:
        raise ValueError(f"no media peer {name!r}; choose from {', '.join(PEERS)}")
    result = (_peer_tracehouse if name == "tracehouse" else _peer_wandb)(run_peer, steps, data_dir, config)
    result["total_seconds"] = result["loop_seconds"] + result["finish_ms"] / 1e3
    return result


# ---------------------------------------------------------------------------------------------
# parent: rounds, medians, report, checks
# ---------------------------------------------------------------------------------------------
def run_rounds(script: Path, peers: list[str], steps: int, repeats: int, tmp: Path) -> dict[str, Any]:
    """Each of `repeats` rounds runs every media peer (of `peers`) in a fresh child, the order rotating."""
    selected = [p for p in PEERS if p in peers]
    rounds: dict[str, list[dict[str, Any]]] = {peer: [] for peer in selected}
    for round_no in range(repeats):
        shift = round_no % len(selected) if selected else 0
        for name in selected[shift:] + selected[:shift]:
            progress(f"media round {round_no + 1}/{repeats}: {name} ...")
            data_dir = tmp / f"media-{name}-{round_no}"
            rounds[name].append(run_child([str(script), "--part", "media", "--steps", str(steps), "--peer", name,
                                           "--data-dir", str(data_dir)]))  # fmt: skip
    return {"steps": steps, "repeats": repeats, "peers": {name: _summarise(rounds[name]) for name in selected}}


def _summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the figures; stored counts from the worst round, durable only if every round was."""
    done = [r for r in rounds if "skipped" not in r]
    if not done:
        return {"skipped": rounds[-1]["skipped"] if rounds else "not run", "rounds": rounds}
    summary: dict[str, Any] = {"rounds_done": len(done), "rounds": rounds}
    for figure in FIGURES:
        values = [r[figure] for r in done if r.get(figure) is not None]
        summary[figure] = median(values) if values else None
    summary["log_us_range"] = (min(r["log_us"] for r in done), max(r["log_us"] for r in done))
    summary["stored"] = {key: min(r["stored"][key] for r in done) for key in done[0]["stored"]}
    if all("durable" in r for r in done):
        summary["durable"] = all(r["durable"] for r in done)
    notes = sorted({r["note"] for r in rounds if "note" in r} | {f"skipped: {r['skipped']}" for r in rounds
                                                                 if "skipped" in r})  # fmt: skip
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def _ratio(media: dict[str, Any], figure: str) -> Optional[float]:
    mine, theirs = media["peers"].get("tracehouse", {}), media["peers"].get("wandb", {})
    if not mine.get(figure) or theirs.get(figure) is None:
        return None
    return float(theirs[figure] / mine[figure])


def _stored_text(name: str, stored: dict[str, int]) -> str:
    if name == "tracehouse":
        return (f"{stored['images']:,} images ({stored['blobs']:,} blobs), {stored['tables']:,} tables "
                f"({stored['table_rows']:,} rows), {stored['loss_rows']:,} loss")  # fmt: skip
    return (f"{stored['history_steps']:,} steps ({stored['history_values']:,} values), {stored['png_files']:,} png, "
            f"{stored['table_files']:,} table files ({stored['table_rows']:,} rows)")  # fmt: skip


def checks(media: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """PASS/FAIL: wandb / tracehouse us per log call >= 1, and every tracehouse step's image and table stored."""
    steps, th = media["steps"], media["peers"].get("tracehouse", {})
    ratio = _ratio(media, "log_us")
    stored = th.get("stored")
    want = {"images": steps, "image_steps": steps, "blobs": steps, "tables": steps, "table_rows": steps * ROWS,
            "loss_rows": steps}  # fmt: skip
    ok = None if stored is None else all(stored[k] == v for k, v in want.items()) and th.get("durable") is True
    got = "-" if stored is None else " / ".join(f"{stored[k]:,}" for k in ("images", "blobs", "tables", "table_rows"))
    return [
        ("media: wandb / tracehouse log us/call", fmt_number(ratio, 2), f">= {TARGET_WANDB_RATIO:g}",
         "SKIP" if ratio is None else ("PASS" if ratio >= TARGET_WANDB_RATIO else "FAIL")),
        ("media: tracehouse images / blobs / tables / table rows, durable", f"{got}, {th.get('durable', '-')}",
         f"{steps:,} / {steps:,} / {steps:,} / {steps * ROWS:,}, True",
         "SKIP" if ok is None else ("PASS" if ok else "FAIL")),
    ]  # fmt: skip


def report(media: dict[str, Any]) -> str:
    """The media part's tables (its checks go with the others)."""
    steps = media["steps"]
    out = [f"media: {steps:,} steps of log({{loss, Image(64x64x3 uint8), Table(3 columns x {ROWS} rows)}}), "
           f"median of {media['repeats']} round(s), each peer in a fresh interpreter per round"]  # fmt: skip
    rows = []
    for name, peer_summary in media["peers"].items():
        if "skipped" in peer_summary:
            rows.append([name, *["-"] * 10, f"skipped: {peer_summary['skipped']}"])
            continue
        low, high = peer_summary["log_us_range"]
        rows.append([
            name, fmt_number(peer_summary["init_ms"], 1), fmt_number(peer_summary["log_us"], 0),
            f"{low:,.0f}-{high:,.0f}", fmt_number(peer_summary["finish_ms"], 1),
            fmt_number(peer_summary["total_seconds"], 3), fmt_number(peer_summary["cpu_seconds"], 2),
            fmt_number(peer_summary["peak_rss_mb"], 0),
            fmt_number(peer_summary["helper_peak_rss_mb"], 0) if peer_summary["helper_peak_rss_mb"] else "-",
            _stored_text(name, peer_summary["stored"]), str(peer_summary.get("durable", "-")),
            peer_summary.get("note", ""),
        ])  # fmt: skip
    headers = ["peer", "init ms", "log us", "log us range", "finish ms", "log+finish s", "CPU s", "RSS MB",
               "helpers MB", "stored", "durable", "note"]  # fmt: skip
    out.append(render_table(headers, rows, left=(0, 9, 10, 11)))
    out.append("(log us includes making the Image and Table; tracehouse: stored = tracehouse.query of run_values, "
               "run_tables and metrics after finish, blobs = distinct image digests in the blob store; wandb: history "
               "records of the .wandb log (values = step x key) and the files under files/media)")  # fmt: skip
    figures = ("log_us", "finish_ms", "total_seconds", "cpu_seconds")
    out.append("")
    out.append(render_table(["ratio", "log us", "finish ms", "log+finish s", "CPU s"],
                            [["wandb / tracehouse", *(fmt_number(_ratio(media, f), 2) for f in figures)]]))  # fmt: skip
    return "\n".join(out)
