"""`th.evals.Dataset`: examples to evaluate on, stored and versioned in the store.

A dataset is a name and a list of rows (dicts). Pushing it sends its rows through the spool; the
store's writer numbers versions per name by content digest (same rows, same version, as
artifacts), keeps the rows once per digest in `dataset_rows` and the versions in `datasets`.
`Dataset.get(name, version)` reads one back.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import orjson

from tracehouse._errors import ConfigError, NotFoundError, StoreError

PathLike = Union[str, "os.PathLike[str]"]


def _check_name(name: Any) -> str:
    from tracehouse.tracking.artifacts.artifact import NAME_RE

    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("name", f"dataset names take 1-128 letters, digits, '_', '.', '-'; got {name!r}")
    return name


def _clean(value: Any) -> Any:
    """Rows are JSON: NaN (pandas' missing value) becomes None, numpy scalars plain numbers."""
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return _clean(item())
    return value


class Dataset:
    """Named examples (a list of dicts); `push()` stores a version, `Dataset.get()` reads one."""

    def __init__(self, name: str, rows: Any) -> None:
        self.name = _check_name(name)
        if isinstance(rows, (str, os.PathLike)):
            rows = _load(Path(rows))
        elif hasattr(rows, "to_dict") and hasattr(rows, "columns"):
            rows = rows.to_dict("records")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigError("rows", "expected a list of dicts, a JSONL or CSV file, or a pandas DataFrame")
        self.rows: list[dict[str, Any]] = [{str(k): _clean(v) for k, v in r.items()} for r in rows]
        try:
            self._encoded = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in self.rows]
        except TypeError as error:
            raise ConfigError("rows", f"rows must be JSON-serializable: {error}") from None
        self.version: Optional[str] = None
        self.project: Optional[str] = None

    @classmethod
    def from_jsonl(cls, path: PathLike, name: Optional[str] = None) -> Dataset:
        """Rows from a JSON Lines file (name: the file's stem)."""
        return cls(name or Path(path).stem, Path(path))

    @classmethod
    def from_csv(cls, path: PathLike, name: Optional[str] = None) -> Dataset:
        """Rows from a CSV file with a header line (values are strings)."""
        return cls(name or Path(path).stem, Path(path))

    @classmethod
    def from_pandas(cls, frame: Any, name: str) -> Dataset:
        """Rows from a DataFrame (one dict per row)."""
        return cls(name, frame)

    @property
    def digest(self) -> str:
        """SHA-256 over the rows in order: equal rows, equal digest (and version)."""
        sha = hashlib.sha256()
        for encoded in self._encoded:
            sha.update(encoded)
            sha.update(b"\n")
        return sha.hexdigest()

    @property
    def columns(self) -> list[str]:
        return sorted({k for r in self.rows for k in r})

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, rows={len(self.rows)}, version={self.version!r})"

    def push(self, project: Optional[str] = None) -> Dataset:
        """Store this content as a version of the dataset (a new version only when the rows changed)."""
        from tracehouse.spans.runtime import runtime

        self.project = project or runtime.settings.project
        if runtime.settings.disabled:  # tracehouse is off: the same API, nothing stored
            return self
        runtime.sink().submit({"type": "dataset", "project": self.project, "name": self.name, "digest": self.digest,
                               "rows": [orjson.loads(e) for e in self._encoded], "columns": self.columns,
                               "time_ns": time.time_ns()})  # fmt: skip
        return self

    def wait(self) -> Dataset:
        """Push if needed, then read the version the store gave these rows."""
        from tracehouse.reads.reading import read

        if self.project is None:
            self.push()
        found = read("dataset_by_digest", {"n": self.name, "d": self.digest}, self.project)
        if found.empty:
            raise StoreError(f"dataset {self.name} is not in the store yet")
        self.version = f"v{int(found['version'].iloc[0])}"
        return self

    @classmethod
    def get(cls, name: str, version: Union[str, int, None] = None, project: Optional[str] = None) -> Dataset:
        """A stored version: "latest" (default), "v3" or 3; NotFoundError naming what exists."""
        from tracehouse.reads.reading import read

        _check_name(name)
        if version is None or version == "latest":
            found = read("dataset_latest", {"n": name}, project)
        else:
            number = version if isinstance(version, int) else int(str(version).lstrip("v") or -1) \
                if str(version).lstrip("v").isdigit() else None  # fmt: skip
            if number is None:
                raise ConfigError("version", f"expected 'latest', 'v3' or 3, got {version!r}")
            found = read("dataset_version", {"n": name, "v": number}, project)
        if found.empty:
            versions = read("dataset_versions", {"n": name}, project)
            have = ", ".join(f"v{v}" for v in versions["version"]) if not versions.empty else "none"
            raise NotFoundError(f"dataset {name}:{version or 'latest'} is not stored (versions: {have})")
        row = found.iloc[0]
        rows = read("dataset_rows", {"d": str(row["digest"])}, project)
        dataset = cls(name, [orjson.loads(text) for text in rows["row"]])
        dataset.version, dataset.project = f"v{int(row['version'])}", project
        return dataset


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError("rows", f"{str(path)!r} is not a file")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise ConfigError("rows", f"{path}:{number} is not JSON: {error}") from None
    return rows
