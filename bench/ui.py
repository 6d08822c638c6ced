"""Web UI page load times over a 1,000,000-span store: server side (HTTP GET) and in headless Chromium.

Run from the repository root::

    python bench/ui.py                          # defaults: 1,000,000 spans, 1,000 runs, 5 timed GETs per page
    python bench/ui.py --spans 200000 --repeats 3
    python bench/ui.py --profile                # time the SQL behind the pages even when every page passes

Parts, each in a fresh interpreter, one after the other:

1. ``seed``: a fresh data dir, ``tracehouse.configure(data_dir=)``, the embedded store opened with
   ``tracehouse.reads.reading.get_store()`` and ``--spans`` spans inserted with one ``INSERT ... SELECT FROM
   numbers()`` (timed: "seed s"): traces of 3-5 spans spread over the 23.5 h before the last minute (root
   ``chain``/``agent`` span with four names, ``retrieve``, one or two ``llm`` calls, a reranker or a tool), four
   models, ~2% failing spans, input/output text (chat messages of ~900 characters on the LLM spans) with
   200-character previews, token counts and cost, a session (5 traces each) and a user on the root; a
   feedback score (`helpful`) on one root in ten. Then ``--runs`` runs (default 1,000; ``th.init`` + 300 steps
   of 4 metrics each), a grid sweep of 4 trials run by ``th.agent`` in the process, two evaluations of one
   ``--examples``-row dataset (``evals.evaluate``), ``th.sync()``; the process exits, which releases the
   store (chDB lets one process open a data dir).
2. ``serve``: ``python -m tracehouse serve --port <free> --data-dir <dir>``; every page and its JSON twin
   under ``/api/v1/ui/`` (the list: ``_ui_pages.py``) is fetched with urllib (a new connection per GET, body
   read to the end): 1 warm-up, then ``--repeats`` timed GETs; median and p90 (nearest rank) in ms. The
   trace opened is the newest one of the list, the second page uses the list's ``next`` cursor. Peak RSS
   (``VmHWM``) of the collector.
3. ``browser``: Playwright driving ``/usr/bin/chromium``: for ``/`` and ``/traces``, 1 warm-up navigation,
   then 3 timed ones; navigation start to the end of the load event (``PerformanceNavigationTiming``), median.
4. ``profile`` (when a list page misses the target, or with ``--profile``): the collector is stopped and a
   child opens the store and calls the functions of ``collector/ui/queries.py`` with the pages' parameters
   through a store that times each statement: median and p90 of ``--repeats`` after a warm-up, the rows the
   index leaves to read (``EXPLAIN ESTIMATE``; chDB has no ``system.query_log``), and the plan
   (``EXPLAIN indexes = 1``) of the slowest statement in the JSON.

Target (PASS/FAIL): every page (the dashboard at 1 h and 24 h, every ``/traces`` variant, a trace,
``/sessions``, ``/users``, the runs table over all runs, sorted and paged, a run, the compare page, sweeps
and a sweep, evals, an eval, the eval compare page, datasets and a dataset, the reports, a report with every
panel kind and its export: ``_ui_reports.py``) answers in under 1 s (median), both the HTML page and its
JSON twin. Results also go to
``bench/results/ui.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from _common import (
    emit,
    finish,
    fmt_number,
    machine_info,
    median,
    own_peak_rss_mb,
    progress,
    render_table,
    run_child,
)
from _ui_pages import ABSENT_WORD, MIN_MS, SEARCH_WORD, SORTED, page_list
from _ui_pages import url_of as _url
from _ui_reports import create_report, report_pages
from _ui_seed import PROJECT, child_seed

HERE = Path(__file__).resolve()
RESULTS = HERE.parent / "results" / "ui.json"
TARGET_MS = 1000.0
BROWSER_RUNS = 3
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip
COMPETITORS = "pytest|tracehouse serve|bench/"


# ---------------------------------------------------------------------------------------------
# pages over HTTP (the list: _ui_pages.py)
# ---------------------------------------------------------------------------------------------
def fetch(url: str, timeout: float = 120.0) -> tuple[int, bytes, float]:
    """GET `url` on a new connection: (status, body, seconds until the body is read)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, body, time.perf_counter() - started


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def time_get(base: str, path: str, repeats: int) -> dict[str, Any]:
    """1 warm-up GET, then `repeats` timed ones: median, p90, min, max (ms), status, size."""
    status, body, first = fetch(base + path)
    times = []
    for _ in range(repeats):
        status, body, seconds = fetch(base + path)
        times.append(seconds * 1e3)
    result: dict[str, Any] = {
        "status": status, "kb": len(body) / 1024, "warmup_ms": first * 1e3, "runs_ms": times,
        "median_ms": median(times), "p90_ms": nearest_rank(times, 0.9), "max_ms": max(times),
    }  # fmt: skip
    if status != 200:
        result["error"] = body[:300].decode("utf-8", "replace")
    return result


def measure_pages(url: str, seeded: dict[str, Any], repeats: int) -> dict[str, Any]:
    _, body, _ = fetch(url + _url("/api/v1/ui/traces", range="24h"))
    first_page = json.loads(body)
    cursor = first_page.get("next")
    trace_id = first_page["traces"][0]["trace_id"] if first_page.get("traces") else None
    pages = page_list(cursor, trace_id, seeded)
    evals = seeded.get("eval_run_ids") or []
    report = create_report(url, PROJECT, trace_id, seeded.get("run_ids") or [], evals[0] if evals else None)
    pages += report_pages(PROJECT, report)  # every panel kind
    for page in pages:
        progress(f"  {page['label']} ...")
        page["html"] = time_get(url, page["page"], repeats)
        page["api"] = time_get(url, page["json"], repeats)
    return {"pages": pages, "first_page_traces": len(first_page.get("traces", [])), "cursor": cursor,
            "trace_id": trace_id}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the browser
# ---------------------------------------------------------------------------------------------
_TIMING_JS = "JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())"


def child_browser(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no {CHROMIUM}")
    result: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        for label, path in (("/ range=1h", _url("/", range="1h")), ("/traces range=24h", _url("/traces", range="24h"))):
            page.goto(args.url + path, wait_until="load", timeout=120_000)  # warm-up
            loads, first_bytes, walls = [], [], []
            for _ in range(BROWSER_RUNS):
                started = time.perf_counter()
                page.goto(args.url + path, wait_until="load", timeout=120_000)
                walls.append((time.perf_counter() - started) * 1e3)
                timing = json.loads(page.evaluate(_TIMING_JS))
                loads.append(timing["loadEventEnd"] - timing["startTime"])
                first_bytes.append(timing["responseStart"] - timing["startTime"])
            result[label] = {"load_ms": median(loads), "ttfb_ms": median(first_bytes), "goto_ms": median(walls),
                             "loads_ms": loads}  # fmt: skip
        browser.close()
    return result


# ---------------------------------------------------------------------------------------------
# profile: the SQL behind the pages, straight against the store
# ---------------------------------------------------------------------------------------------
class TimingStore:
    """Stands in for `Store` in `collector/ui/queries.py`: times each SELECT and keeps its SQL and parameters."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.log: list[dict[str, Any]] = []

    def query_rows(self, sql: str, parameters: Any = None, settings: Any = None) -> tuple[list[str], list[Any]]:
        started = time.perf_counter()
        columns, rows = self.store.query_rows(sql, parameters, settings)
        self.log.append({"sql": sql, "parameters": parameters or {}, "ms": (time.perf_counter() - started) * 1e3,
                         "rows": len(rows)})  # fmt: skip
        return columns, rows


def _profile_cases(cursor: Optional[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(page, function of collector/ui/queries.py, its arguments) for every list page."""
    cases: list[tuple[str, str, dict[str, Any]]] = [("every page", "projects", {})]
    for label in ("1h", "24h"):
        for by in ("name", "model") if label == "24h" else ("name",):
            page = f"/ range={label} by={by}"
            cases += [
                (page, "dashboard_sets", {"range": label, "by": by}),
                (page, "slowest", {"range": label}),
            ]
    variants: list[tuple[str, dict[str, Any]]] = [
        ("/traces", {}), ("/traces status=error", {"status": "error"}), (f"/traces text={SEARCH_WORD}",
        {"text": SEARCH_WORD}), (f"/traces text={ABSENT_WORD} (no match)", {"text": ABSENT_WORD}),
        (f"/traces min_ms={MIN_MS}", {"min_ms": float(MIN_MS)}), *SORTED]  # fmt: skip
    if cursor:
        variants.append(("/traces page 2 (after=)", {"after": cursor}))
    cases += [(page, "trace_list", {"range": "24h", **filters}) for page, filters in variants]
    return cases


def _call(store: Any, function: str, options: dict[str, Any]) -> None:
    from tracehouse.collector.store import queries as q
    from tracehouse.collector.ui import queries as uq

    if function == "projects":
        q.known_projects(store)
        return
    window = uq.time_range(options.pop("range"))
    if function == "trace_list":
        from tracehouse.collector.ui.trace_list import list_order
        from tracehouse.collector.ui.trace_pages import trace_list_data

        order = list_order({k: options.pop(k) for k in ("sort", "order", "after", "error") if k in options})
        trace_list_data(store, PROJECT, window, uq.TraceFilters(**options), order)
    elif function == "dashboard_sets":
        getattr(uq, function)(store, PROJECT, window, options["by"])
    else:
        getattr(uq, function)(store, PROJECT, window)


def child_profile(args: argparse.Namespace) -> dict[str, Any]:
    import tracehouse as th
    from tracehouse.reads.reading import get_store

    th.configure(data_dir=Path(args.data_dir), project=PROJECT)
    store = get_store()
    statements = []
    for page, function, options in _profile_cases(args.cursor):
        timing = TimingStore(store)
        for _ in range(1 + args.repeats):
            _call(timing, function, dict(options))
        per_call = len(timing.log) // (1 + args.repeats)
        for index in range(per_call):
            runs = timing.log[index + per_call :: per_call]  # the timed calls, without the warm-up
            last = runs[-1]
            label = function if per_call == 1 else f"{function} #{index + 1}"
            by = f" by={options['by']}" if options.get("by") else (" (all)" if "by" in options else "")
            _, estimate = store.query_rows("EXPLAIN ESTIMATE " + last["sql"], last["parameters"])
            statements.append({
                "page": page, "query": label + by, "median_ms": median([r["ms"] for r in runs]),
                "p90_ms": nearest_rank([r["ms"] for r in runs], 0.9), "rows": last["rows"],
                "index_rows": sum(int(e[3]) for e in estimate), "index_granules": sum(int(e[4]) for e in estimate),
                "sql": last["sql"], "raw": last["parameters"],
            })  # fmt: skip
    slowest = max(statements, key=lambda s: s["median_ms"])
    _, plan = store.query_rows("EXPLAIN indexes = 1 " + slowest["sql"], slowest["raw"])
    for statement in statements:
        statement["parameters"] = {k: str(v) for k, v in statement.pop("raw").items()}
    return {"statements": statements, "slowest_plan": [str(r[0]) for r in plan], "peak_rss_mb": own_peak_rss_mb()}


# ---------------------------------------------------------------------------------------------
# parent: quiet machine, parts in order, report
# ---------------------------------------------------------------------------------------------
def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def competitors() -> list[str]:
    """Processes that would compete for the CPU and the disk (pytest, a collector, another bench)."""
    try:
        found = subprocess.run(["pgrep", "-af", COMPETITORS], capture_output=True, text=True, check=False)
    except OSError:
        return []
    mine = _ancestors()
    return [line for line in found.stdout.splitlines() if line.strip() and int(line.split()[0]) not in mine]


def wait_for_quiet(limit: float, every: float = 20.0) -> dict[str, Any]:
    started = time.monotonic()
    seen = competitors()
    first = list(seen)
    while seen and time.monotonic() - started < limit:
        progress(f"waiting for {len(seen)} competing process(es): {seen[0][:100]}")
        time.sleep(every)
        seen = competitors()
    return {"found_at_start": first, "waited_seconds": time.monotonic() - started, "still_running": seen}


def _verdict(page: dict[str, Any]) -> str:
    if not page["list"]:
        return ""
    times = [page[k]["median_ms"] for k in ("html", "api")]
    ok = all(page[k]["status"] == 200 for k in ("html", "api")) and max(times) < TARGET_MS
    return "PASS" if ok else "FAIL"


def report(results: dict[str, Any]) -> str:
    seed = results["seed"]
    out = []
    quiet = results["quiet"]
    if quiet["found_at_start"]:
        out.append(f"waited {quiet['waited_seconds']:.0f} s for {len(quiet['found_at_start'])} competing process(es)"
                   + (f"; STILL RUNNING: {quiet['still_running']}" if quiet["still_running"] else ""))  # fmt: skip
    if quiet.get("after_pages"):
        out.append(f"WARNING: started while the pages were timed: {quiet['after_pages']}")
    if "skipped" in seed:
        out.append(f"seed: skipped: {seed['skipped']}")
        return "\n".join(out)
    out.append(
        f"store: {seed['spans']:,} spans in {seed['traces']:,} traces over the last {seed['oldest_hours']:.1f} h, "
        f"{seed['span_names']} span names, {seed['models']} models, {seed['error_rate']:.1%} failing spans, "
        f"input/output {seed['input_avg_chars']:.0f}/{seed['output_avg_chars']:.0f} chars on average "
        f"({seed['spans_mb_uncompressed']:,.0f} MB raw, {seed['spans_mb_compressed']:,.0f} MB on disk); "
        f"{seed['runs_in_store']} runs ({len(seed['run_ids'])} x 300 steps x 4 metrics, {seed['sweep_trials']} "
        "sweep trials)"
    )
    out.append(
        f"seed: INSERT ... SELECT FROM numbers() {seed['seed_seconds']:.1f} s "
        f"(store open {seed['open_seconds']:.1f} s; runs {seed['runs_seconds']:.1f} s, "
        f"sweep + sync {seed['sweep_seconds']:.1f} s; seed process peak RSS {seed['peak_rss_mb']:.0f} MB)"
    )
    served = results.get("serve", {})
    if "skipped" in served:
        out.append(f"serve: skipped: {served['skipped']}")
        return "\n".join(out)
    out.append(f"collector: ready after {served['start_seconds']:.1f} s, peak RSS {served['peak_rss_mb']:.0f} MB "
               f"(RSS at the end {served['rss_mb']:.0f} MB), exit code {served['exit_code']}")  # fmt: skip
    out.append("")
    rows = []
    for page in served["pages"]:
        html, api = page["html"], page["api"]
        status = "" if html["status"] == api["status"] == 200 else f"HTTP {html['status']}/{api['status']}"
        rows.append([page["label"], fmt_number(html["median_ms"], 0), fmt_number(html["p90_ms"], 0),
                     fmt_number(api["median_ms"], 0), fmt_number(api["p90_ms"], 0), fmt_number(html["kb"], 0),
                     fmt_number(html["warmup_ms"], 0), f"< {TARGET_MS:.0f}" if page["list"] else "",
                     _verdict(page) or status])  # fmt: skip
    headers = ["page (project=bench)", "html ms", "p90", "json ms", "p90", "html KB", "1st GET ms", "target", "result"]
    out.append(f"server side: GET over a new connection, body read; median and p90 of {results['repeats']} after "
               "1 warm-up (the 1st GET column)")  # fmt: skip
    out.append(render_table(headers, rows, left=(0, len(headers) - 1)))
    browser = results.get("browser", {})
    out.append("")
    if "skipped" in browser:
        out.append(f"browser: skipped: {browser['skipped']}")
    else:
        for label, figures in browser.items():
            if isinstance(figures, dict):
                out.append(
                    f"browser {label}: navigation -> load event {figures['load_ms']:.0f} ms median of {BROWSER_RUNS} "
                    f"(first byte {figures['ttfb_ms']:.0f} ms; page.goto {figures['goto_ms']:.0f} ms)"
                )
    profile = results.get("profile")
    if profile is not None:
        out.append("")
        if "skipped" in profile:
            out.append(f"profile: skipped: {profile['skipped']}")
        else:
            out.append(f"profile: the SQL of collector/ui/queries.py against the store (collector stopped), median "
                       f"of {results['repeats']} after a warm-up")  # fmt: skip
            prows = [[s["page"], s["query"], fmt_number(s["median_ms"], 0), fmt_number(s["p90_ms"], 0),
                      f"{s['index_rows']:,}", s["rows"]] for s in profile["statements"]]  # fmt: skip
            out.append(render_table(["page", "statement", "ms", "p90", "rows in range", "rows out"], prows,
                                    left=(0, 1)))  # fmt: skip
    verdicts = [(p["label"], _verdict(p)) for p in served["pages"] if p["list"]]
    failed = [label for label, verdict in verdicts if verdict != "PASS"]
    out.append("")
    summary = f"pages under {TARGET_MS / 1e3:.0f} s over {seed['spans']:,} spans: "
    summary += f"{len(verdicts) - len(failed)}/{len(verdicts)} PASS"
    out.append(summary + (f"; FAIL: {', '.join(failed)}" if failed else ""))
    return "\n".join(out)


def part_serve(args: argparse.Namespace, data_dir: Path, seeded: dict[str, Any]) -> dict[str, Any]:
    from _ingest_collector import CollectorProcess

    collector = CollectorProcess(data_dir)
    try:
        collector.start()
        collector.wait_ready()
        result: dict[str, Any] = {"start_seconds": collector.start_seconds, "url": collector.url}
        result.update(measure_pages(collector.url, seeded, args.repeats))
        if not args.no_browser:
            progress("browser ...")
            result["browser"] = run_child([str(HERE), "--role", "browser", "--url", collector.url], timeout=600)
        result["peak_rss_mb"] = collector.peak_rss_mb()
        from _common import proc_status_mb

        result["rss_mb"] = proc_status_mb(collector.process.pid, "VmRSS") if collector.process else None
        result.update(collector.stop())
        return result
    except Exception as error:
        traceback.print_exc()
        return {"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300], "log": collector.log_tail()}
    finally:
        collector.kill()


def parent_main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "spans": args.spans,
        "repeats": args.repeats, **machine_info(("tracehouse", "chdb", "clickhouse-connect", "fastapi", "playwright")),
    }  # fmt: skip
    results["quiet"] = wait_for_quiet(args.wait)
    results["load_average_start"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="th-bench-ui-") as tmp:
        data_dir = Path(tmp) / "data"
        progress(f"seed {args.spans:,} spans ...")
        seed_args = ["--role", "seed", "--data-dir", str(data_dir), "--spans", str(args.spans), "--runs",
                     str(args.runs), "--examples", str(args.examples)]  # fmt: skip
        results["seed"] = seed = run_child([str(HERE), *seed_args], timeout=1800)
        if "skipped" not in seed:
            progress("serve and time the pages ...")
            served = part_serve(args, data_dir, seed)
            results["quiet"]["after_pages"] = competitors()
            results["browser"] = served.pop("browser", {"skipped": "--no-browser"})
            results["serve"] = served
            failed = "skipped" not in served and any(_verdict(p) == "FAIL" for p in served["pages"])
            if args.profile or failed:
                progress("profile the queries ...")
                profile_args = ["--role", "profile", "--data-dir", str(data_dir), "--repeats", str(args.repeats)]
                if served.get("cursor"):
                    profile_args += ["--cursor", served["cursor"]]
                results["profile"] = run_child([str(HERE), *profile_args], timeout=1800)
        if args.keep:
            keep = Path(args.keep)
            subprocess.run(["cp", "-a", str(data_dir), str(keep)], check=False)
            progress(f"data dir kept in {keep}")
    results["load_average_end"] = os.getloadavg()
    return finish(results, started, report, args.out)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans in the store (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=1000, help="runs of 300 logged steps (default 1,000)")
    parser.add_argument("--examples", type=int, default=200, help="examples of the two seeded evals (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed GETs per page after 1 warm-up (default 5)")
    parser.add_argument("--profile", action="store_true", help="time the pages' SQL even when every page passes")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for competing processes (600)")
    parser.add_argument("--keep", help="copy the seeded data dir here at the end (for a closer look)")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--role", choices=("seed", "browser", "profile"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cursor", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.spans < 100 or args.repeats < 1 or args.runs < 1:
        parser.error("--spans must be at least 100, --repeats and --runs at least 1")
    if args.role is None:
        return parent_main(args)
    try:
        role = {"seed": child_seed, "browser": child_browser, "profile": child_profile}[args.role]
        result = role(args)
    except Exception as error:
        traceback.print_exc()
        emit({"skipped": f"{type(error).__name__}: {error}".splitlines()[0][:300]})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
