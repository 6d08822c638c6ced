"""The embedded engine hands freed memory back after writes (collector/store/memory.py)."""

from __future__ import annotations

import json
from typing import Any

from conftest import run_python

from tracehouse.collector.store.memory import MemoryReturner

_WRITE_AND_MEASURE = """
import json, sys, tempfile
from tracehouse.collector.store import memory
from tracehouse.collector.store.store import Store

memory.embedded_memory.interval = {interval}
store = Store("chdb://" + tempfile.mkdtemp())
store.command("CREATE TABLE wide (a String, b String, n UInt64) ENGINE = MergeTree ORDER BY n")

def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) / 1024

for batch in range(12):
    rows = range(batch * 20000, (batch + 1) * 20000)
    store.insert("wide", {{"a": ["x" * 1500 + str(n) for n in rows], "b": ["y" * 500 for _ in rows], "n": list(rows)}})
store.insert("wide", {{"a": ["last"], "b": [""], "n": [0]}})  # one small write after the big ones
print(json.dumps({{"anon_mb": anon_mb(), "purges": memory.embedded_memory.purges}}))
"""


def _run(interval: float) -> dict[str, Any]:
    result = run_python(_WRITE_AND_MEASURE.format(interval=interval), timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_writes_on_the_embedded_store_return_freed_memory() -> None:
    kept = _run(interval=1e9)  # the first write purges (nothing freed yet), then never again
    returned = _run(interval=0.0)
    assert kept["purges"] == 1
    assert returned["purges"] == 14  # the CREATE and every insert
    # 12 inserts of ~40 MB each: without purging the allocator keeps hundreds of MB of freed pages
    assert returned["anon_mb"] < kept["anon_mb"] * 0.8, (returned, kept)  # measured: 524 vs 792 MB


class _EngineWithoutJemalloc:
    """A client whose engine refuses the statement (a build without jemalloc, or a server)."""

    def __init__(self) -> None:
        self.calls = 0

    def command(self, sql: str) -> None:
        self.calls += 1
        raise RuntimeError("Code: 1. DB::Exception: SYSTEM JEMALLOC PURGE is not supported")


def test_a_refused_purge_is_never_an_error_and_is_not_retried() -> None:
    returner = MemoryReturner(interval=0.0)
    client = _EngineWithoutJemalloc()
    returner.after_write(client)  # type: ignore[arg-type]
    returner.after_write(client)  # type: ignore[arg-type]
    assert client.calls == 1
    assert returner.purges == 0


def test_purges_are_throttled_to_one_per_interval() -> None:
    class Counting:
        calls = 0

        def command(self, sql: str) -> None:
            assert sql == "SYSTEM JEMALLOC PURGE"
            Counting.calls += 1

    returner = MemoryReturner(interval=3600.0)
    for _ in range(50):
        returner.after_write(Counting())  # type: ignore[arg-type]
    assert Counting.calls == 1
