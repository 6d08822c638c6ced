"""The report bench/ui.py times: markdown and one panel of each kind over the seeded store, created through
`POST /api/v1/reports`; its view, export and JSON pages."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Optional
from urllib.parse import quote


def create_report(url: str, project: str, trace_id: Optional[str], run_ids: list[Any],
                  eval_run_id: Optional[str] = None) -> str:  # fmt: skip
    """A report of every panel kind (the chart over the seeded runs); its id."""
    runs = [str(r) for r in run_ids if r][:5]
    blocks: list[dict[str, Any]] = [
        {"type": "markdown", "text": "# Bench report\n\nEvery panel kind over the seeded store."},
        {"type": "panel", "panel": "run_chart", "settings": {"runs": runs, "metric": "loss"}},
        {"type": "panel", "panel": "run_chart", "settings": {"filter": {"state": "finished"}, "metric": "loss",
                                                             "x": "relative"}},
        {"type": "panel", "panel": "latency_table", "settings": {"by": "name", "range": "24h"}},
        {"type": "panel", "panel": "latency_table", "settings": {"by": "model", "range": "24h"}},
        {"type": "panel", "panel": "runs_table", "settings": {"limit": 50}},
        {"type": "panel", "panel": "trace_link", "settings": {"trace_id": trace_id or ""}},
        {"type": "panel", "panel": "eval_summary", "settings": {"run_id": eval_run_id or (runs[0] if runs else "")}},
    ]  # fmt: skip
    body = json.dumps({"project": project, "title": "Bench report", "blocks": blocks}).encode()
    request = urllib.request.Request(f"{url}/api/v1/reports", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return str(json.loads(answer.read())["report_id"])


def report_pages(project: str, report_id: str) -> list[dict[str, Any]]:
    """The report pages bench/ui.py times against the same 1 s target as the list pages."""
    listed = f"?project={quote(project)}"
    return [
        {"label": "/reports", "page": f"/reports{listed}", "json": f"/api/v1/reports{listed}", "list": True},
        {"label": "/reports/{id}", "page": f"/reports/{report_id}", "json": f"/api/v1/reports/{report_id}",
         "list": True},
        {"label": "/reports/{id}/export", "page": f"/reports/{report_id}/export",
         "json": f"/api/v1/reports/{report_id}/versions", "list": True},
    ]  # fmt: skip


__all__ = ["create_report", "report_pages"]
