"""Submitting an artifact version (blobs first, then the record through the spool), and W&B's
`Artifact.save`: through the active run, else under a short run of job_type "auto".

This module takes the artifact as a plain object and imports neither `artifact.py` nor the run
module, so `Artifact.save` can call it without an import circle.
"""

from __future__ import annotations

import random
import string
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse._errors import ConfigError
from tracehouse.spans.runtime import runtime
from tracehouse.tracking.artifacts.reads import latest_files

if TYPE_CHECKING:
    from tracehouse.tracking.blobs import Blobs

_ID_CHARS = string.ascii_lowercase + string.digits


def submit_version(
    submit: Callable[[dict[str, Any]], None], blobs: Blobs, project: str, run_id: Optional[str], artifact: Any,
    custom: list[str],
) -> Any:  # fmt: skip
    """Store the artifact's files and submit its record (an incremental one first takes in the
    latest version's files); returns the artifact, now frozen."""
    if artifact.incremental and not artifact._frozen:
        artifact._keep_latest(latest_files(project, artifact.name))
    if not artifact._entries:
        raise ConfigError("artifact", f"{artifact.name} holds no files: add_file, add_dir or add_reference first")
    for entry in artifact._entries.values():
        if entry.ref is None and entry.local_path is not None:
            entry.digest, entry.size = blobs.put_file(entry.local_path)  # a file changed since add_file: as stored
    artifact._frozen = True
    artifact.project, artifact.logged_by_run = project, run_id
    submit({
        "type": "artifact", "project": project, "name": artifact.name, "artifact_type": artifact.type,
        "digest": artifact.digest, "description": artifact.description, "metadata": artifact.metadata,
        "files": [{"path": e.path, "digest": e.digest, "size": e.size, "ref": e.ref or ""}
                  for e in artifact.manifest],
        "aliases": custom, "run_id": run_id or "", "time_ns": time.time_ns(),
    })  # fmt: skip
    artifact.aliases = ["latest", *custom]
    return artifact


def _active_run() -> Any:
    """The active run, if any (no run can be active while the run module was never imported)."""
    module = sys.modules.get("tracehouse.tracking.run")
    return module.current_run() if module is not None else None


def save_artifact(artifact: Any, project: Optional[str] = None) -> Any:
    """Log `artifact` through the active run, else under a short run of job_type "auto" in `project`."""
    if project is not None and (not isinstance(project, str) or not project.strip() or "/" in project):
        raise ConfigError("project", f"expected a project name, got {project!r}")
    run = _active_run()
    if run is not None:
        run.log_artifact(artifact)
        if run.disabled or run.offline:
            return artifact  # nothing stored (disabled), or stored at `tracehouse sync` (offline)
        return artifact.wait()
    if runtime.disabled:
        return artifact
    return _save_in_auto_run(artifact, project or runtime.settings.project)


def _save_in_auto_run(artifact: Any, project: str) -> Any:
    from tracehouse.tracking.blobs import blob_store

    run_id = "".join(random.choice(_ID_CHARS) for _ in range(8))
    started = time.time_ns()
    submit = runtime.sink().submit

    def record(state: str) -> dict[str, Any]:
        now = time.time_ns()
        return {
            "type": "run", "project": project, "run_id": run_id, "name": f"auto-{run_id}", "state": state,
            "config": {}, "summary": {}, "tags": [], "group": "", "job_type": "auto", "notes": "",
            "sweep_id": "", "entity": "", "created_ns": started, "updated_ns": now, "heartbeat_ns": now,
            "version": now,
        }  # fmt: skip

    submit(record("running"))
    try:
        submit_version(submit, blob_store(), project, run_id, artifact, [])
    finally:
        submit(record("finished"))
        runtime.flush()
    return artifact.wait()
