"""Artifact records to `artifacts`, `artifact_files`, `artifact_aliases` and `artifact_usage` rows.

Versions are numbered here, by the store's one writer, so two processes logging the same name get
distinct versions: an artifact whose content digest the name already has reuses that version (only
its aliases move); new content gets the next number and the `latest` alias. An `artifact` record:
`{"type": "artifact", "project", "name", "artifact_type", "digest", "description", "metadata",
"files": [{"path", "digest", "size", "ref"}], "aliases": [...], "run_id", "time_ns"}`; an entry's
`digest` is its SHA-256 (the blob's key), or for a reference (`ref`, not copied) the digest taken
from its source. An `artifact_use` record (lineage: a run used a version): `{"project", "name",
"version", "run_id", "time_ns"}`. A redo after a crash numbers the same way (the `artifacts` row is inserted last), and
the inserts carry tokens derived from the batch's, so nothing is doubled.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Optional

import orjson

from tracehouse.collector.store.isolate import keep_rejected_record
from tracehouse.collector.store.store import BadRowsError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
VERSION_ALIAS_RE = re.compile(r"^v\d+$")
ARTIFACT_TYPES = ("artifact", "artifact_use")
# the writer's threads: read the versions and insert the new one as one step (artifacts and datasets)
numbering = threading.Lock()


_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def entry_path_problem(path: Any) -> Optional[str]:
    """What is wrong with a file path inside an artifact (None when nothing is): it must be relative
    and stay inside the artifact wherever it is downloaded, on any system."""
    if not isinstance(path, str) or not path:
        return "is empty"
    if "\0" in path or len(path) > 4096:
        return "holds a NUL character or is over 4096 characters"
    if path.startswith(("/", "\\")) or _DRIVE_RE.match(path):
        return "is absolute"
    if any(part in ("", ".", "..") for part in re.split(r"[\\/]", path)):
        return "leaves the artifact ('..', '.' or an empty part)"
    return None


def _token(token: Optional[str], suffix: str) -> Optional[str]:
    return f"{token}/{suffix}" if token else None


def versions_by_digest(store: Store, table: str, project: str, name: str) -> dict[str, int]:
    """{content digest: version} of a name in a versioned table (`artifacts`, `datasets`)."""
    _, rows = store.query_rows(
        f"SELECT digest, version FROM {table} FINAL WHERE project = {{p:String}} AND name = {{n:String}}",
        {"p": project, "n": name},
    )
    return {str(digest): int(version) for digest, version in rows}


def _write_artifact(store: Store, record: dict[str, Any], token: Optional[str]) -> None:
    project, name, digest = str(record["project"]), str(record["name"]), str(record["digest"])
    if not NAME_RE.match(name):
        raise ValueError(f"artifact name {name!r}: letters, digits, '_', '.', '-' only")
    aliases = [str(a) for a in record.get("aliases") or []]
    bad = [a for a in aliases if not ALIAS_RE.match(a) or VERSION_ALIAS_RE.match(a)]
    if bad:
        raise ValueError(f"aliases {bad}: letters, digits, '_', '.', '-', and not of the form v<number>")
    files = record["files"]
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise ValueError("files: expected a list of {path, digest, size, ref}")
    for entry in files:
        problem = entry_path_problem(entry.get("path"))
        if problem is not None:
            raise ValueError(f"artifact {name!r}: the file path {entry.get('path')!r} {problem}")
    micros, run_id = int(record["time_ns"]) // 1000, str(record.get("run_id") or "")
    with numbering:
        known = versions_by_digest(store, "artifacts", project, name)
        new = digest not in known
        version = max(known.values(), default=-1) + 1 if new else known[digest]
        if new:
            store.insert(
                "artifact_files",
                {
                    "project": [project] * len(files),
                    "artifact_digest": [digest] * len(files),
                    "path": [str(f["path"]) for f in files],
                    "digest": [str(f["digest"]) for f in files],
                    "size": [int(f.get("size") or 0) for f in files],
                    "ref": [str(f.get("ref") or "") for f in files],
                },
                dedup_token=_token(token, "files"),
            )
            aliases = ["latest", *aliases]
        if aliases:
            store.insert(
                "artifact_aliases",
                {
                    "project": [project] * len(aliases),
                    "name": [name] * len(aliases),
                    "alias": aliases,
                    "version": [version] * len(aliases),
                    "updated_at": [micros] * len(aliases),
                },
                dedup_token=_token(token, "aliases"),
            )
        if run_id:
            _insert_usage(store, project, name, version, "output", run_id, micros, _token(token, "usage"))
        if new:
            metadata = record.get("metadata") or {}
            store.insert(
                "artifacts",
                {
                    "project": [project],
                    "name": [name],
                    "version": [version],
                    "type": [str(record.get("artifact_type") or "")],
                    "digest": [digest],
                    "description": [str(record.get("description") or "")],
                    "metadata": [orjson.dumps(metadata).decode()],
                    "size": [sum(int(f.get("size") or 0) for f in files)],
                    "file_count": [len(files)],
                    "run_id": [run_id],
                    "created_at": [micros],
                },
                dedup_token=_token(token, "artifact"),
            )


def _insert_usage(
    store: Store, project: str, name: str, version: int, direction: str, run_id: str, micros: int, token: Optional[str]
) -> None:
    store.insert(
        "artifact_usage",
        {
            "project": [project],
            "name": [name],
            "version": [version],
            "direction": [direction],
            "run_id": [run_id],
            "at": [micros],
        },
        dedup_token=token,
    )


def write_artifact_records(store: Store, records: list[dict[str, Any]], token: Optional[str]) -> tuple[int, list[str]]:
    """Write artifact and artifact_use records; returns (records written, one reason per refused record)."""
    written, rejected = 0, []
    for index, record in enumerate(records):
        try:
            if record["type"] == "artifact":
                _write_artifact(store, record, _token(token, f"a{index}"))
            else:
                _insert_usage(
                    store, str(record["project"]), str(record["name"]), int(record["version"]), "input",
                    str(record["run_id"]), int(record["time_ns"]) // 1000, _token(token, f"u{index}"),
                )  # fmt: skip
            written += 1
        except (KeyError, TypeError, ValueError) as error:
            rejected.append(f"{record.get('type')} record {record.get('name')!r}: {type(error).__name__}: {error}")
        except BadRowsError as error:  # the store refused its values: kept in `rejected`, the rest goes on
            keep_rejected_record(store, record, str(error), _token(token, f"r{index}"))
            rejected.append(f"{record.get('type')} record {record.get('name')!r}: {error}")
    return written, rejected
