"""A report as one static HTML file: its styles, the vendored uPlot, the chart script and every chart's data
inline, so it opens offline and loads nothing from anywhere (no `src=` or `href=` to a URL, no links back
to the collector). Without JavaScript its charts are the tables of their values.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from tracehouse.collector.ui.render import html

_STATIC = Path(__file__).with_name("static")
_SLUG = re.compile(r"[^a-z0-9]+")


def _inline(text: str) -> str:
    """Script or style text safe inside its element (nothing can close it early), without URLs."""
    text = re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)
    return re.sub(r"https?://", "", text)


@lru_cache(maxsize=1)
def assets() -> dict[str, Any]:
    """The inlined files: uPlot's CSS and script, the pages' chart script."""
    names = {"uplot_css": "vendor/uPlot.min.css", "uplot_js": "vendor/uPlot.iife.min.js", "charts_js": "charts.js"}
    return {key: _inline((_STATIC / name).read_text(encoding="utf-8")) for key, name in names.items()}


def filename(report: dict[str, Any]) -> str:
    """The exported file's name: `report-<title as a slug>-<id>.html` (ASCII only)."""
    slug = _SLUG.sub("-", report["title"].lower()).strip("-")[:60] or "report"
    return f"report-{slug}-{report['report_id']}.html"


def export_html(report: dict[str, Any], blocks: list[str]) -> str:
    """The whole file."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return bytes(html("reports_export.html", report=report, blocks=blocks, exported_at=when, **assets()).body).decode()


__all__ = ["assets", "export_html", "filename"]
