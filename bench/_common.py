"""Helpers shared by the benchmarks: child-process plumbing, a discard OTLP/HTTP server, report rendering.

Standard library only, so a benchmark child can import it before deciding which peer to load.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

RESULT_MARKER = "BENCH_RESULT "


def emit(result: dict[str, Any]) -> None:
    """Print a child's result as one marked JSON line on stdout (the parent looks for the marker)."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def own_peak_rss_mb() -> Optional[float]:
    """This process's peak RSS from VmHWM.

    Not `ru_maxrss`: Linux carries it over fork and exec, so a child started by a bigger parent would
    report the parent's peak instead of its own.
    """
    return proc_status_mb(os.getpid(), "VmHWM") or peak_rss_mb()


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(values))


def run_child(argv: Sequence[str], env: Optional[dict[str, str]] = None, timeout: float = 900.0) -> dict[str, Any]:
    """Run `python <argv>` in a fresh interpreter and return its marked JSON result.

    Never raises: a child that crashes, times out or prints no result gives ``{"skipped": reason}``.
    """
    child_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, env=child_env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout:.0f} s"}
    except OSError as error:
        return {"skipped": f"could not start: {error}"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            if proc.returncode != 0 and "skipped" not in result:
                result.setdefault("note", f"child exited with code {proc.returncode}")
            return result
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    reason = lines[-1].strip() if lines else f"no result (exit code {proc.returncode})"
    return {"skipped": reason[:300]}


class _DiscardHandler(BaseHTTPRequestHandler):
    """Answers every request with 200 and ``{}``; keeps POST bodies for counting after the clock stops."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector would offer
    server: DiscardServer

    def _reply(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        self.server.record(self.path, self.headers.get("Content-Encoding", ""), payload)
        self._reply()

    def do_GET(self) -> None:
        self._reply()

    def log_message(self, format: str, *args: Any) -> None:
        return


class DiscardServer(ThreadingHTTPServer):
    """A local HTTP sink on 127.0.0.1 (ephemeral port) standing in for a tracing backend.

    Bodies are only stored while the benchmark runs (decoding them would steal CPU from the code
    being measured); `decoded_bodies()` decompresses them afterwards.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _DiscardHandler)
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes_received = 0
        self.bodies: list[tuple[str, str, bytes]] = []
        self._thread = threading.Thread(target=self.serve_forever, name="discard-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> DiscardServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def record(self, path: str, encoding: str, payload: bytes) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_received += len(payload)
            self.bodies.append((path, encoding, payload))

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.bytes_received = 0
            self.bodies = []

    def decoded_bodies(self) -> list[tuple[str, bytes]]:
        """(path, decompressed body) of every POST received since the last reset."""
        with self._lock:
            bodies = list(self.bodies)
        decoded = []
        for path, encoding, payload in bodies:
            if encoding == "gzip":
                payload = gzip.decompress(payload)
            elif encoding == "deflate":
                payload = zlib.decompress(payload)
            decoded.append((path, payload))
        return decoded


def parse_choices(text: str, choices: Sequence[str], noun: str) -> list[str]:
    """The comma-separated names in `text` (blanks dropped); exits with the valid choices on an unknown one."""
    picked = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(picked) - set(choices))
    if unknown:
        raise SystemExit(f"unknown {noun}(s): {', '.join(unknown)}; choose from {', '.join(choices)}")
    return picked


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    """Python, platform, CPU count and the installed version of each of `packages`, for the results JSON."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def fmt_number(value: Optional[float], digits: int) -> str:
    """`value` with thousands separators and `digits` decimals; "-" for None."""
    return "-" if value is None else f"{value:,.{digits}f}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[int] = (0,)) -> str:
    """A plain-text table: the `left` columns (by index) left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status_mb(pid: int, field: str = "VmHWM") -> Optional[float]:
    """A memory field of /proc/<pid>/status in MiB (VmHWM = peak RSS, VmRSS = current); None where unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds so far of all threads of process `pid` (/proc/<pid>/stat); None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime in clock ticks
    except (OSError, ValueError, IndexError):
        return None


def finish(results: dict[str, Any], started: float, report: Callable[[dict[str, Any]], str], out: str) -> int:
    """The end of every benchmark: stamp the total time, print the report, write the JSON; exit code 0."""
    results["total_seconds"] = time.perf_counter() - started
    print(report(results))
    write_results(results, out)
    return 0


def write_results(results: dict[str, Any], out: str) -> None:
    """Print where the JSON goes and write it (bench/results/ is git-ignored)."""
    print(f"\n(total {results['total_seconds']:.0f} s; JSON in {out})")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
