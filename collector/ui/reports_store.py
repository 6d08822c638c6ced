"""Reports in the store (`reports`, `report_versions`: collector/store/migrations_reports.py).

A report's id is 16 random hex digits, made once; its URL `/reports/{id}` never changes. Saving writes a
new version row (the latest wins), deleting writes one with `deleted = 1`; every version stays readable
in `report_versions`. Reads are by project and id (the tables' sort key), lists are bounded.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse._errors import ConflictError, NotFoundError
from tracehouse.collector.store.queries import check_project
from tracehouse.collector.ui.reports_blocks import check_report

if TYPE_CHECKING:
    from tracehouse.collector.store.keys import Principal
    from tracehouse.collector.store.store import Store

REPORT_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_LISTED = 500
MAX_VERSIONS = 200
_FIELDS = ("project", "report_id", "title", "description", "blocks", "author", "created_at", "updated_at", "deleted",
           "version")  # fmt: skip
_LIST = ("project", "report_id", "title", "description", "author", "created_at", "updated_at", "version")


def new_id() -> str:
    """A fresh report id (URL-safe: lowercase hex)."""
    return secrets.token_hex(8)


def _missing(report_id: str) -> NotFoundError:
    return NotFoundError(f"no report {report_id[:40]!r}")


def _report(row: dict[str, Any]) -> dict[str, Any]:
    report = {k: row[k] for k in _FIELDS if k not in ("blocks", "deleted")}
    report["blocks"] = orjson.loads(row["blocks"] or "[]")
    report["deleted"] = bool(row["deleted"])
    report["version"] = int(row["version"])
    return report


def get(store: Store, report_id: str, project: Optional[str] = None, version: Optional[int] = None) -> dict[str, Any]:
    """A report (its latest version, or `version` from the history); NotFoundError naming the id."""
    if not isinstance(report_id, str) or not REPORT_ID.match(report_id):
        raise _missing(str(report_id))
    where = "report_id = {r:String}" + (" AND project = {p:String}" if project is not None else "")
    if version is None:
        sql = f"SELECT {', '.join(_FIELDS)} FROM reports FINAL WHERE {where} AND deleted = 0 LIMIT 1"
    else:
        sql = (f"SELECT {', '.join(_FIELDS)} FROM report_versions WHERE {where} AND version = {{v:UInt64}} "
               "AND deleted = 0 LIMIT 1")  # fmt: skip
    columns, rows = store.query_rows(sql, {"r": report_id, "p": project or "", "v": version or 0})
    if not rows:
        raise _missing(report_id) if version is None else NotFoundError(f"report {report_id} has no version {version}")
    return _report(dict(zip(columns, rows[0], strict=True)))


def readable(store: Store, who: Principal, report_id: str, version: Optional[int] = None) -> dict[str, Any]:
    """A report the caller may see (another project's, for a project key, is not found)."""
    report = get(store, report_id, None, version)
    if not who.admin and report["project"] != who.project:
        raise _missing(report_id)
    return report


def listing(store: Store, project: str) -> list[dict[str, Any]]:
    """The project's reports, most recently edited first (at most MAX_LISTED)."""
    columns, rows = store.query_rows(
        f"SELECT {', '.join(_LIST)}, JSONLength(blocks) AS block_count FROM reports FINAL "
        "WHERE project = {p:String} AND deleted = 0 ORDER BY updated_at DESC, report_id LIMIT {n:UInt32}",
        {"p": check_project(project), "n": MAX_LISTED},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def versions(store: Store, project: str, report_id: str) -> list[dict[str, Any]]:
    """Every saved version of a report, newest first: version, title, author, when, whether a delete."""
    get(store, report_id, project)
    columns, rows = store.query_rows(
        "SELECT version, title, author, updated_at, deleted FROM report_versions WHERE project = {p:String} "
        "AND report_id = {r:String} ORDER BY version DESC LIMIT {n:UInt32}",
        {"p": project, "r": report_id, "n": MAX_VERSIONS},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def author_of(store: Store, who: Principal) -> str:
    """Who saves: the key's name and id, `owner` for a local process, `admin` on a keyless collector."""
    if who.key_id == "":
        return "admin"
    if who.key_id.startswith("owner"):
        return "owner"
    _, rows = store.query_rows("SELECT name FROM api_keys FINAL WHERE key_id = {k:String} LIMIT 1", {"k": who.key_id})
    name = str(rows[0][0]) if rows and rows[0][0] else ""
    return f"{name} ({who.key_id})" if name else who.key_id


def _write(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    stored = {**row, "blocks": orjson.dumps(row["blocks"]).decode(), "deleted": int(row["deleted"])}
    store.insert("reports", {k: [stored[k]] for k in _FIELDS})
    return row


def create(store: Store, project: str, body: Any, author: str) -> dict[str, Any]:
    """A new report from a checked body; the stored report (with its id)."""
    report = check_report(body)
    now = datetime.now(timezone.utc)
    row = {"project": check_project(project), "report_id": new_id(), **report, "author": author, "created_at": now,
           "updated_at": now, "deleted": False, "version": time.time_ns()}  # fmt: skip
    return _write(store, row)


def update(store: Store, project: str, report_id: str, body: Any, author: str,
           base_version: Optional[int] = None) -> dict[str, Any]:  # fmt: skip
    """A new version of a report (title, description and blocks replaced); NotFoundError for an unknown id.

    `base_version` is the version the change was made from: when the report has had another version saved
    since, ConflictError names it and nothing is written (without it, the last save wins)."""
    report = check_report(body)
    current = get(store, report_id, project)
    if base_version is not None and base_version != current["version"]:
        raise ConflictError(
            f"report {report_id} was changed since version {base_version} (by {current['author'] or 'someone'} at "
            f"{current['updated_at']:%Y-%m-%d %H:%M:%S} UTC, now version {current['version']}): reload it and "
            "make your change again"
        )
    version = max(time.time_ns(), current["version"] + 1)
    return _write(store, {**current, **report, "author": author, "updated_at": datetime.now(timezone.utc),
                          "deleted": False, "version": version})  # fmt: skip


def delete(store: Store, project: str, report_id: str, author: str) -> dict[str, Any]:
    """Soft-delete a report: a version marked deleted (the history keeps the rest)."""
    current = get(store, report_id, project)
    version = max(time.time_ns(), current["version"] + 1)
    _write(store, {**current, "author": author, "updated_at": datetime.now(timezone.utc), "deleted": True,
                   "version": version})  # fmt: skip
    return {"report_id": report_id, "deleted": True}


__all__ = ["REPORT_ID", "author_of", "create", "delete", "get", "listing", "new_id", "readable", "update", "versions"]
