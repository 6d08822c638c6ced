"""Logging artifacts (blobs, then a record through the spool) and reading stored versions back."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.tracking.artifacts.artifact import Artifact, ArtifactEntry, check_aliases, check_name
from tracehouse.tracking.artifacts.reads import read_named
from tracehouse.tracking.blobs import Blobs

if TYPE_CHECKING:
    pass

Submit = Callable[[dict[str, Any]], None]
_SPEC_RE = re.compile(
    r"^(?:(?:(?P<entity>[^/:]+)/)?(?P<project>[^/:]+)/)?(?P<name>[^/:]+)(?::(?P<alias>[^/:]+))?$"
)  # W&B's entity is accepted and ignored: tracehouse has projects, not entities


def log_artifact(
    submit: Submit,
    blobs: Blobs,
    project: str,
    run_id: Optional[str],
    artifact: Any,
    name: Optional[str] = None,
    type: Optional[str] = None,
    aliases: Optional[list[str]] = None,
) -> Artifact:
    """Store an artifact's files in the blob store and submit its record; returns the artifact.

    `artifact` may be a path (file or directory), packed into an artifact of `name` (default: the
    path's name) and `type` (default "unspecified"), as W&B does.
    """
    custom = check_aliases(aliases)
    if isinstance(artifact, Artifact):
        return _log(submit, blobs, project, run_id, artifact, custom)
    if not isinstance(artifact, (str, Path)):
        raise ConfigError("artifact", f"expected a th.Artifact or a path, got {type_name(artifact)}")
    path = Path(artifact)
    packed = Artifact(name or check_name(path.name), type or "unspecified")
    if path.is_dir():
        packed.add_dir(path)
    else:
        packed.add_file(path)
    return _log(submit, blobs, project, run_id, packed, custom)


def _log(
    submit: Submit, blobs: Blobs, project: str, run_id: Optional[str], artifact: Artifact, custom: list[str]
) -> Artifact:
    from tracehouse.tracking.artifacts.record import submit_version

    return submit_version(submit, blobs, project, run_id, artifact, custom)  # type: ignore[no-any-return]


def type_name(value: Any) -> str:
    return type(value).__name__


def parse_spec(spec: Any, default_project: str) -> tuple[str, str, str]:
    """`name`, `name:alias`, `name:v3`, `project/name:alias` or W&B's `entity/project/name:alias` (the
    entity is ignored) as (project, name, alias or version)."""
    match = _SPEC_RE.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ConfigError("artifact", "expected 'name', 'name:alias', 'name:v3', 'project/name:alias' or "
                                      f"'entity/project/name:alias', got {spec!r}")  # fmt: skip
    return match["project"] or default_project, check_name(match["name"]), match["alias"] or "latest"


def read_artifact(spec: str, project: str, type: Optional[str] = None) -> Artifact:
    """The stored version `spec` names; NotFoundError saying which versions and aliases exist."""
    project, name, alias = parse_spec(spec, project)
    if re.fullmatch(r"v\d+", alias):
        version: Optional[int] = int(alias[1:])
    else:
        found = read_named("artifact_alias", project, {"n": name, "a": alias})
        version = int(found["version"].iloc[0]) if not found.empty else None
    rows = read_named("artifact_version", project, {"n": name, "v": version or 0}) if version is not None else None
    if rows is None or rows.empty:
        raise NotFoundError(f"artifact {name}:{alias} is not in project {project!r}: {_what_exists(project, name)}")
    row = rows.iloc[0]
    if type is not None and row["type"] != type:
        raise ConfigError("type", f"{name}:{alias} is of type {row['type']!r}, not {type!r}")
    artifact = Artifact(name, str(row["type"]), str(row["description"]), orjson.loads(row["metadata"] or "{}"))
    files = read_named("artifact_files", project, {"d": str(row["digest"])})
    for path, digest, size, ref in files.itertuples(index=False):
        artifact._add(ArtifactEntry(str(path), str(digest), int(size), ref=ref or None), overwrite=True)
    aliases = read_named("artifact_version_aliases", project, {"n": name, "v": int(row["version"])})
    artifact.project, artifact.version = project, f"v{int(row['version'])}"
    artifact.aliases = [str(a) for a in aliases["alias"]]
    artifact.logged_by_run = str(row["run_id"]) or None
    artifact._frozen = True
    return artifact


def _what_exists(project: str, name: str) -> str:
    found = read_named("artifact_summary", project, {"n": name}).iloc[0]
    if int(found["n"]) == 0:
        return f"no artifact is named {name!r}"
    return f"it has versions v0..v{int(found['last'])} and aliases {', '.join(found['aliases'])}"


def use_record(project: str, artifact: Artifact, run_id: str) -> dict[str, Any]:
    """The lineage record: `run_id` used this version."""
    assert artifact.version is not None
    return {
        "type": "artifact_use", "project": project, "name": artifact.name, "version": int(artifact.version[1:]),
        "run_id": run_id, "time_ns": time.time_ns(),
    }  # fmt: skip
