"""The targets of bench/ingest.py, their PASS/FAIL/SKIP verdicts and the printed report."""

from __future__ import annotations

from typing import Any, Optional

from _common import fmt_number, render_table
from _ingest_grpc import grpc_checks, grpc_rows
from _ingest_paired import paired_detail

TARGET_COLLECTOR_SPANS_PER_S = 30_000.0
TARGET_SENDER_RATIO = 5.0
TARGET_COLLECTOR_PEAK_RSS_MB = 500.0


def _sender_ratio(results: dict[str, Any], other: str = "stock") -> Optional[float]:
    """The SDK sender's delivered spans/s over the `other` part's; None when either is missing."""
    sdk, stock = results.get("sdk") or {}, results.get(other) or {}
    mine, theirs = sdk.get("spans_per_second"), stock.get("spans_per_second")
    return mine / theirs if mine and theirs else None


def evaluate(results: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """PASS/FAIL per target; SKIP when its part did not run."""
    checks: list[tuple[str, Any, str, str]] = []

    def check(name: str, value: Any, target: str, ok: Optional[bool]) -> None:
        checks.append((name, "n/a" if value is None else value, target,
                       "SKIP" if ok is None else ("PASS" if ok else "FAIL")))  # fmt: skip

    col = results.get("collector")
    if col is not None and "skipped" not in col:
        rate = col["spans_per_second"]
        check("collector OTLP ingest spans/s", rate, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}",
              rate is not None and rate >= TARGET_COLLECTOR_SPANS_PER_S)  # fmt: skip
        check("collector spans lost", col["dropped"], "0", col["dropped"] == 0 and not col["rejected_spans"])
    elif "collector" in results["parts"]:
        check("collector OTLP ingest spans/s", None, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}", None)
    grpc_checks(results, check)
    _check_mixed(results, check)
    rss = results.get("collector_peak_rss_mb")
    check("collector peak RSS MB", rss, f"<= {TARGET_COLLECTOR_PEAK_RSS_MB:.0f}",
          None if rss is None else rss <= TARGET_COLLECTOR_PEAK_RSS_MB)  # fmt: skip
    ratio = _sender_ratio(results)
    if "sdk" in results["parts"] and "stock" in results["parts"]:
        check("sdk sender / stock exporter spans/s", ratio, f">= {TARGET_SENDER_RATIO:.0f}",
              None if ratio is None else ratio >= TARGET_SENDER_RATIO)  # fmt: skip
    sdk = results.get("sdk")
    if sdk is not None:
        lost = None if "skipped" in sdk else sdk["dropped"] + sdk.get("sink_dropped", 0)
        check("sdk sender spans dropped", lost, "0", None if lost is None else lost == 0)
    stop = results.get("collector_stop") or {}
    code = stop.get("exit_code")
    check("collector exit code on SIGTERM", code, "0", None if not stop else code == 0)
    return checks


def _check_mixed(results: dict[str, Any], check: Any) -> None:
    mixed = results.get("mixed")
    if mixed is None:
        return
    if "skipped" in mixed:
        check("mixed load: ingest spans/s", None, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}", None)
        return
    rate = mixed["spans_per_second"]
    check("mixed load: ingest spans/s", rate, f">= {TARGET_COLLECTOR_SPANS_PER_S:,.0f}",
          rate is not None and rate >= TARGET_COLLECTOR_SPANS_PER_S)  # fmt: skip
    check("mixed load: spans lost", mixed["dropped"], "0", mixed["dropped"] == 0)
    check("mixed load: reads failed", mixed["read_failures"], "0", mixed["read_failures"] == 0 and mixed["reads"] > 0)
    check("mixed load: read p95 ms", mixed["read_ms_p95"], "reported", True)


def _mixed_detail(mixed: dict[str, Any]) -> list[str]:
    by_path = ", ".join(f"{path} {fmt_number(ms, 0)}" for path, ms in mixed["read_ms_p95_by_path"].items())
    out = [
        f"mixed load: {mixed['stored']:,} of {mixed['spans']:,} spans stored in {mixed['seconds']:.2f} s = "
        f"{fmt_number(mixed['spans_per_second'], 0)} spans/s (posting {mixed['send_seconds']:.2f} s, 503s "
        f"{mixed['status_503']}, request p95 {fmt_number(mixed['request_ms_p95'], 1)} ms) while the reader answered "
        f"{mixed['reads']:,} dashboard reads: p50 {fmt_number(mixed['read_ms_p50'], 1)} ms, p95 "
        f"{fmt_number(mixed['read_ms_p95'], 1)} ms, max {fmt_number(mixed['read_ms_max'], 1)} ms, "
        f"{mixed['read_failures']} failed",
        f"  read p95 ms by endpoint: {by_path}",
    ]
    cpu = mixed.get("collector_cpu_seconds")
    if cpu is not None and mixed["seconds"]:
        out.append(f"  collector CPU: {cpu / mixed['seconds']:.2f} cores busy")
    out.extend(f"  read error: {sample}" for sample in mixed["read_failure_samples"])
    return out


def _part_rows(results: dict[str, Any], n: int, col: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    if col is not None:
        if "skipped" in col:
            rows.append(["collector OTLP/HTTP", *["-"] * 7, f"skipped: {col['skipped']}"])
        else:
            note = (f"{col['bodies']} bodies of {col['batch']} spans ({col['body_bytes_mean'] / 1024:.0f} KiB), "
                    f"{col['clients']} keep-alive client threads")  # fmt: skip
            rows.append(["collector OTLP/HTTP", f"{n:,}", f"{col['stored']:,}", f"{col['dropped']:,}",
                         fmt_number(col["seconds"], 2), fmt_number(col["spans_per_second"], 0),
                         f"{col['status_503']:,}",
                         fmt_number(col.get("collector_peak_rss_mb", results.get("collector_peak_rss_mb")), 1),
                         note])  # fmt: skip
    rows.extend(grpc_rows(results, n, fmt_number))
    for key, label in (("sdk", "tracehouse SDK sender"), ("stock", "stock OTLP/HTTP exporter"),
                       ("stock-discard", "(ref) stock -> discard")):  # fmt: skip
        child = results.get(key)
        if child is None:
            continue
        if "skipped" in child:
            rows.append([label, *["-"] * 7, f"skipped: {child['skipped']}"])
            continue
        note = f"loop {child['loop_seconds']:.2f} s, flush {child['flush_seconds']:.2f} s"
        if key == "sdk" and child.get("sink_dropped"):
            note += f", spool dropped {child['sink_dropped']:,}"
        if key == "stock-discard":
            note += ", received by a discard server, not stored; not a target"
        if key.startswith("stock") and child.get("tracehouse_imported"):
            note += ", WARNING: tracehouse was imported"
        if child.get("note"):
            note += f"; {child['note']}"
        rows.append([label, f"{n:,}", f"{child['stored']:,}", f"{child['dropped']:,}",
                     fmt_number(child["seconds"], 2), fmt_number(child["spans_per_second"], 0), "-",
                     fmt_number(child.get("peak_rss_mb"), 1), note])  # fmt: skip
    return rows


def _collector_detail(results: dict[str, Any], col: dict[str, Any]) -> list[str]:
    out: list[str] = []
    out.append(
        f"collector detail: posting took {col['send_seconds']:.2f} s, {col['requests']:,} requests "
        f"(503: {col['status_503']}, other errors: {col['other_errors']}, spans rejected: "
        f"{col['rejected_spans']}); request latency p50 {fmt_number(col['request_ms_p50'], 1)} ms, "
        f"p95 {fmt_number(col['request_ms_p95'], 1)} ms, max {fmt_number(col['request_ms_max'], 1)} ms"
    )
    share = col["insert_seconds"] / col["seconds"] * 100 if col["seconds"] else 0.0
    out.append(
        f"  writer: {col['inserts']:,} inserts, {fmt_number(col['rows_per_insert'], 0)} rows each on average, "
        f"{col['insert_seconds']:.2f} s inside inserts ({share:.0f}% of the wall time)"
    )
    cpu = col.get("collector_cpu_seconds")
    if cpu is not None and col["seconds"]:
        out.append(
            f"  collector CPU: {cpu:.2f} s over {col['seconds']:.2f} s of wall time = {cpu / col['seconds']:.2f} "
            f"of {results['cpus']} cores busy, {cpu / col['spans'] * 1e6:.0f} us of CPU per span"
        )
    for sample in col["error_samples"]:
        out.append(f"  error: {sample}")
    return out


def report(results: dict[str, Any]) -> str:
    """The printed report: one row per part, the collector's detail, the sender ratios, then the checks."""
    n = results["spans"]
    out = [
        f"ingest: {n:,} spans per part, one `tracehouse serve` (embedded chDB, fresh data dir) on "
        f"{results['cpus']} CPUs; spans/s = stored / (first request or call -> all rows queryable)"
    ]
    col = results.get("collector")
    rows = _part_rows(results, n, col)
    headers = ["part", "spans", "stored", "dropped", "seconds", "spans/s", "503s", "peak RSS MB", "note"]
    out.append(render_table(headers, rows, left=(0, len(headers) - 1)))

    if col is not None and "skipped" not in col:
        out += ["", *_collector_detail(results, col)]
    grpc = results.get("grpc")
    if grpc is not None and "skipped" not in grpc:
        out += paired_detail(grpc)
    mixed = results.get("mixed")
    if mixed is not None and "skipped" not in mixed:
        out += _mixed_detail(mixed)
    elif mixed is not None:
        out.append(f"mixed load: skipped: {mixed['skipped']}")
    out.append(
        f"collector: ready in {fmt_number(results.get('collector_start_seconds'), 2)} s, peak RSS "
        f"{fmt_number(results.get('collector_peak_rss_mb'), 1)} MB, SIGTERM -> exit code "
        f"{(results.get('collector_stop') or {}).get('exit_code')} in "
        f"{fmt_number((results.get('collector_stop') or {}).get('stop_seconds'), 2)} s; load generator peak RSS "
        f"{fmt_number(results.get('load_generator_peak_rss_mb'), 1)} MB; bodies built in "
        f"{fmt_number(results.get('build_seconds_collector'), 1)} s (not timed)"
    )
    for part in ("collector", "mixed"):
        memory = (results.get(part) or {}).get("collector_memory")
        if memory:
            out.append(
                f"collector memory during {part}: peak private (RssAnon) {memory['peak_private_mb']:.0f} MB + peak "
                f"file-backed (RssFile, mostly chDB's library code) {memory['peak_file_mb']:.0f} MB; at ready "
                f"{memory['ready_private_mb']:.0f} + {memory['ready_file_mb']:.0f} MB"
            )
    ratio = _sender_ratio(results)
    if ratio is not None:
        out.append(f"sdk sender / stock exporter: {ratio:.2f}x (delivered spans/s)")
    reference = _sender_ratio(results, "stock-discard")
    if reference is not None:
        out.append(
            f"sdk sender / stock exporter at its own ceiling (discard server): {reference:.2f}x -- what the ratio "
            "would be if the collector answered the stock exporter instantly (information, not a target)"
        )

    out.append("")
    checks = [[name, fmt_number(value, 2) if isinstance(value, float) else value, target, verdict]
              for name, value, target, verdict in results["checks"]]  # fmt: skip
    out.append(render_table(["check", "value", "target", "result"], checks))
    return "\n".join(out)
