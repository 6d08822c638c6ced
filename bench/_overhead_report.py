"""The report and the checks of `trace_overhead.py`."""

from __future__ import annotations

from typing import Any, Optional

from _common import fmt_number, render_table
from _overhead_payloads import payload_checks, payload_lines

TARGET_RATIO = 0.7
TARGET_DISABLED_US = 1.0
TARGET_IMPORT_MS = 60.0
QUERY_RUNS = 5


def _fmt_int(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"


def _fmt_check(value: Any) -> str:
    if value is None:
        return "n/a"
    return fmt_number(value, 3) if isinstance(value, float) else str(value)


def _ratio(peers: dict[str, dict[str, Any]], other: str) -> Optional[float]:
    mine, theirs = peers.get("tracehouse", {}), peers.get(other, {})
    if "us_per_call" not in mine or "us_per_call" not in theirs:
        return None
    return float(mine["us_per_call"] / theirs["us_per_call"])


def report(results: dict[str, Any]) -> str:
    """The human-readable report of a full run."""
    title = (f"tracing overhead: {results['calls']:,} calls of f(x) = x + 1, warm-up {results['warmup']:,}, "
             "time includes the final flush")  # fmt: skip
    out = [title, _peer_table(results["peers"]), "", _ratio_table(results["peers"]), ""]
    out += _import_lines(results["import"])
    out += _ingest_lines(results.get("ingest"))
    out += _query_lines(results.get("query"))
    out += payload_lines(results.get("payloads"))
    checks = [[name, _fmt_check(value), target, verdict] for name, value, target, verdict in results["checks"]]
    out += ["", render_table(["check", "value", "target", "result"], checks)]
    return "\n".join(out)


def _peer_table(peers: dict[str, dict[str, Any]]) -> str:
    bare_us = peers.get("bare", {}).get("us_per_call")
    rows = []
    for name, peer in peers.items():
        if "skipped" in peer:
            rows.append([name, *["-"] * 7, f"skipped: {peer['skipped']}"])
            continue
        overhead = None if bare_us is None or name == "bare" else peer["us_per_call"] - bare_us
        exported, dropped, note = peer.get("exported"), peer.get("dropped"), peer.get("note", "")
        if not peer.get("flush_ok", True):
            note = (note + "; " if note else "") + "flush timed out"
        rows.append([
            name, fmt_number(peer["us_per_call"], 3), fmt_number(overhead, 3), fmt_number(peer["loop_seconds"], 3),
            fmt_number(peer["flush_seconds"], 3), _fmt_int(exported) if exported is not None else "n/a",
            _fmt_int(dropped) if dropped is not None else ("-" if name in ("bare", "tracehouse-disabled") else "n/a"),
            fmt_number(peer.get("peak_rss_mb"), 1), note,
        ])  # fmt: skip
    headers = ["peer", "us/call", "overhead us", "loop s", "flush s", "exported", "dropped", "peak RSS MB", "note"]
    return render_table(headers, rows, left=(0, len(headers) - 1))


def _ratio_table(peers: dict[str, dict[str, Any]]) -> str:
    rows = []
    for other in ("otel", "logfire", "langfuse"):
        ratio = _ratio(peers, other)
        target = f"<= {TARGET_RATIO}" if other == "otel" else ""
        rows.append([f"tracehouse / {other}", fmt_number(ratio, 3) if ratio is not None else "n/a", target])
    return render_table(["ratio (us/call)", "value", "target"], rows)


def _import_lines(imp: dict[str, Any]) -> list[str]:
    if "skipped" in imp:
        return [f"import tracehouse: skipped: {imp['skipped']}"]
    runs = ", ".join(f"{t:.0f}" for t in imp["runs_ms"])
    lines = [f"import tracehouse: {imp['median_ms']:.1f} ms median of {len(imp['runs_ms'])} ({runs} ms)"]
    for module, peer in (imp.get("peers") or {}).items():
        shown = f"skipped: {peer['skipped']}" if "skipped" in peer else f"{peer['median_ms']:.1f} ms median"
        ratio = "" if "skipped" in peer else f" (tracehouse / {module} = {imp['median_ms'] / peer['median_ms']:.2f})"
        lines.append(f"  import {module}: {shown}{ratio}")
    heavy = ", ".join(f"{m} {ms:.0f} ms" for m, ms in imp["heaviest_imports_ms"]) or "none"
    return [*lines, f"  heaviest imports under tracehouse: {heavy}"]


def _ingest_lines(ingest: Optional[dict[str, Any]]) -> list[str]:
    if ingest is None:
        return []
    if "skipped" in ingest:
        return [f"spool -> store ingest: skipped: {ingest['skipped']}"]
    return [
        f"spool -> store ingest: {ingest['rows']:,} rows ({ingest['spool_bytes'] / 1e6:.1f} MB of spool) in "
        f"{ingest['sync_seconds']:.2f} s = {ingest['rows_per_second']:,.0f} rows/s "
        f"(store open {ingest['open_seconds']:.2f} s not included; {ingest['rows_in_store']:,} rows in store, "
        f"peak RSS {ingest['peak_rss_mb']:.0f} MB)"
    ]


def _query_lines(query: Optional[dict[str, Any]]) -> list[str]:
    if query is None:
        return []
    if "skipped" in query:
        return [f"latency queries: skipped: {query['skipped']}"]
    lines = [f"latency queries over {query['rows']:,} spans (insert {query['insert_seconds']:.2f} s, "
             f"store open {query['open_seconds']:.2f} s, peak RSS {query['peak_rss_mb']:.0f} MB):"]  # fmt: skip
    for by in ("name", "model"):
        q = query[f"latency_by_{by}"]
        lines.append(f"  latency(by={by!r}, since='7d'): {_timing(q)}; {q['groups']} groups, {q['spans']:,} spans")
    if "sql" in query:
        lines.append(f"  query(p95 by model, read-only session): {_timing(query['sql'])}")
    routed = query.get("via_owner") or {}
    if "skipped" in routed:
        lines.append(f"  from a second process (through the owner): skipped: {routed['skipped']}")
    for label, q in ((k, v) for k, v in routed.items() if k != "skipped"):
        lines.append(f"  {label} from a second process, through the owner: {_timing(q)}")
    return lines


def _timing(q: dict[str, Any]) -> str:
    return f"{q['median_ms']:.1f} ms median of {QUERY_RUNS} (first {q['first_ms']:.1f} ms, min {q['min_ms']:.1f} ms)"


def evaluate(results: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """PASS/FAIL against the targets; a check whose input is missing is SKIP."""
    peers = results["peers"]
    checks: list[tuple[str, Any, str, str]] = []

    ratio = _ratio(peers, "otel")
    checks.append(("tracehouse / otel us/call", ratio, f"<= {TARGET_RATIO}",
                   "SKIP" if ratio is None else ("PASS" if ratio <= TARGET_RATIO else "FAIL")))  # fmt: skip

    th = peers.get("tracehouse", {})
    if "dropped" in th and th["dropped"] is not None:
        lost = th["dropped"] + th.get("sink_dropped", 0)
        checks.append(("tracehouse spans dropped", lost, "0", "PASS" if lost == 0 and th["flush_ok"] else "FAIL"))
    else:
        checks.append(("tracehouse spans dropped", "n/a", "0", "SKIP"))

    disabled = peers.get("tracehouse-disabled", {}).get("us_per_call")
    checks.append(("tracehouse disabled us/call", disabled, f"< {TARGET_DISABLED_US}",
                   "SKIP" if disabled is None else ("PASS" if disabled < TARGET_DISABLED_US else "FAIL")))  # fmt: skip

    imp = results["import"].get("median_ms")
    checks.append(("import tracehouse ms", imp, f"<= {TARGET_IMPORT_MS:.0f}",
                   "SKIP" if imp is None else ("PASS" if imp <= TARGET_IMPORT_MS else "FAIL")))  # fmt: skip
    return checks + payload_checks(results.get("payloads"))
