"""The collector that bench/ingest.py measures: ``tracehouse serve`` in a subprocess, and what is read back from it.

Counts go through the collector's own ``POST /api/v1/query``, so "stored" always means "queryable by a user";
insert counters come from its ``/metrics``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from _common import free_port, proc_status_mb

POLL_INTERVAL = 0.1
READY_TIMEOUT = 90.0


def count_spans(url: str, project: str, timeout: float = 30.0) -> int:
    """`SELECT count() FROM spans WHERE project = ...` through the collector's SQL endpoint."""
    body = json.dumps(
        {"sql": "SELECT count() FROM spans WHERE project = {p:String}", "parameters": {"p": project}}
    ).encode()
    request = urllib.request.Request(
        url + "/api/v1/query", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return int(json.loads(answer.read())["rows"][0][0])


def wait_for_count(
    url: str, project: str, expected: int, quiet_seconds: float, started: float, limit: float = 600.0
) -> dict[str, Any]:
    """Poll the count of `project` until it is `expected`, or has not grown for `quiet_seconds`.

    Returns the final count and `seconds`: from `started` (a perf_counter) to the first poll that saw
    the final count.
    """
    last, last_change = -1, time.perf_counter()
    seen_at = last_change
    polls = errors = 0
    while True:
        try:
            current = count_spans(url, project)
            polls += 1
        except (OSError, ValueError, KeyError, IndexError):
            errors += 1
            current = last
        now = time.perf_counter()
        if current != last:
            last, last_change, seen_at = current, now, now
        if last >= expected or now - last_change >= quiet_seconds or now - started >= limit:
            break
        time.sleep(POLL_INTERVAL)
    return {"stored": max(last, 0), "seconds": seen_at - started, "polls": polls, "poll_errors": errors}


def collector_metrics(url: str) -> dict[str, float]:
    """The collector's Prometheus counters as {name: value} (empty when unreadable)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


class MemorySampler(threading.Thread):
    """Samples a process's private (RssAnon) and file-backed (RssFile) resident memory every 50 ms.

    VmHWM is their peak sum; the split says how much of it is the engine's library code pages (file-backed,
    shared with the page cache and dropped first under pressure) and how much the process allocated.
    """

    def __init__(self) -> None:
        super().__init__(name="collector-memory", daemon=True)
        self.pid = 0
        self.at_ready: dict[str, float] = {}
        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}

    def start(self, pid: int = 0) -> None:  # type: ignore[override]
        """Start sampling process `pid` (its memory now is the `at_ready` figure)."""
        self.pid = pid
        self.at_ready = {field: proc_status_mb(pid, field) or 0.0 for field in self.peaks}
        super().start()

    def reset(self) -> None:
        """Peaks from now on (a part's own, like its VmHWM reset)."""
        self.peaks = {field: 0.0 for field in self.peaks}

    def run(self) -> None:
        while True:
            for field in self.peaks:
                value = proc_status_mb(self.pid, field)
                if value is None:
                    return
                self.peaks[field] = max(self.peaks[field], value)
            time.sleep(0.05)

    def split(self) -> dict[str, float]:
        """Peak private and file-backed MB, and both at ready."""
        return {"peak_private_mb": self.peaks["RssAnon"], "peak_file_mb": self.peaks["RssFile"],
                "ready_private_mb": self.at_ready.get("RssAnon", 0.0),
                "ready_file_mb": self.at_ready.get("RssFile", 0.0)}  # fmt: skip


class CollectorProcess:
    """`python -m tracehouse serve` on a free loopback port with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.grpc_port = free_port()  # OTLP/gRPC (bench/_ingest_grpc.py)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "collector.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.start_seconds: Optional[float] = None
        self.memory = MemorySampler()

    def start(self) -> None:
        """Start the server (environment without TRACEHOUSE_* variables; output to collector.log)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        with open(self.log_path, "wb") as log:  # a file, not a pipe: a chatty collector must never block
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tracehouse", "serve", "--port", str(self.port), "--grpc-port",
                 str(self.grpc_port), "--data-dir", str(self.data_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self) -> None:
        """Block until /readyz answers 200; raises with the log tail if it exits or is not ready in time."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the collector exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        self.start_seconds = time.perf_counter() - self._started
                        self.memory.start(self.process.pid)
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the collector was not ready after {READY_TIMEOUT:.0f} s: {self.log_tail()}")

    def peak_rss_mb(self) -> Optional[float]:
        """The collector's peak RSS (VmHWM) so far; None before start or where unreadable."""
        return None if self.process is None else proc_status_mb(self.process.pid, "VmHWM")

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM, then wait; the exit code and how long the drain took."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: Optional[int] = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            code = None
        return {"exit_code": code, "stop_seconds": time.perf_counter() - started}

    def kill(self) -> None:
        """SIGKILL if still running (the cleanup path; `stop` is the measured one)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 15) -> str:
        """The last `lines` lines of the collector's output ("" when unreadable)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])
