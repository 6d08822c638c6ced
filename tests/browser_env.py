"""What the headless-Chromium tests share: Debian's chromium, its flags, where screenshots go, playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "test-artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip

Page: Any
sync_playwright: Any
try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover
    Page, sync_playwright = Any, None

HAVE_BROWSER = sync_playwright is not None and Path(CHROMIUM).exists()


def require_browser() -> None:
    """Skip the calling test module without Chromium and playwright (in CI, fail instead)."""
    if HAVE_BROWSER:
        return
    if os.environ.get("CI"):
        raise RuntimeError("browser tests need Debian's chromium and playwright (.ci/run installs both)")
    pytest.skip("needs /usr/bin/chromium and playwright", allow_module_level=True)
