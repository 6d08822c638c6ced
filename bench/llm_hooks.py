"""Per-call overhead of OpenAI instrumentation: tracehouse against OpenTelemetry's and Traceloop's.

Run from the repository root::

    python bench/llm_hooks.py                       # defaults: 500 calls per shape, 5 rounds (~1.5 min on 2 cores)
    python bench/llm_hooks.py --calls 200 --repeats 3
    python bench/llm_hooks.py --only bare,tracehouse

What is measured: chat completions made with the real ``openai`` client (``max_retries=0``) against
the OpenAI-compatible test server of ``tests/openai_server.py``, started once in this (parent)
process and shared by every peer. Three call shapes:

- ``plain``: ``client.chat.completions.create(model=..., messages=[user prompt])``;
- ``stream``: the same with ``stream=True``, every chunk read to the end;
- ``stream-usage``: the same with ``stream_options={"include_usage": True}`` from the caller. tracehouse
  asks for that usage chunk itself on a ``stream`` call (to record tokens and cost), the others do not, so
  ``stream`` compares different wire traffic and ``stream-usage`` the same.

Each of ``--repeats`` rounds starts a fresh interpreter per peer. The children set up their peer and
make ``--warmup`` untimed calls of each shape; then, shape by shape, they take turns making ``--block``
calls each (the turn order rotates) until each has made ``--calls``, so the host's slow and fast
moments fall on every peer alike. A child times its own calls; the clock includes the final flush of
whatever the peer buffered, taken after its last call. Also read: the child's CPU time (all its
threads, from the first timed call to the end of the flush), which also holds the export work a
background thread did while the child waited for its turn. A peer's figure is the median of its
rounds; its overhead is the median over rounds of (peer - bare) within the same round. Spans are
counted where each peer delivers them and must equal the calls. Then one more call per shape with a
marked prompt shows what its span recorded (prompt, completion, token usage).

Peers:

- ``bare``: no instrumentation.
- ``tracehouse``: ``configure(data_dir=<temp dir>, project="bench")``, ``instrument_openai()``,
  ``tracehouse.flush()``; delivered = records appended to the spool.
- ``otel-openai-v2``: OpenTelemetry's ``opentelemetry-instrumentation-openai-v2`` with
  ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` and
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only`` (prompts and completions on the span).
- ``openllmetry``: Traceloop's ``opentelemetry-instrumentation-openai`` (``TRACELOOP_TRACE_CONTENT=true``).

Both OpenTelemetry peers get an SDK ``TracerProvider`` with a default ``BatchSpanProcessor`` and
an exporter that counts and discards; flush = ``provider.force_flush()``. A peer that cannot be
imported or run is reported as ``skipped: <reason>`` and the rest still runs.

Checks (PASS/FAIL): per shape, tracehouse's added wall time and added CPU time per call <= the lowest
of the other instrumentations'; every instrumented peer delivered one span per timed call. Results
are also written as JSON to ``bench/results/llm_hooks.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from _common import fmt_number, machine_info, median, parse_choices, progress, render_table, write_results
from _llm_hooks_peers import PEERS, SHAPES, ChildFailed, LockstepChild, child_main

HERE = Path(__file__).resolve()
TESTS = HERE.parent.parent / "tests"
RESULTS = HERE.parent / "results" / "llm_hooks.json"
PACKAGES = (
    "tracehouse", "openai", "httpx2", "opentelemetry-sdk", "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai", "opentelemetry-instrumentation-openai",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the runs: per round a fresh child per peer, driven in lockstep against one server
# ---------------------------------------------------------------------------------------------
def run_round(args: argparse.Namespace, peers: dict[str, dict[str, Any]], url: str, root: Path, round_no: int) -> None:
    """A fresh child per peer still running; per shape, the children take turns making `--block` calls.

    The turn order rotates by one each turn. A child that fails is marked skipped and left out from then on.
    """
    children = []
    for peer, state in peers.items():
        if "skipped" not in state:
            argv = [str(HERE), "--peer", peer, "--url", url, "--warmup", str(args.warmup),
                    "--data-dir", str(root / f"{peer}-{round_no}")]  # fmt: skip
            children.append(LockstepChild(peer, argv, root / f"{peer}-{round_no}.log"))
    live = list(children)

    def ask(group: list[LockstepChild], command: Optional[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        answers = {}
        for child in group:
            if child in live:
                try:
                    answers[child.peer] = child.ask(command, timeout)
                except ChildFailed as error:
                    peers[child.peer] = {"skipped": str(error)}
                    live.remove(child)
        return answers

    figures: dict[str, dict[str, Any]] = {child.peer: {} for child in children}
    try:
        ask(children, None, timeout=300.0)  # set-up and warm-up
        for shape in SHAPES:
            ask(list(live), f"start {shape}")
            for turn, first in enumerate(range(0, args.calls, args.block)):
                count, shift = min(args.block, args.calls - first), turn % max(1, len(live))
                ask(live[shift:] + live[:shift], f"call {shape} {count}")
            for peer, answer in ask(list(live), f"stop {shape}").items():
                figures[peer][shape] = answer
        for peer, answer in ask(list(live), "quit").items():
            peers[peer]["runs"].append({"round": round_no, "shapes": figures[peer], **answer})
    finally:
        for child in children:
            child.close()


def run_rounds(args: argparse.Namespace, selected: list[str], root: Path) -> dict[str, dict[str, Any]]:
    """`--repeats` rounds against one server started here; a peer that fails once is not retried."""
    sys.path.insert(0, str(TESTS))
    from openai_server import OpenAIServer

    server = OpenAIServer()
    peers: dict[str, dict[str, Any]] = {peer: {"runs": []} for peer in selected}
    try:
        for round_no in range(args.repeats):
            progress(f"round {round_no + 1}/{args.repeats} ...")
            run_round(args, peers, server.url, root, round_no)
    finally:
        server.stop()
    bare = peers.get("bare", {}).get("runs", [])
    for name, peer in peers.items():
        if "skipped" not in peer:
            base = [] if name == "bare" else bare
            peer["shapes"] = {shape: summarize(peer["runs"], base, shape, args.calls) for shape in SHAPES}
    return peers


def summarize(runs: list[dict[str, Any]], bare: list[dict[str, Any]], shape: str, calls: int) -> dict[str, Any]:
    """One shape of one peer over its rounds: medians, the spread, spans against calls.

    The overheads are the median over rounds of (peer - bare) within a round: the peers of a round took
    turns, so the host's slow and fast moments fell on all of them alike.
    """
    figures = {run["round"]: run["shapes"][shape] for run in runs}
    base = {run["round"]: run["shapes"][shape] for run in bare}

    def paired(key: str) -> Optional[float]:
        differences = [f[key] - base[r][key] for r, f in figures.items() if r in base]
        return median(differences) if differences else None

    walls = [f["us_per_call"] for f in figures.values()]
    return {
        "us_per_call": median(walls),
        "min_us": min(walls),
        "max_us": max(walls),
        "overhead_us": paired("us_per_call"),
        "cpu_us_per_call": median([f["cpu_us_per_call"] for f in figures.values()]),
        "cpu_overhead_us": paired("cpu_us_per_call"),
        "flush_ms": median([f["flush_ms"] for f in figures.values()]),
        "spans": sum(f["spans"] for f in figures.values()),
        "calls": calls * len(figures),
        "recorded": runs[0]["recorded"][shape],
        "peak_rss_mb": max(run["peak_rss_mb"] or 0.0 for run in runs),
    }


def overheads(peers: dict[str, dict[str, Any]], shape: str, key: str) -> dict[str, float]:
    """`key` ("overhead_us" or "cpu_overhead_us") of each instrumented peer that has it, for one shape."""
    found = {name: p["shapes"][shape][key] for name, p in peers.items() if name != "bare" and "shapes" in p}
    return {name: float(value) for name, value in found.items() if value is not None}


def against_lowest(peers: dict[str, dict[str, Any]], shape: str, key: str) -> Optional[tuple[float, str, float]]:
    """(tracehouse's `key`, the cheapest other peer, its `key`) for one shape; None if either is missing."""
    found = overheads(peers, shape, key)
    others = [(value, name) for name, value in found.items() if name != "tracehouse"]
    if "tracehouse" not in found or not others:
        return None
    value, name = min(others)
    return found["tracehouse"], name, value


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
_OVERHEADS = (("overhead_us", "added us"), ("cpu_overhead_us", "added CPU us"))


def evaluate(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """PASS/FAIL against the targets; a check whose input is missing is SKIP."""
    peers = results["peers"]
    checks: list[tuple[str, str, str, str]] = []
    for shape in SHAPES:
        for key, label in _OVERHEADS:
            name, found = f"{shape}: tracehouse {label}/call", against_lowest(peers, shape, key)
            if found is None:
                checks.append((name, "n/a", "<= lowest other", "SKIP"))
                continue
            mine, other, theirs = found
            checks.append((name, fmt_number(mine, 1), f"<= {fmt_number(theirs, 1)} ({other})",
                           "PASS" if mine <= theirs else "FAIL"))  # fmt: skip
    for name, peer in peers.items():
        if name != "bare" and "shapes" in peer:
            spans = sum(peer["shapes"][shape]["spans"] for shape in SHAPES)
            calls = sum(peer["shapes"][shape]["calls"] for shape in SHAPES)
            checks.append((f"{name}: spans == calls", f"{spans:,} / {calls:,}", "equal",
                           "PASS" if spans == calls else "FAIL"))  # fmt: skip
    return checks


def report(results: dict[str, Any]) -> str:
    """The human-readable report of a full run."""
    peers: dict[str, dict[str, Any]] = results["peers"]
    out = [
        f"OpenAI chat completion overhead: {results['calls']:,} calls per shape in each of {results['repeats']} "
        f"rounds; per round a fresh child per peer, the children taking turns of {results['block']} calls; "
        f"warm-up {results['warmup']}",
        "figures: median of rounds, time includes the final flush; overhead = median of (peer - bare) within a round",
    ]
    rows = []
    for shape in SHAPES:
        for name, peer in peers.items():
            if "shapes" not in peer:
                continue
            s = peer["shapes"][shape]
            rows.append([
                shape, name, fmt_number(s["us_per_call"], 1),
                f"{fmt_number(s['min_us'], 0)}-{fmt_number(s['max_us'], 0)}", fmt_number(s["overhead_us"], 1),
                fmt_number(s["cpu_us_per_call"], 1), fmt_number(s["cpu_overhead_us"], 1),
                "-" if name == "bare" else f"{s['spans']:,}/{s['calls']:,}", ", ".join(s["recorded"]) or "-",
                fmt_number(s["peak_rss_mb"], 1),
            ])  # fmt: skip
    headers = ["shape", "peer", "us/call", "rounds us", "overhead us", "CPU us/call", "CPU overhead",
               "spans/calls", "recorded", "peak RSS MB"]  # fmt: skip
    out.append(render_table(headers, rows, left=(0, 1, 8)))
    out.extend(f"{name}: skipped: {peer['skipped']}" for name, peer in peers.items() if "skipped" in peer)

    out.append("")
    ratio_rows = []
    for shape in SHAPES:
        for key, label in _OVERHEADS:
            found = against_lowest(peers, shape, key)
            if found is None or found[2] <= 0:
                ratio_rows.append([f"{shape}, {label}", "n/a", "-"])
                continue
            mine, other, theirs = found
            ratio_rows.append([f"{shape}, {label}", fmt_number(mine / theirs, 2),
                               f"tracehouse {fmt_number(mine, 1)} / {other} {fmt_number(theirs, 1)}"])  # fmt: skip
    out.append(render_table(["tracehouse overhead / lowest other", "ratio", "from"], ratio_rows, left=(0, 2)))

    out.append("")
    out.append(render_table(["check", "value", "target", "result"], results["checks"], left=(0, 2, 3)))
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    selected = parse_choices(args.only, PEERS, "peer") if args.only else list(PEERS)
    selected = [peer for peer in PEERS if peer in selected]
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "calls": args.calls,
        "repeats": args.repeats,
        "block": args.block,
        "warmup": args.warmup,
        **machine_info(PACKAGES),
    }
    with tempfile.TemporaryDirectory(prefix="th-bench-") as tmp:
        results["peers"] = run_rounds(args, selected, Path(tmp))
    results.update(checks=evaluate(results), total_seconds=time.perf_counter() - started)
    print(report(results))
    write_results(results, args.out)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="", help=f"comma-separated peers to run (default all: {','.join(PEERS)})")
    parser.add_argument("--calls", type=int, default=500, help="timed calls per shape, peer and round (default 500)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, each a fresh child per peer (default 5)")
    parser.add_argument("--block", type=int, default=25, help="calls per turn of a child (default 25)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per shape first (default 100)")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeats < 1 or args.block < 1 or args.warmup < 0:
        parser.error("--calls, --repeats and --block must be positive, --warmup not negative")
    if args.peer:
        return child_main(args.peer, args.url, args.warmup, Path(args.data_dir or tempfile.mkdtemp()))
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
