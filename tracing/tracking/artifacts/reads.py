"""Reading what the store holds of a logged artifact: the version it was given, its lineage.

Plain values in and out (project, name, digest), so `Artifact` can ask without importing the
module that builds artifacts from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import pandas as pd


def read_named(name: str, project: str, parameters: dict[str, Any]) -> pd.DataFrame:
    """A named read of `project` (see collector/store/reads.py)."""
    from tracehouse.reads.reading import read

    return read(name, parameters, project)


def stored_version(project: str, name: str, digest: str) -> Optional[str]:
    """The version the store gave a logged artifact (None until its record is stored)."""
    found = read_named("artifact_by_digest", project, {"n": name, "d": digest})
    return f"v{int(found['version'].iloc[0])}" if not found.empty else None


def lineage(project: str, name: str, version: int) -> pd.DataFrame:
    """Runs that logged (`output`) and used (`input`) a version."""
    return read_named("artifact_lineage", project, {"n": name, "v": version})


def latest_files(project: str, name: str) -> list[tuple[str, str, int, str]]:
    """(path, digest, size, ref) of the files of `name`'s latest version; [] when it has none."""
    found = read_named("artifact_alias", project, {"n": name, "a": "latest"})
    if found.empty:
        return []
    rows = read_named("artifact_version", project, {"n": name, "v": int(found["version"].iloc[0])})
    if rows.empty:
        return []
    files = read_named("artifact_files", project, {"d": str(rows["digest"].iloc[0])})
    return [(str(p), str(d), int(z), str(r or "")) for p, d, z, r in files.itertuples(index=False)]
