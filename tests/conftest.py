"""Shared fixtures.

chDB serves one data directory per process for the process's whole life, so the whole session
shares one embedded store directory and each test gets its own ClickHouse database in it (and its
own spool directory). Tests that need a store of their own run in a subprocess.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

os.environ["TRACEHOUSE_RAISE_INTERNAL_ERRORS"] = "1"  # internal bugs surface in our tests
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="tracehouse-tests-"))
# Registered before tracehouse is imported, so it runs after tracehouse's own exit hook (LIFO).
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ["TRACEHOUSE_DIR"] = str(_SESSION_DIR / "default-data")  # never write to ~/.tracehouse
for _name in (
    "TRACEHOUSE_PROJECT",
    "TRACEHOUSE_ENDPOINT",
    "TRACEHOUSE_DISABLED",
    "TRACEHOUSE_CLICKHOUSE_URL",
    "TRACEHOUSE_SILENT",
    "WANDB_SILENT",
):
    os.environ.pop(_name, None)

import tracehouse as th  # noqa: E402
from tracehouse.spans.runtime import runtime  # noqa: E402
from tracehouse.testing import CapturedSpans  # noqa: E402

SESSION_STORE_URL = f"chdb://{_SESSION_DIR / 'store'}"
_counter = itertools.count()
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def th_env(tmp_path: Path) -> Iterator[th.Settings]:
    """tracehouse configured on a fresh spool dir and a fresh database of the session's store."""
    settings = th.configure(
        project="test",
        data_dir=str(tmp_path / "data"),
        clickhouse_url=SESSION_STORE_URL,
        database=f"t{os.getpid()}_{next(_counter)}",
        service_name="tests",
    )
    yield settings
    runtime.flush(5)


@pytest.fixture
def spans(th_env: th.Settings, tracehouse_spans: CapturedSpans) -> CapturedSpans:
    """Spans finished during the test, on a freshly configured tracehouse."""
    return tracehouse_spans


def reconfigure(env: th.Settings, **options: Any) -> th.Settings:
    """Configure again on the fixture's store and spool, changing only `options`."""
    base = {
        "project": env.project,
        "data_dir": env.data_dir,
        "clickhouse_url": env.clickhouse_url,
        "database": env.database,
        "service_name": env.service_name,
    }
    return th.configure(**{**base, **options})


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 120, clean: bool = False) -> Any:
    """Run `code` in a fresh interpreter (tracehouse importable); return the CompletedProcess.

    `clean` drops the suite's TRACEHOUSE_* variables first, so the child sees only `env`.
    """
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if not (clean and k.startswith("TRACEHOUSE_"))}
    full_env = {**inherited, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO)
    )


def collector_client(app: Any, **options: Any) -> Any:
    """A TestClient for a collector app, addressed as a browser on this machine would (Host 127.0.0.1)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1:4318", **options)


def assert_no_current_span() -> None:
    """The context holds no span: th.current_span() is the no-op span."""
    current = th.current_span()
    assert isinstance(current, th.NoopSpan)
    assert not current.is_recording()
