"""Reports from Python, as W&B's reports API makes them: a saved page of markdown and panels.

    report = th.Report("LR sweep, week 12", description="what the sweep found")
    report.markdown("## Loss\\nThe lowest learning rates win.")
    report.run_chart("loss", filter={"group": "lr-sweep"}, x="step")
    report.runs_table(filter={"group": "lr-sweep"}, columns=["name", "config.lr", "summary.loss"], sort="summary.loss")
    report.latency_table(by="model", range="7d")
    report.save()          # a new report, or a new version of this one
    report.url             # /reports/<id> on the collector (`tracehouse ui` / `serve`)

`Report.load(id)` opens a saved one (`version=` an earlier one), `th.reports()` lists the project's.
The same store, checks and history as the UI's editor (collector/ui/reports_store.py): a save made from
a version someone else has replaced since raises ConflictError and writes nothing.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from tracehouse.collector.ui.reports_blocks import check_block, check_report

if TYPE_CHECKING:
    import pandas as pd


def _author() -> str:
    try:
        return f"{getpass.getuser()} (python)"
    except (KeyError, OSError):  # no user name (a container's numeric uid)
        return "python"


def _reports(action: str, **args: Any) -> Any:
    from tracehouse.reads.reading import on_store

    return on_store(lambda access: access.reports(action, args))


def _time(value: Any) -> Optional[datetime]:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value if isinstance(value, datetime) else None


class Report:
    """A report: title, description and blocks (markdown and panels), saved in the store with a stable URL."""

    def __init__(self, title: str, description: str = "", blocks: Optional[list[dict[str, Any]]] = None,
                 project: Optional[str] = None) -> None:  # fmt: skip
        from tracehouse.spans.runtime import runtime

        self.project = project if project is not None else runtime.settings.project
        self.title, self.description = title, description
        self.blocks: list[dict[str, Any]] = [check_block(b, f"blocks[{i}]") for i, b in enumerate(blocks or [])]
        self.id: Optional[str] = None
        self.version: Optional[int] = None
        self.author = ""
        self.updated_at: Optional[datetime] = None

    def __repr__(self) -> str:
        return f"Report({self.title!r}, id={self.id!r}, version={self.version!r}, blocks={len(self.blocks)})"

    # --- blocks -----------------------------------------------------------------------------------
    def add(self, block: dict[str, Any]) -> Report:
        """Append a block as the JSON API takes it (`{"type": "markdown", "text": ...}` or a panel);
        ConfigError naming what is wrong."""
        self.blocks.append(check_block(block, f"blocks[{len(self.blocks)}]"))
        return self

    def markdown(self, text: str) -> Report:
        """A block of notes (CommonMark; HTML is shown as text)."""
        return self.add({"type": "markdown", "text": text})

    def _panel(self, panel: str, settings: dict[str, Any]) -> Report:
        return self.add({"type": "panel", "panel": panel, "settings": {k: v for k, v in settings.items() if v}})

    def run_chart(self, metric: str, runs: Optional[list[str]] = None, filter: Optional[dict[str, Any]] = None,
                  x: str = "step", title: str = "") -> Report:  # fmt: skip
        """A metric of runs overlaid: `runs` by id or a W&B run `filter` (neither: the newest 20); x is
        `step`, `relative` or `time`."""
        return self._panel("run_chart", {"metric": metric, "runs": runs, "filter": filter, "x": x, "title": title})

    def latency_table(self, by: str = "name", range: str = "24h", start: str = "", end: str = "",
                      title: str = "") -> Report:  # fmt: skip
        """Calls, p50 / p95, errors, tokens and cost per span name, model, kind or service over a window."""
        return self._panel("latency_table", {"by": by, "range": range, "start": start, "end": end, "title": title})

    def runs_table(self, filter: Optional[dict[str, Any]] = None, columns: Optional[list[str]] = None,
                   sort: str = "", desc: bool = False, limit: int = 20, title: str = "") -> Report:  # fmt: skip
        """The runs table: a W&B filter, columns (`name`, `config.lr`, `summary.loss`...), sort, rows."""
        return self._panel("runs_table", {"filter": filter, "columns": columns, "sort": sort, "desc": desc,
                                          "limit": limit, "title": title})  # fmt: skip

    def trace_link(self, trace_id: str, title: str = "") -> Report:
        """A card of one trace (root name, duration, status, tokens, cost) linked to its page."""
        return self._panel("trace_link", {"trace_id": trace_id, "title": title})

    def eval_summary(self, run_id: str, title: str = "") -> Report:
        """An evaluation's aggregate scores, linked to its page."""
        return self._panel("eval_summary", {"run_id": run_id, "title": title})

    # --- the store --------------------------------------------------------------------------------
    @property
    def url(self) -> Optional[str]:
        """The report's path on the collector (None until saved)."""
        return f"/reports/{self.id}" if self.id else None

    def body(self) -> dict[str, Any]:
        """The report as the JSON API takes it (checked: ConfigError naming a bad field)."""
        return check_report({"title": self.title, "description": self.description, "blocks": self.blocks})

    def save(self) -> Report:
        """Store the report: a new one, or a new version of this one (made from the version it holds:
        ConflictError when someone saved another since; `load` it again and redo the change)."""
        body = self.body()
        if self.id is None:
            saved = _reports("create", project=self.project, body=body, author=_author())
        else:
            saved = _reports("update", project=self.project, report_id=self.id, body=body, author=_author(),
                             base_version=self.version)  # fmt: skip
        self._take(saved)
        return self

    def delete(self) -> None:
        """Delete the report (its versions stay readable in the history)."""
        if self.id is not None:
            _reports("delete", project=self.project, report_id=self.id, author=_author())

    def versions(self) -> list[dict[str, Any]]:
        """Every saved version, newest first: version, title, author, when, whether a delete."""
        if self.id is None:
            return []
        found: list[dict[str, Any]] = _reports("versions", project=self.project, report_id=self.id)
        return found

    @classmethod
    def load(cls, report_id: str, version: Optional[int] = None, project: Optional[str] = None) -> Report:
        """A saved report (its latest version, or `version`); NotFoundError naming an unknown id."""
        report = cls("", project=project)
        report._take(_reports("get", project=report.project, report_id=report_id, version=version))
        return report

    def _take(self, saved: dict[str, Any]) -> None:
        self.id, self.version = str(saved["report_id"]), int(saved["version"])
        self.project = str(saved.get("project") or self.project)
        self.title, self.description = str(saved["title"]), str(saved.get("description") or "")
        self.blocks = list(saved.get("blocks") or [])
        self.author, self.updated_at = str(saved.get("author") or ""), _time(saved.get("updated_at"))


def reports(project: Optional[str] = None) -> pd.DataFrame:
    """The project's reports, most recently edited first: report_id, title, description, author, times,
    version (`Report.load(report_id)` opens one)."""
    import pandas as pd

    from tracehouse.spans.runtime import runtime

    found = _reports("list", project=project if project is not None else runtime.settings.project)
    columns = ["report_id", "title", "description", "author", "created_at", "updated_at", "version"]
    frame: pd.DataFrame = pd.DataFrame([{c: row.get(c) for c in columns} for row in found], columns=columns)
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


__all__ = ["Report", "reports"]
