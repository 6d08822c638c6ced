"""One run of W&B's public API (`wandb.Api().run(...)`): its values, history, files and artifacts.

Built by `tracehouse.reads.api.Api` from a row of the `runs` read; every read goes through
`tracing/reads/reading.py`, so it works embedded, through the store's owner and through a collector.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Union, cast

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.reads import reading

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.reads.api import Api, Sweep
    from tracehouse.tracking.artifacts.artifact import Artifact

_SPECIAL = ("_step", "_runtime", "_timestamp")
_END = 2**62  # past any step


def ui_page_url(page: str, project: str, item: str) -> Optional[str]:
    """The UI's page of `item` (a run or a sweep) when a UI is known (the configured collector, or
    one serving this data dir), else None."""
    from tracehouse.spans.runtime import runtime
    from tracehouse.tracking.banner import ui_page, ui_url

    base = ui_url(runtime.settings)
    return None if base is None else ui_page(base, page, project, item)


def _iso(value: Any) -> Optional[str]:
    """A stored time as W&B's ISO text (UTC, seconds, `Z`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _seconds(value: Any) -> float:
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return float(stamp.timestamp())


class File:
    """A file saved with `run.save` (W&B's `File`): `name`, `size`, `digest`, `url`, `download()`."""

    def __init__(self, run: Run, name: str, digest: str, size: int, updated_at: Any) -> None:
        self.run, self.name, self.digest, self.size = run, name, digest, size
        self.updated_at = _iso(updated_at)

    @property
    def url(self) -> Optional[str]:
        """The blob's address at the configured collector; None for the embedded store."""
        from tracehouse.spans.runtime import runtime

        endpoint = runtime.settings.endpoint
        return f"{endpoint.rstrip('/')}/api/v1/blobs/{self.digest}" if endpoint else None

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False) -> Any:
        """Copy the file to `root/name` and return it opened for reading, as W&B does. A file already
        there is a ValueError (ConfigError) unless `replace` (fetch again) or `exist_ok` (keep it)."""
        from tracehouse.tracking.artifacts.artifact import _contained
        from tracehouse.tracking.blobs import blob_store

        target = _contained(Path(root), self.name)  # a stored path never writes outside `root`
        if target.exists() and not replace:
            if not exist_ok:
                raise ConfigError("replace", f"{str(target)!r} exists: pass replace=True or exist_ok=True")
        else:
            blob_store().fetch(self.digest, target)
        return open(target)

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.size} bytes)>"


class Run:
    """A stored run: `id`, `name`, `state`, `config`, `summary`, `tags`, `group`, `job_type`, `notes`,
    `created_at`, `project`, `entity`, `sweep`, `url`, `path`; `history`, `scan_history`, `files`,
    `file`, `logged_artifacts`, `used_artifacts`. Read-only: writing goes through `th.init(resume=)`."""

    def __init__(self, api: Api, entity: str, project: str, row: Any, include_sweeps: bool = True) -> None:
        self._api, self.project = api, project
        self.entity = str(row.get("entity") or "") or entity  # a stored entity (newer stores) wins
        self.id = str(row["run_id"])
        self.name = self.display_name = str(row["name"])
        self.state = str(row["state"])
        self.tags = [str(t) for t in row["tags"]] if row["tags"] is not None else []
        self.group, self.job_type, self.notes = str(row["group"]), str(row["job_type"]), str(row["notes"])
        self.sweep_id = str(row["sweep_id"]) or None
        self.config: dict[str, Any] = json.loads(row["config"] or "{}")
        self.summary: dict[str, Any] = json.loads(row["summary"] or "{}")
        self._created = row["created_at"]
        self.created_at = _iso(row["created_at"])
        self.updated_at, self.heartbeat_at = _iso(row["updated_at"]), _iso(row["heartbeat_at"])
        self._include_sweeps = include_sweeps
        self._sweep: Any = None

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def url(self) -> Optional[str]:
        """The run's page in the UI when one is known (see `th.init`'s line), else None."""
        return ui_page_url("runs", self.project, self.id)

    @property
    def sweep(self) -> Optional[Sweep]:
        """The sweep this run is a trial of (None for other runs, or with `include_sweeps=False`)."""
        if self._sweep is None and self.sweep_id and self._include_sweeps:
            try:
                self._sweep = self._api.sweep(f"{self.entity}/{self.project}/{self.sweep_id}")
            except NotFoundError:
                return None
        return self._sweep  # type: ignore[no-any-return]

    # --- history --------------------------------------------------------------------------------
    def _frame(self, keys: Optional[list[str]], low: int = 0, high: int = _END) -> pd.DataFrame:
        """The logged steps in [low, high) with `_step`, `_runtime` and `_timestamp` (seconds): numeric
        metrics as floats, other values (tables, media, histograms) as their stored dicts, text as str."""
        wanted = [k for k in keys if k not in _SPECIAL] if keys is not None else []
        bounds = {"r": self.id, "lo": low, "hi": high, "keys": wanted}
        numeric = reading.read("history_page", bounds, self.project)
        others = reading.read("values_page", bounds, self.project)
        frame = _wide(numeric, others)
        if len(frame):
            frame["_timestamp"] = [_seconds(v) for v in frame["_timestamp"]]
            frame.insert(1, "_runtime", frame["_timestamp"] - _seconds(self._created))
        else:
            frame["_runtime"], frame["_timestamp"] = [], []
        return frame

    def history(self, samples: int = 500, keys: Optional[list[str]] = None, x_axis: str = "_step",
                pandas: bool = True, stream: str = "default") -> Union[pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
        """Up to `samples` logged steps, first and last kept (W&B's sampled history): a DataFrame, or a
        list of dicts with `pandas=False`. With `keys`, only the steps holding every key, with columns
        `x_axis` and `keys`. `stream="system"` (machine metrics) is empty: tracehouse does not record them."""
        _check_keys(keys)
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ConfigError("samples", f"expected a positive number of rows, got {samples!r}")
        if stream not in ("default", "system"):
            raise ConfigError("stream", f"expected 'default' or 'system', got {stream!r}")
        wanted = None if keys is None else list(dict.fromkeys([x_axis, *keys]))
        if stream == "system":
            import pandas as pd

            frame = pd.DataFrame(columns=wanted or list(_SPECIAL))
        else:
            frame = self._frame(wanted)
        if wanted is not None:
            frame = _holding(frame, wanted)
        if len(frame) > samples:
            picked = (
                sorted({round(i * (len(frame) - 1) / (samples - 1)) for i in range(samples)}) if samples > 1 else [0]
            )
            frame = frame.iloc[picked]
        frame = frame.reset_index(drop=True)
        return frame if pandas else [_row(record) for record in frame.to_dict("records")]

    def scan_history(self, keys: Optional[list[str]] = None, page_size: int = 1000, min_step: Optional[int] = None,
                     max_step: Optional[int] = None) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every logged step from `min_step` up to (not including) `max_step` as a dict, in step order;
        with `keys`, only the steps holding every key, and only those keys (W&B's). Read `page_size`
        steps at a time; values that are not numbers come as their stored dicts (text as a str)."""
        _check_keys(keys)
        for name, value in (("page_size", page_size), ("min_step", min_step), ("max_step", max_step)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(name, f"expected a non-negative step number, got {value!r}")
        last = reading.read("run_last_step", {"r": self.id}, self.project)
        if not int(last["n"].iloc[0]):
            return
        end = int(last["last"].iloc[0]) + 1 if max_step is None else min(max_step, int(last["last"].iloc[0]) + 1)
        size = max(1, page_size)
        for low in range(min_step or 0, end, size):  # a page of steps at a time: memory stays bounded
            frame = self._frame(keys, low, min(low + size, end))
            if keys is not None:
                frame = _holding(frame, list(dict.fromkeys(keys)))
            for record in frame.to_dict("records"):
                yield _row(record)

    # --- files and artifacts --------------------------------------------------------------------
    def files(self, names: Optional[list[str]] = None, per_page: int = 50) -> list[File]:
        """The files the run saved (the newest version of each path), by path; only `names` when given."""
        if names is not None and (isinstance(names, str) or not all(isinstance(n, str) for n in names)):
            raise ConfigError("names", f"expected a list of file names, got {names!r}")
        frame = reading.read("run_files", {"r": self.id}, self.project)
        found = [
            File(self, str(r["path"]), str(r["blob"]), int(r["size"]), r["updated_at"]) for _, r in frame.iterrows()
        ]
        return [f for f in found if names is None or f.name in names]

    def file(self, name: str) -> File:
        """The saved file `name`; NotFoundError naming the files the run has otherwise."""
        found = self.files()
        match = next((f for f in found if f.name == name), None)
        if match is None:
            held = ", ".join(f.name for f in found[:20]) or "none"
            raise NotFoundError(f"run {self.id!r} of project {self.project!r} saved no file {name!r} (it has: {held})")
        return match

    def _artifacts(self, direction: str) -> list[Artifact]:
        from tracehouse.tracking.artifacts.store import read_artifact

        frame = reading.read("run_artifacts", {"r": self.id}, self.project)
        specs = [str(a) for d, a in zip(frame["direction"], frame["artifact"], strict=True) if d == direction]
        return [read_artifact(f"{self.project}/{spec}", self.project) for spec in specs]

    def logged_artifacts(self) -> list[Artifact]:
        """The artifact versions this run logged (`run.log_artifact`)."""
        return self._artifacts("output")

    def used_artifacts(self) -> list[Artifact]:
        """The artifact versions this run used (`run.use_artifact`)."""
        return self._artifacts("input")

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)} ({self.state})>"


def _check_keys(keys: Any) -> None:
    if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str) for k in keys)):
        raise ConfigError("keys", f"expected a list of metric names, got {keys!r}")


def _wide(numeric: pd.DataFrame, others: pd.DataFrame) -> pd.DataFrame:
    """One row per step: `_step`, `_timestamp`, then a column per key (numbers from `metrics`, the
    other values parsed from `run_values`)."""
    import pandas as pd

    rows: dict[int, dict[str, Any]] = {}
    stamps: dict[int, Any] = {}
    for step, key, value, stamp in numeric.itertuples(index=False):
        rows.setdefault(int(step), {})[str(key)] = float(value)
        stamps[int(step)] = max(stamps.get(int(step), stamp), stamp)
    for step, key, value, stamp in others.itertuples(index=False):
        parsed = json.loads(value) if isinstance(value, str) else value
        if isinstance(parsed, dict) and parsed.get("_type") == "text":
            parsed = parsed.get("value")
        rows.setdefault(int(step), {})[str(key)] = parsed
        stamps[int(step)] = max(stamps.get(int(step), stamp), stamp)
    if not rows:
        return cast("pd.DataFrame", pd.DataFrame({"_step": pd.Series([], dtype="int64"), "_timestamp": []}))
    ordered = sorted(rows)
    return cast("pd.DataFrame", pd.DataFrame([{"_step": s, "_timestamp": stamps[s], **rows[s]} for s in ordered]))


def _holding(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The rows holding every key, with only those columns (a key never logged: no rows)."""
    if any(k not in frame.columns for k in keys):
        return cast("pd.DataFrame", frame.iloc[0:0].reindex(columns=keys))
    return cast("pd.DataFrame", frame[keys].dropna(how="any"))


def _row(record: Mapping[Any, Any]) -> dict[str, Any]:
    """A history row as W&B gives it: keys not logged at that step left out, `_step` an int."""
    row = {str(k): v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))}
    if "_step" in row:
        row["_step"] = int(row["_step"])
    return row
