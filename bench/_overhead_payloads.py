"""The payloads part of `trace_overhead.py`: what capturing big or odd arguments costs a call.

What the test suite checks for correctness (tests/spans/test_payloads.py, tests/spool/test_faults.py)
is timed here, where a busy machine cannot fail a build: a traced call with a 6 MB string, with a
list of 300,000 numbers, with a 5 MB string passed through, and JSON of a value nested 5,000 deep.
Each is the median of 5 calls after one warm-up, in a fresh interpreter with a temporary spool.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from _common import median

RUNS = 5
TARGETS_MS = {"6 MB string": 1000.0, "300,000-number list": 1000.0, "5 MB passthrough": 500.0,
              "5,000-deep nesting": 1000.0}  # fmt: skip


def task_payloads(data_dir: Path) -> dict[str, Any]:
    """Time each payload case (ms, median of RUNS after a warm-up)."""
    import tracehouse
    from tracehouse._json import to_json_bytes

    tracehouse.configure(data_dir=data_dir)

    @tracehouse.trace  # type: ignore[misc,untyped-decorator]
    def size(value: Any) -> int:
        return len(value)

    @tracehouse.trace(name="passthrough")  # type: ignore[misc,untyped-decorator]
    def passthrough(text: str) -> str:
        return text

    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    big_text, big_list, five_mb = "é" * (3 * 1024 * 1024), list(range(300_000)), "x" * (5 * 1024 * 1024)
    cases: dict[str, Callable[[], Any]] = {
        "6 MB string": lambda: size(big_text),
        "300,000-number list": lambda: size(big_list),
        "5 MB passthrough": lambda: passthrough(five_mb),
        "5,000-deep nesting": lambda: to_json_bytes(deep),
    }
    result: dict[str, Any] = {}
    for label, call in cases.items():
        call()
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1e3)
        result[label] = {"median_ms": median(times), "max_ms": max(times)}
    tracehouse.flush()
    return result


def payload_lines(payloads: Any) -> list[str]:
    """The report's lines for the payloads part."""
    if payloads is None:
        return []
    if "skipped" in payloads:
        return [f"payloads: skipped: {payloads['skipped']}"]
    cases = ", ".join(f"{label} {p['median_ms']:.0f} ms" for label, p in payloads.items() if isinstance(p, dict))
    return [f"payloads (median of {RUNS} traced calls): {cases}"]


def payload_checks(payloads: Any) -> list[tuple[str, Any, str, str]]:
    """PASS/FAIL per case against TARGETS_MS (SKIP when the part did not run)."""
    checks = []
    for label, target in TARGETS_MS.items():
        found = (payloads or {}).get(label)
        value = found["median_ms"] if isinstance(found, dict) else None
        verdict = "SKIP" if value is None else ("PASS" if value <= target else "FAIL")
        checks.append((f"payload {label} ms", value, f"<= {target:.0f}", verdict))
    return checks
