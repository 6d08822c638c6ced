"""`th.traces` / `th.latency` take `start` and `end` beside `since` (the store's side is in
test_time_windows.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from ui_seed import _span

import tracehouse as th
from tracehouse._errors import ConfigError

OLD = datetime(2025, 6, 1, 14, 0, tzinfo=timezone.utc)
OLD_MS = int(OLD.timestamp() * 1000)
HOUR_MS = 3_600_000


def test_python_reads_take_start_and_end(th_env: th.Settings) -> None:
    from tracehouse.spans.runtime import runtime

    start_ns = OLD_MS * 10**6
    for i in range(3):  # 14:00, 14:20, 14:40
        record = _span(200 + i, 2000 + i, 0, "py-old", "chain", start_ns + i * 20 * 60 * 10**9, 10.0)
        runtime.sink().submit({**record, "project": th_env.project})
    runtime.flush(10)
    inside = th.traces(start=OLD, end=OLD + timedelta(minutes=30), limit=50)
    assert list(inside["root_name"]) == ["py-old", "py-old"]
    assert len(th.traces(start=str(OLD_MS), end=OLD_MS + HOUR_MS)) == 3
    assert len(th.traces(since=None, limit=50)) == 3  # all time
    assert len(th.traces()) == 0  # the default: the last 24h
    assert th.latency(start="2025-06-01T14:00Z", end="2025-06-01T15:00Z")["count"].tolist() == [3]
    with pytest.raises(ConfigError, match="since: give either since"):
        th.traces(since="1h", start=OLD)
    with pytest.raises(ConfigError, match="end: the end"):
        th.latency(start=OLD, end=OLD - timedelta(seconds=1))
