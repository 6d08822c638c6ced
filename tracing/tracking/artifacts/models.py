"""W&B's artifact calls around a run: `run.link_artifact`, `run.log_model`, `run.use_model`.

`run` is a `tracehouse.tracking.run.Run` (taken as a parameter: this package sits below the run
module and must not import it). Linking records the same content under the collection's name,
through the ordinary log path: the store gives the collection a new version only when the
content digest is new to it, and `latest` (plus the aliases asked for) follow it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.tracking.artifacts.artifact import Artifact, ArtifactEntry, check_aliases, check_name
from tracehouse.tracking.artifacts.store import log_artifact, parse_spec


def _target(target_path: Any, default_project: str) -> tuple[str, str]:
    """W&B's "collection", "project/collection" or "entity/project/collection" as (project, collection)."""
    parts = target_path.split("/") if isinstance(target_path, str) else []
    if not 1 <= len(parts) <= 3 or not all(p.strip() for p in parts) or ":" in target_path:
        raise ConfigError("target_path", "expected 'collection', 'project/collection' or "
                                         f"'entity/project/collection', got {target_path!r}")  # fmt: skip
    return (parts[-2] if len(parts) > 1 else default_project), check_name(parts[-1])


def link_artifact(run: Any, artifact: Any, target_path: Any, aliases: Optional[list[str]] = None) -> Artifact:
    """Record `artifact`'s version under the collection `target_path` names (with `aliases`); returns
    the linked artifact (its `wait()` gives the collection's version)."""
    if not isinstance(artifact, Artifact):
        raise ConfigError("artifact", f"expected a th.Artifact, got {type(artifact).__name__}")
    project, collection = _target(target_path, artifact.project or run.project)
    custom = check_aliases(aliases)
    if artifact.project is None:  # W&B logs an artifact that was not logged yet
        run.log_artifact(artifact)
    linked = Artifact(collection, artifact.type, artifact.description, artifact.metadata)
    for entry in artifact.manifest:
        linked._add(ArtifactEntry(entry.path, entry.digest, entry.size, ref=entry.ref), overwrite=False)
    if run.disabled:
        return linked
    from tracehouse.tracking.blobs import blob_store

    return log_artifact(run._submit, blob_store(local=run.offline), project, run.id, linked, aliases=custom)


def log_model(run: Any, path: Any, name: Optional[str] = None, aliases: Optional[list[str]] = None) -> Artifact:
    """An artifact of type "model" from a file or directory (name default: `run-<run id>-<basename>`)."""
    if not isinstance(path, (str, Path)) or not Path(path).exists():
        raise ConfigError("path", f"expected a model file or directory, got {path!r}")
    base = Path(path).resolve().name
    artifact = Artifact(check_name(name or f"run-{run.id}-{base}"), "model")
    if Path(path).is_dir():
        artifact.add_dir(path)
    else:
        artifact.add_file(path)
    return run.log_artifact(artifact, aliases=aliases)  # type: ignore[no-any-return]


def use_model(run: Any, name: Any) -> str:
    """Use the model artifact `name` ("name:alias", "project/name:v3", ...), download it and return the
    local path: the file of a one-file model, else the folder (as W&B does)."""
    project, base, alias = parse_spec(name, run.project)
    from tracehouse.tracking.artifacts.store import read_artifact

    found = read_artifact(f"{project}/{base}:{alias}", project)
    if found.type != "model":
        raise ConfigError("name", f"{base}:{alias} is an artifact of type {found.type!r}, not a model")
    artifact = run.use_artifact(found)
    root = Path(artifact.download()).resolve()
    files = artifact.files()
    return str(root / files[0]) if len(files) == 1 and "/" not in files[0] else str(root)  # W&B: one file, its path
