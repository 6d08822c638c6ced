"""The runs of an artifact's lineage (`logged_by()`, `used_by()`): small read-only run views.

W&B returns public-API Run objects there. A view here has `id`, `name`, `project`, `state`,
`config` and `summary`, read from the store on first use. Earlier versions returned
run ids, so a view compares equal to (and hashes like) its id and `str(view)` is the id: code
written as `artifact.used_by() == [run.id]` keeps working.

(`tracehouse.reads.api_run.Run` is not reused: `tracehouse.reads.api` imports this package, and
the layout allows no import circles.)
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

from tracehouse._errors import NotFoundError
from tracehouse.tracking.artifacts.reads import read_named


class LineageRun:
    """A stored run that logged or used an artifact version (read-only)."""

    def __init__(self, project: str, run_id: str) -> None:
        self.project, self.id = project, run_id
        self._row: Optional[dict[str, Any]] = None

    def _load(self) -> dict[str, Any]:
        if self._row is None:
            frame = read_named("run", self.project, {"r": self.id})
            if frame.empty:
                raise NotFoundError(f"run {self.id!r} is not in project {self.project!r} (yet?)")
            self._row = dict(frame.iloc[0])
        return self._row

    @property
    def name(self) -> str:
        return str(self._load()["name"])

    @property
    def state(self) -> str:
        return str(self._load()["state"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(orjson.loads(self._load()["config"] or "{}"))

    @property
    def summary(self) -> dict[str, Any]:
        return dict(orjson.loads(self._load()["summary"] or "{}"))

    @property
    def path(self) -> list[str]:
        return ["", self.project, self.id]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineageRun):
            return (self.project, self.id) == (other.project, other.id)
        if isinstance(other, str):
            return self.id == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id}>"
