"""What the dataset pages show: the project's datasets, and one dataset's versions with a page of a
version's rows (and the evaluations that ran on it). Datasets are stored by `th.evals.Dataset.push`:
a version per content digest in `datasets`, the rows once per digest in `dataset_rows`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store.queries import check_project
from tracehouse.collector.ui.evals_data import PAGE_ROWS

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

_DATASETS = (
    "SELECT name, count() AS versions, max(version) AS latest, argMax(rows, version) AS rows, "
    "max(created_at) AS updated_at FROM datasets FINAL WHERE project = {p:String} GROUP BY name ORDER BY name "
    "LIMIT 1000"
)
_VERSIONS = (
    "SELECT version, digest, rows, columns, created_at FROM datasets FINAL WHERE project = {p:String} "
    "AND name = {n:String} ORDER BY version DESC"
)
_ROWS = (
    "SELECT row_index, row FROM dataset_rows FINAL WHERE project = {p:String} AND digest = {d:String} "
    "ORDER BY row_index LIMIT {n:UInt32} OFFSET {o:UInt32}"
)
_EVALS_ON = (
    "SELECT run_id, name, created_at FROM runs FINAL WHERE project = {p:String} AND job_type = 'eval' "
    "AND JSONExtractString(config, 'dataset_digest') = {d:String} ORDER BY created_at DESC LIMIT 100"
)


def dataset_list(store: Store, project: str) -> dict[str, Any]:
    """The project's datasets: name, versions, the latest version's rows, when it last changed."""
    columns, rows = store.query_rows(_DATASETS, {"p": check_project(project)})
    return {"project": project, "datasets": [dict(zip(columns, row, strict=True)) for row in rows]}


def version_number(raw: Optional[str]) -> Optional[int]:
    """`v3` or `3` as 3; None for none or "latest"; ConfigError otherwise."""
    if raw in (None, "", "latest"):
        return None
    text = str(raw)[1:] if str(raw).startswith("v") else str(raw)
    if not text.isdigit() or not text.isascii():
        raise ConfigError("version", f"expected 'latest', 'v3' or 3, got {raw!r}")
    return int(text)


def dataset_detail(store: Store, project: str, name: str, version: Optional[int], page: int) -> dict[str, Any]:
    """One dataset: its versions (newest first), and a page of the chosen version's rows (default the
    latest) with the evaluations that ran on that version."""
    columns, rows = store.query_rows(_VERSIONS, {"p": check_project(project), "n": name})
    versions = [dict(zip(columns, row, strict=True)) for row in rows]
    if not versions:
        raise NotFoundError(f"no dataset {name!r} in project {project!r}")
    chosen = versions[0] if version is None else next((v for v in versions if v["version"] == version), None)
    if chosen is None:
        have = ", ".join(f"v{v['version']}" for v in versions)
        raise NotFoundError(f"dataset {name!r} has no version v{version} (versions: {have})")
    total = int(chosen["rows"])
    pages = max(1, -(-total // PAGE_ROWS))
    if page >= pages:
        raise ConfigError("page", f"page {page} is past the last one ({pages - 1})")
    bound = {"p": project, "d": chosen["digest"]}
    _, found = store.query_rows(_ROWS, {**bound, "n": PAGE_ROWS, "o": page * PAGE_ROWS})
    shown = [{"index": int(i), "row": _row(text)} for i, text in found]
    fields = [str(c) for c in chosen["columns"]] or sorted({k for r in shown for k in _row(r["row"])})
    eval_columns, evals = store.query_rows(_EVALS_ON, bound)
    return {
        "project": project, "name": name, "versions": versions, "version": int(chosen["version"]),
        "digest": chosen["digest"], "columns": fields, "rows": shown, "page": page, "pages": pages, "total": total,
        "offset": page * PAGE_ROWS, "evals": [dict(zip(eval_columns, e, strict=True)) for e in evals],
    }  # fmt: skip


def _row(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {"row": text}
    return value if isinstance(value, dict) else {"row": value}


__all__ = ["dataset_detail", "dataset_list", "version_number"]
