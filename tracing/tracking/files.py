"""`run.save(glob, base_path=, policy=)`: files attached to a run, and `th.restore` to fetch one back.

A saved file's bytes go to the blob store and a `file` record (path inside the run, digest, size)
to `run_files`, which keeps the newest version of each path. Policies as in W&B: "now" stores the
files once, "end" when the run finishes, "live" now, whenever they change (checked every
`LIVE_SECONDS`) and at the end.
"""

from __future__ import annotations

import glob as globbing
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.tracking.blobs import blob_store

LIVE_SECONDS = 2.0
POLICIES = ("live", "now", "end")
Submit = Callable[[dict[str, object]], None]


class RunFiles:
    """The files a run saves, by policy; `store_changed` writes those new or changed since last time."""

    def __init__(self, project: str, run_id: str, submit: Submit, offline: bool = False) -> None:
        self.project, self.run_id, self._submit, self._offline = project, run_id, submit, offline
        self._watched: list[tuple[str, Path, str]] = []  # (glob, base path, policy)
        self._stored: dict[str, tuple[int, int]] = {}  # path in run -> (mtime_ns, size) when stored
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def save(self, pattern: str, base_path: Optional[str], policy: str) -> list[str]:
        """Attach the files matching `pattern` (paths inside the run are relative to `base_path`)."""
        if not isinstance(pattern, (str, os.PathLike)) or not str(pattern):
            raise ConfigError("glob_str", f"expected a path or glob pattern, got {pattern!r}")
        if policy not in POLICIES:
            raise ConfigError("policy", f"expected 'live', 'now' or 'end', got {policy!r}")
        pattern = os.path.abspath(os.fspath(pattern))
        if base_path is None:
            fixed = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
            base = Path(fixed if fixed.endswith(os.sep) else os.path.dirname(fixed))
        else:
            base = Path(os.path.abspath(base_path))
            if not Path(pattern).is_relative_to(base):
                raise ConfigError("base_path", f"{pattern!r} is not under base_path {str(base)!r}")
        with self._lock:
            self._watched.append((pattern, base, policy))
        matches = [os.path.relpath(path, base) for path in sorted(globbing.glob(pattern, recursive=True))]
        if policy != "end":
            self.store_changed(only=(pattern, base))
        if policy == "live" and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name=f"tracehouse-files-{self.run_id}", daemon=True)
            self._thread.start()
        return matches

    def store_changed(self, only: Optional[tuple[str, Path]] = None, final: bool = False) -> int:
        """Store matching files that are new or changed; at the end (`final`) every policy counts."""
        with self._lock:
            watched = [(p, b) for p, b, policy in self._watched if final or policy != "end"]
        if only is not None:
            watched = [only]
        stored = 0
        for pattern, base in watched:
            for path in sorted(globbing.glob(pattern, recursive=True)):
                if os.path.isfile(path):
                    stored += self._store(Path(path), Path(path).relative_to(base).as_posix())
        return stored

    def _store(self, path: Path, name: str) -> int:
        try:
            stat = path.stat()
            if self._stored.get(name) == (stat.st_mtime_ns, stat.st_size):
                return 0
            digest, size = blob_store(local=self._offline).put_file(path)
        except OSError:
            return 0  # removed or unreadable meanwhile: the next pass (or the end) tries again
        self._stored[name] = (stat.st_mtime_ns, stat.st_size)
        self._submit({"type": "file", "project": self.project, "run_id": self.run_id, "path": name,
                      "blob": digest, "size": size, "time_ns": time.time_ns()})  # fmt: skip
        return 1

    def _watch(self) -> None:
        while not self._stop.wait(LIVE_SECONDS):
            try:
                self.store_changed()
            except Exception:
                from tracehouse._internal_errors import log_internal_error

                log_internal_error("live file save")

    def finish(self) -> None:
        """Store every policy's files one last time and stop watching."""
        self._stop.set()
        self.store_changed(final=True)


def restore(name: str, run_id: str, project: str, root: Optional[str] = None, replace: bool = False) -> str:
    """Download a file a run saved (W&B's `wandb.restore`) to `root` (default the working directory)."""
    from tracehouse.reads.reading import read
    from tracehouse.tracking.artifacts.artifact import _contained

    if not isinstance(name, str) or not name:
        raise ConfigError("name", f"expected the path the file was saved as, got {name!r}")
    target = _contained(Path(root or "."), name)  # a stored path never writes outside `root`
    files = read("run_files", {"r": run_id}, project)
    found = files[files["path"] == name] if "path" in files.columns else files
    if found.empty:
        raise NotFoundError(f"run {run_id!r} of project {project!r} saved no file {name!r}")
    if replace or not target.exists():
        blob_store().fetch(str(found["blob"].iloc[0]), target)
    return str(target)
