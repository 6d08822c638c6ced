"""Evaluation harness overhead: ``tracehouse.evals.evaluate`` over 1,000 examples with three built-in scorers.

Run from the repository root::

    python bench/evals.py                          # defaults: 1,000 examples, 3 rounds (~1 min on 2 cores)
    python bench/evals.py --examples 200 --repeats 1
    python bench/evals.py --only sync-c8,sleep-c16 --profile

What is measured: ``evals.evaluate(target, rows, scorers=[exact_match(), contains(), string_similarity()],
progress=False)`` on ``{"input": str(i), "expected": str(i)}`` rows. Each of ``--repeats`` rounds starts a fresh
interpreter per variant (one after the other, the order rotating each round), each with its own temp data dir
(``tracehouse.configure(data_dir=<tmp>, project="bench")``):

1. ``import tracehouse`` + ``from tracehouse import evals``, timed in the child.
2. Warm-up: a ``--warmup``-example evaluation of the same variant. It carries the first-call costs (the embedded
   store opened and migrated, lazy imports: rapidfuzz, pandas, chDB) and is reported apart.
3. The target alone: the trivial targets called once per row in a plain loop (awaited one by one for the
   async one); for the sleeping target, the same ``--examples`` sleeps through a plain ``asyncio.Semaphore``
   of the same concurrency and ``asyncio.gather``, no tracehouse: the floor on this machine.
4. The timed evaluation of ``--examples`` rows: wall time, CPU time of the process (all threads), and where
   the wall time went, from wrappers the benchmark puts around three internals of the runner (a few us):
   ``setup`` (dataset built and pushed, ``th.init``), ``examples`` (every example: span, target, three scorers,
   score records), ``finish`` (aggregates, the examples table, ``run.finish()``), ``store`` (``Dataset.wait()``:
   the spool flushed and ingested into the embedded store, then the dataset version read back).
   Harness overhead per example = (wall - target alone) / examples.
5. Afterwards, untimed against the target: ``tracehouse.query`` of the run's ``scores`` rows (3 per example)
   and ``example`` spans (1 per example), and how long that query took.
6. Peak RSS (``VmHWM``) of the child.

Variants: ``sync-c1``, ``sync-c8`` (the default ``max_concurrency``, argument left out), ``sync-c16``:
``def target(input): return input``; ``async-c16``: ``async def target(input): return input``; ``sleep-c16``:
``async def target(input): await asyncio.sleep(0.05); return input``. A figure is the median of the rounds.

Targets (PASS/FAIL): harness overhead < 1 ms per example for every trivial variant; ``sleep-c16`` < 5 s
(ideal 1000 / 16 x 50 ms = 3.125 s); every example scored with no error and every record queryable.
``--profile`` (also run by itself when a timing target fails) adds cProfile's top functions over one more
evaluation per failing (or selected) variant, in a fresh child. Results go to ``bench/results/evals.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import os
import pstats
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from _common import (
    emit,
    finish,
    fmt_number,
    machine_info,
    median,
    own_peak_rss_mb,
    parse_choices,
    progress,
    render_table,
    run_child,
)

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "evals.json"
# variant -> (target kind, max_concurrency; None = the default, argument left out)
VARIANTS: dict[str, tuple[str, Optional[int]]] = {
    "sync-c1": ("sync", 1),
    "sync-c8": ("sync", None),
    "sync-c16": ("sync", 16),
    "async-c16": ("async", 16),
    "sleep-c16": ("sleep", 16),
}
DEFAULT_CONCURRENCY = 8  # evaluate()'s default, shown for sync-c8
SCORERS = ("exact_match", "contains", "string_similarity")
TARGET_OVERHEAD_MS = 1.0
TARGET_SLEEP_S = 5.0
PHASES = ("setup", "examples", "finish", "store")
OWN_PACKAGES = {"tracing", "evals", "collector", "exporters"}  # the folders of tracehouse's subpackages


# ---------------------------------------------------------------------------------------------
# child: one variant per fresh interpreter
# ---------------------------------------------------------------------------------------------
def _target(kind: str, delay: float) -> Callable[..., Any]:
    """The variant's target: trivial sync, trivial async, or async sleeping `delay` seconds."""

    def sync_target(input: Any) -> Any:
        return input

    async def async_target(input: Any) -> Any:
        return input

    async def sleep_target(input: Any) -> Any:
        await asyncio.sleep(delay)
        return input

    return {"sync": sync_target, "async": async_target, "sleep": sleep_target}[kind]


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"input": str(i), "expected": str(i)} for i in range(n)]


def _target_alone(kind: str, target: Callable[..., Any], rows: list[dict[str, Any]], concurrency: int) -> float:
    """Seconds the target takes on `rows` without tracehouse (sleep: through a semaphore of `concurrency`)."""
    gc.collect()
    if kind == "sync":
        started = time.perf_counter()
        for row in rows:
            target(row["input"])
        return time.perf_counter() - started

    async def sequential() -> None:
        for row in rows:
            await target(row["input"])

    async def bounded() -> None:
        limit = asyncio.Semaphore(concurrency)

        async def one(row: dict[str, Any]) -> Any:
            async with limit:
                return await target(row["input"])

        await asyncio.gather(*(one(row) for row in rows))

    started = time.perf_counter()
    asyncio.run(sequential() if kind == "async" else bounded())
    return time.perf_counter() - started


class _PhaseClock:
    """Marks the moments the runner calls three of its internals, to split one evaluation's wall time.

    Wraps `_caller` (called after the dataset push and `th.init`), `_aggregates` (after the last example)
    and `Dataset.wait` (the spool catch-up and version read at the end); the originals run unchanged.
    """

    def __init__(self) -> None:
        from tracehouse.evals import _dataset, _runner

        self.marks: dict[str, float] = {}
        caller, aggregates, wait = _runner._caller, _runner._aggregates, _dataset.Dataset.wait

        def timed_caller(*args: Any, **kwargs: Any) -> Any:
            self.marks["examples"] = time.perf_counter()
            return caller(*args, **kwargs)

        def timed_aggregates(*args: Any, **kwargs: Any) -> Any:
            self.marks["finish"] = time.perf_counter()
            return aggregates(*args, **kwargs)

        def timed_wait(dataset: Any) -> Any:
            self.marks["store"] = time.perf_counter()
            try:
                return wait(dataset)
            finally:
                self.marks["end"] = time.perf_counter()

        _runner._caller = timed_caller
        _runner._aggregates = timed_aggregates
        _dataset.Dataset.wait = timed_wait  # type: ignore[method-assign]

    def phases_ms(self, started: float) -> dict[str, Optional[float]]:
        points = [started, *(self.marks.get(p) for p in PHASES[1:]), self.marks.get("end")]
        out: dict[str, Optional[float]] = {}
        for phase, (a, b) in zip(PHASES, itertools.pairwise(points), strict=True):
            out[phase] = None if a is None or b is None else (b - a) * 1e3
        return out


def _evaluate(evals: Any, target: Callable[..., Any], rows: list[dict[str, Any]], name: str,
              concurrency: Optional[int]) -> Any:  # fmt: skip
    scorers = [evals.exact_match(), evals.contains(), evals.string_similarity()]
    extra = {} if concurrency is None else {"max_concurrency": concurrency}
    return evals.evaluate(target, rows, scorers=scorers, name=name, progress=False, **extra)


def _stored(th: Any, run_id: str) -> tuple[int, int, float]:
    """(score rows, example spans, seconds of the query) of one evaluation run."""
    started = time.perf_counter()
    found = th.query(
        "SELECT (SELECT count() FROM scores WHERE run_id = {r:String}) AS scores, "
        "(SELECT count() FROM spans WHERE run_id = {r:String} AND name = 'example') AS examples",
        {"r": run_id},
    )
    seconds = time.perf_counter() - started
    return int(found["scores"].iloc[0]), int(found["examples"].iloc[0]), seconds


def _checked(result: Any, examples: int) -> dict[str, Any]:
    """Errors and scores of an EvalResult: every example should pass all three scorers."""
    errors = sum(1 for r in result.rows if r.get("error") or any(k.endswith(".error") for k in r))
    perfect = all(result.aggregates.get(f"{s}.mean") == 1.0 for s in SCORERS)
    return {"rows": len(result.rows), "errors": errors, "all_scores_1": perfect and len(result.rows) == examples}


def child_main(args: argparse.Namespace) -> int:
    """Entry point of a child process: one variant, warm-up then the timed evaluation; emits its JSON."""
    kind, concurrency = VARIANTS[args.variant]
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="th-bench-evals-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        import tracehouse as th
        from tracehouse import evals

        t1 = time.perf_counter()
        th.configure(data_dir=data_dir, project="bench")
        target = _target(kind, args.delay_ms / 1e3)
        clock = _PhaseClock()
        t2 = time.perf_counter()
        warm = _evaluate(evals, target, _rows(args.warmup), "warm-up", concurrency)
        warmup_seconds = time.perf_counter() - t2
        warmup_phases = clock.phases_ms(t2)

        rows = _rows(args.examples)
        alone = _target_alone(kind, target, rows, concurrency or DEFAULT_CONCURRENCY)
        if args.profile:
            return _child_profile(evals, target, rows, args, concurrency)
        gc.collect()
        clock.marks.clear()
        cpu0, started = time.process_time(), time.perf_counter()
        result = _evaluate(evals, target, rows, args.variant, concurrency)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        phases = clock.phases_ms(started)
        rss = own_peak_rss_mb()
        scores, spans, query_seconds = _stored(th, result.run_id)
        warm_scores, warm_spans, _ = _stored(th, warm.run_id)
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    emit({
        "variant": args.variant, "kind": kind, "max_concurrency": concurrency or DEFAULT_CONCURRENCY,
        "examples": args.examples, "import_ms": (t1 - t0) * 1e3, "warmup_seconds": warmup_seconds,
        "warmup_phases_ms": warmup_phases, "warmup_stored_ok": (warm_scores, warm_spans) == (3 * args.warmup,
                                                                                          args.warmup),
        "target_alone_seconds": alone, "wall_seconds": wall, "cpu_seconds": cpu, "phases_ms": phases,
        "overhead_ms": (wall - alone) / args.examples * 1e3, "cpu_ms": cpu / args.examples * 1e3,
        "scores_stored": scores, "spans_stored": spans, "query_seconds": query_seconds,
        "peak_rss_mb": rss, "final_peak_rss_mb": own_peak_rss_mb(), **_checked(result, args.examples),
    })  # fmt: skip
    return 0


def _child_profile(evals: Any, target: Callable[..., Any], rows: list[dict[str, Any]], args: argparse.Namespace,
                   concurrency: Optional[int], top: int = 15) -> int:  # fmt: skip
    """cProfile over one evaluation (the event loop's thread; pool threads run only the target and scorers)."""
    gc.collect()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    _evaluate(evals, target, rows, f"{args.variant}-profiled", concurrency)
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # documented, not in the stubs
    table = []
    for (path, line, name), (_, ncalls, tottime, cumtime, _) in stats.items():
        short = f"{Path(path).parent.name}/{Path(path).name}:{line}({name})" if path != "~" else name
        table.append([short, ncalls, tottime * 1e3, cumtime * 1e3])
    by_own = sorted(table, key=lambda r: -r[2])[:top]
    by_cum = sorted((r for r in table if r[0].split("/", 1)[0] in OWN_PACKAGES), key=lambda r: -r[3])[:top]
    emit({"variant": args.variant, "profiled_wall_seconds": wall, "examples": len(rows),
          "by_own_time": [[r[0], r[1], round(r[2], 1), round(r[3], 1)] for r in by_own],
          "by_cumulative": [[r[0], r[1], round(r[2], 1), round(r[3], 1)] for r in by_cum]})  # fmt: skip
    return 0


# ---------------------------------------------------------------------------------------------
# parent: rounds, medians, checks, report
# ---------------------------------------------------------------------------------------------
FIGURES = ("import_ms", "warmup_seconds", "target_alone_seconds", "wall_seconds", "cpu_seconds", "overhead_ms",
           "cpu_ms", "query_seconds", "peak_rss_mb", "final_peak_rss_mb")  # fmt: skip


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's rounds -> the median of each figure; counts and correctness from the worst round."""
    done = [r for r in rounds if "skipped" not in r]
    if not done:
        return {"skipped": rounds[-1]["skipped"] if rounds else "not run", "rounds": rounds}
    summary: dict[str, Any] = {"rounds_done": len(done), "rounds": rounds, "kind": done[0]["kind"],
                               "max_concurrency": done[0]["max_concurrency"]}  # fmt: skip
    for figure in FIGURES:
        summary[figure] = median([r[figure] for r in done])
    walls = [r["wall_seconds"] for r in done]
    summary["wall_min"], summary["wall_max"] = min(walls), max(walls)
    for key in ("phases_ms", "warmup_phases_ms"):
        seen = {p: [r[key][p] for r in done if r[key].get(p) is not None] for p in PHASES}
        summary[key] = {p: median(values) if values else None for p, values in seen.items()}
    for count in ("scores_stored", "spans_stored", "rows"):
        summary[count] = min(r[count] for r in done)
    summary["errors"] = max(r["errors"] for r in done)
    summary["all_scores_1"] = all(r["all_scores_1"] for r in done) and all(r["warmup_stored_ok"] for r in done)
    notes = sorted({r["note"] for r in rounds if "note" in r} | {f"skipped: {r['skipped']}" for r in rounds
                                                                 if "skipped" in r})  # fmt: skip
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def _verdict(ok: Optional[bool]) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def _ideal_seconds(examples: int, concurrency: int, delay_ms: float) -> float:
    return examples / concurrency * delay_ms / 1e3


def evaluate_checks(results: dict[str, Any]) -> list[list[str]]:
    """PASS/FAIL against the targets (medians of the rounds); a variant not run is SKIP."""
    n, checks = results["examples"], []
    for name, part in results["variants"].items():
        if "skipped" in part:
            checks.append([f"{name}: not run", "-", "-", "SKIP"])
            continue
        if part["kind"] != "sleep":
            value = part["overhead_ms"]
            checks.append([f"{name} harness ms/example", fmt_number(value, 3), f"< {TARGET_OVERHEAD_MS:g}",
                           _verdict(value < TARGET_OVERHEAD_MS)])  # fmt: skip
        else:
            ideal = _ideal_seconds(n, part["max_concurrency"], results["delay_ms"])
            value = part["wall_seconds"]
            checks.append([f"{name} wall s (ideal {ideal:.3f})", fmt_number(value, 2), f"< {TARGET_SLEEP_S:g}",
                           _verdict(value < TARGET_SLEEP_S)])  # fmt: skip
        stored = (part["scores_stored"], part["spans_stored"], part["errors"], part["all_scores_1"])
        checks.append([f"{name} scores / example spans queryable, errors, all scores 1.0",
                       f"{stored[0]:,} / {stored[1]:,}, {stored[2]}, {stored[3]}",
                       f"{3 * n:,} / {n:,}, 0, True", _verdict(stored == (3 * n, n, 0, True))])  # fmt: skip
    return checks


def _failing_timing(results: dict[str, Any]) -> list[str]:
    """The variants whose timing check (the first of their two) failed."""
    timing = [c for c in results["checks"] if "queryable" not in c[0]]
    return [name for name in results["variants"] if any(c[0].startswith(f"{name} ") and c[3] == "FAIL"
                                                        for c in timing)]  # fmt: skip


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(results: dict[str, Any]) -> str:
    """The human-readable report of a full run."""
    n, parts = results["examples"], results["variants"]
    out = [f"evals: evaluate() over {n:,} examples, scorers exact_match + contains + string_similarity, median of "
           f"{results['repeats']} round(s), each variant in a fresh interpreter per round"]  # fmt: skip
    rows, phase_rows = [], []
    for name, part in parts.items():
        if "skipped" in part:
            rows.append([name, *["-"] * 10, f"skipped: {part['skipped']}"])
            continue
        stored = f"{part['scores_stored']:,}/{part['spans_stored']:,}"
        rows.append([
            name, part["kind"], part["max_concurrency"], fmt_number(part["wall_seconds"], 3),
            f"{part['wall_min']:.3f}-{part['wall_max']:.3f}", fmt_number(part["target_alone_seconds"] * 1e3, 1),
            fmt_number(part["overhead_ms"], 3), fmt_number(part["cpu_ms"], 3), stored,
            fmt_number(part["query_seconds"] * 1e3, 1), fmt_number(part["peak_rss_mb"], 0), part.get("note", ""),
        ])  # fmt: skip
        phases, warm = part["phases_ms"], part["warmup_phases_ms"]
        warm_ms = part["warmup_seconds"] * 1e3
        warm_rest = None if warm["store"] is None else warm_ms - warm["store"]
        phase_rows.append([name, *(_ms(phases[p]) for p in PHASES), fmt_number(part["import_ms"], 0), _ms(warm_ms),
                           _ms(warm["store"]), _ms(warm_rest)])  # fmt: skip
    headers = ["variant", "target", "conc.", "wall s", "wall range", "target alone ms", "harness ms/ex", "CPU ms/ex",
               "scores/spans stored", "query ms", "RSS MB", "note"]  # fmt: skip
    out.append(render_table(headers, rows, left=(0, 1, len(headers) - 1)))
    out.append("(harness ms/ex = (wall - target alone) / examples; CPU ms/ex = process CPU time, all threads, / "
               "examples; stored = the run's scores rows / example spans, counted by th.query after evaluate() "
               "returned, query ms its time)")  # fmt: skip
    sleep = parts.get("sleep-c16", {})
    if "wall_seconds" in sleep:
        conc = sleep["max_concurrency"]
        ideal = _ideal_seconds(n, conc, results["delay_ms"])
        floor = -(-n // conc) * results["delay_ms"] / 1e3
        out.append(f"(sleep-c16: ideal {n:,}/{conc} x {results['delay_ms']:g} ms = {ideal:.3f} s, {floor:.3f} s in "
                   f"whole sleeps ({-(-n // conc)} on the busiest slot); wall {sleep['wall_seconds']:.3f} s = ideal + "
                   f"{sleep['wall_seconds'] - ideal:.3f} s (+{(sleep['wall_seconds'] / ideal - 1) * 100:.1f}%); plain "
                   f"asyncio with the same semaphore {sleep['target_alone_seconds']:.3f} s, so tracehouse adds "
                   f"{sleep['wall_seconds'] - sleep['target_alone_seconds']:.3f} s)")  # fmt: skip

    out.append("")
    out.append("where the timed evaluation's wall time goes (ms), and the first-call costs before it:")
    headers = ["variant", *PHASES, "import ms", "warm-up ms", "of which store", "of which the rest"]
    out.append(render_table(headers, phase_rows))
    out.append(f"(setup = dataset push + th.init; examples = span + target + scorers + score records; finish = "
               f"aggregates + examples table + run.finish(); store = Dataset.wait(): spool flushed and ingested into "
               f"the embedded store, version read; warm-up = a {results['warmup']}-example evaluation first, with the "
               f"store's open and migrations in its 'store')")  # fmt: skip

    for name, prof in results.get("profiles", {}).items():
        out.append("")
        if "skipped" in prof:
            out.append(f"profile {name}: skipped: {prof['skipped']}")
            continue
        out.append(f"profile {name}: cProfile of one {prof['examples']:,}-example evaluation "
                   f"({prof['profiled_wall_seconds']:.2f} s under the profiler; event-loop thread only)")  # fmt: skip
        out.append(render_table(["function (top by own time)", "calls", "own ms", "cum ms"], prof["by_own_time"]))
        out.append(render_table(["tracehouse function (top by cumulative)", "calls", "own ms", "cum ms"],
                                prof["by_cumulative"]))  # fmt: skip

    out.append("")
    load = " / ".join(f"{x:.2f}" for x in results["load_average_start"])
    out.append(f"(load average 1/5/15 min at the start {load}, at the end "
               f"{' / '.join(f'{x:.2f}' for x in results['load_average_end'])}; {os.cpu_count()} CPUs)")  # fmt: skip
    if results.get("stray_processes"):
        out.append("WARNING: other processes were running: " + "; ".join(results["stray_processes"]))
    out.append("")
    out.append(render_table(["check", "value", "target", "result"], results["checks"]))
    return "\n".join(out)


def _stray_processes() -> list[str]:
    """Running `tracehouse serve`, py-spy or pytest processes that would compete for the CPU and the disk."""
    try:
        found = subprocess.run(["pgrep", "-af", "tracehouse serve|py-spy|pytest"], capture_output=True, text=True,
                               check=False)  # fmt: skip
    except OSError:
        return []
    return [line for line in found.stdout.splitlines() if line.strip()]


def _child_argv(args: argparse.Namespace, variant: str, data_dir: Path) -> list[str]:
    return [str(HERE), "--variant", variant, "--examples", str(args.examples), "--warmup", str(args.warmup),
            "--delay-ms", str(args.delay_ms), "--data-dir", str(data_dir)]  # fmt: skip


def parent_main(args: argparse.Namespace) -> int:
    selected = [v for v in VARIANTS if v in parse_choices(args.only, tuple(VARIANTS), "variant")] if args.only \
        else list(VARIANTS)  # fmt: skip
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "examples": args.examples,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "delay_ms": args.delay_ms,
        **machine_info(("tracehouse", "chdb", "rapidfuzz", "orjson", "pandas")),
        "stray_processes": _stray_processes(),
        "load_average_start": os.getloadavg(),
        "variants": {},
    }
    rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in selected}
    with tempfile.TemporaryDirectory(prefix="th-bench-evals-") as tmp:
        for round_no in range(args.repeats):
            shift = round_no % len(selected)
            for variant in selected[shift:] + selected[:shift]:
                progress(f"round {round_no + 1}/{args.repeats}: {variant} ...")
                data_dir = Path(tmp) / f"{variant}-{round_no}"
                rounds[variant].append(run_child(_child_argv(args, variant, data_dir), timeout=600))
        results["variants"] = {v: summarise(rounds[v]) for v in selected}
        results["checks"] = evaluate_checks(results)
        profiled = selected if args.profile else _failing_timing(results)
        results["profiles"] = {}
        for variant in profiled:
            progress(f"profile: {variant} ...")
            argv = [*_child_argv(args, variant, Path(tmp) / f"{variant}-profile"), "--profile"]
            results["profiles"][variant] = run_child(argv, timeout=600)
    results["load_average_end"] = os.getloadavg()
    return finish(results, started, report, args.out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=1000, help="examples in the timed evaluation (default 1,000)")
    parser.add_argument("--warmup", type=int, default=10, help="examples in the warm-up evaluation (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, a fresh interpreter per variant (default 3)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="sleep of the sleep-c16 target (default 50)")
    parser.add_argument("--only", default="", help=f"comma-separated variants (default all: {','.join(VARIANTS)})")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one more evaluation per variant (run anyway for a failing timing)")  # fmt: skip
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--variant", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.examples < 1 or args.warmup < 1 or args.repeats < 1 or args.delay_ms < 0:
        parser.error("--examples, --warmup and --repeats must be positive, --delay-ms not negative")
    if args.variant:
        return child_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
