"""`th.init()`: an experiment run with W&B's everyday API, stored beside the traces.

`run.log(data, step=, commit=)` follows W&B's step rules: without `step` every call is a new step
(or accumulates with `commit=False`); with `step` the data joins that step, a higher step commits
the pending one first, and a lower step is dropped with a warning. Numbers land in `metrics`
(one row per key and step); the run's state, config and summary in `runs`. Records go through the
spool like spans, so a run costs the caller a queue append per step. Spans started while a run is
active carry its id (`run_id`), so one query joins a run's metrics and its LLM calls.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import abc
from pathlib import Path
from typing import Any, Mapping, Optional

from tracehouse._deferred import critical
from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse.collector.store.processes import this_host
from tracehouse.collector.store.rows.runs import table_summary
from tracehouse.spans.runtime import runtime
from tracehouse.sweeps.trial import RunStopped, on_stop_signal
from tracehouse.tracking.artifacts.artifact import Artifact
from tracehouse.tracking.blobs import blob_store
from tracehouse.tracking.config import Config, Summary, flatten
from tracehouse.tracking.files import RunFiles
from tracehouse.tracking.files import restore as restore_file
from tracehouse.tracking.media import to_value
from tracehouse.tracking.metrics import MetricRule, MetricRules, is_removal
from tracehouse.tracking.run_wandb import WandbRunMixin

logger = logging.getLogger("tracehouse")
_lock = threading.Lock()
_current: Optional[Run] = None
SUMMARY_SECONDS = 1.0  # while logging, the summary reaches the store at most this often (and at finish)
HEARTBEAT_SECONDS = 30.0  # a running run rewrites its record this often; th.runs() calls it crashed after 4 misses


def _digest_only(data: bytes) -> tuple[str, int]:
    import hashlib

    return hashlib.sha256(data).hexdigest(), len(data)


def _number(value: Any) -> Any:
    """A loggable number (float, or "nan"/"inf"/"-inf" for JSON), or None when `value` is not one."""
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
        if not callable(item) or getattr(value, "ndim", 0) != 0:
            return None
        try:
            number = float(item())
        except (TypeError, ValueError):
            return None
    if math.isfinite(number):
        return number
    return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")


class Run(WandbRunMixin):
    """One experiment run: `log`, `config`, `summary`, `finish`; a context manager (`with th.init():`).

    W&B's other run attributes and methods (`url`, `path`, `entity`, `get_url()`, `log_code()`,
    `alert()`, `status()`, ...) come from WandbRunMixin (run_wandb.py)."""

    def __init__(self, project: str, run_id: str, name: str, config: dict[str, Any], tags: list[str],
                 group: str, job_type: str, notes: str, disabled: bool, offline: bool = False,
                 dir: Optional[str] = None, entity: str = "") -> None:  # fmt: skip
        self.project, self.id, self.name, self.entity = project, run_id, name, entity
        self.resumed, self.forked_from = False, ""
        self.tags, self.group, self.job_type, self.notes = tags, group, job_type, notes
        self.disabled, self.offline = disabled, offline
        self.mode = "disabled" if disabled else "offline" if offline else "online"
        self.dir = str(Path(dir) if dir else runtime.settings.data_dir / "runs" / run_id / "files")
        self.state = "running"
        self.sweep_id = ""
        self._stop_requested: Optional[str] = None  # a sweep stopped this trial: the next log raises
        self._outer: Optional[Run] = None  # the run active when this one started with reinit="create_new"
        self.step = 0  # the step the next committed row gets
        self.config = Config(config, self._state_changed)
        self.summary = Summary({}, self._state_changed)
        self._pending: dict[str, Any] = {}
        self._started_ns = time.time_ns()
        self._started = time.monotonic()
        self._recorded_at = self._started  # when the run's record (state, summary) was last written
        self._warned: set[str] = set()
        self._metrics = MetricRules()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._files = RunFiles(project, run_id, self._submit, offline)
        if not disabled:
            threading.Thread(target=self._heartbeat, name=f"tracehouse-run-{run_id}", daemon=True).start()

    # --- logging --------------------------------------------------------------------------------
    def log(
        self, data: Optional[Mapping[str, Any]] = None, step: Optional[int] = None, commit: Optional[bool] = None
    ) -> None:
        """Log a dict of values at the current step (W&B's step and commit rules; no data commits the step)."""
        data = {} if data is None else data
        if type(data) is not dict and not isinstance(data, abc.Mapping):
            raise ConfigError("data", f"run.log takes a dict of values, got {type(data).__name__}")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise ConfigError("step", f"expected a non-negative integer, got {step!r}")
        if self.state != "running":
            raise ConfigError("run", f"run {self.id} is {self.state}: log before finish()")
        if self._stop_requested is not None:
            raise RunStopped(f"run {self.id} was stopped by its sweep ({self._stop_requested})")
        values = flatten(data)
        with self._lock:
            if step is not None:
                if step < self.step:
                    logger.warning("tracehouse: step %d is below the run's current step %d; data dropped",
                                   step, self.step)  # fmt: skip
                    return
                if step > self.step:
                    self._commit()
                    self.step = step
                commit = bool(commit)
            elif commit is None:
                commit = True
            self._pending.update(values)
            if commit:
                self._commit()

    def _commit(self) -> None:
        if not self._pending:
            return
        with critical:  # a sweep's SIGTERM waits until the step's values are handed to the sink
            self._commit_pending()

    def _commit_pending(self) -> None:
        pending, self._pending = self._pending, {}
        numbers, others = {}, {}
        for key, value in pending.items():
            number = _number(value)
            if number is None:
                others[key] = value
            else:
                numbers[key] = number
        if others:  # stored forms replace them in the summary; values that could not be stored are left out
            forms = self._store_values(others)
            pending = {k: forms[k] if k in others else v for k, v in pending.items() if k not in others or k in forms}
        if self._metrics.exact or self._metrics.patterns:
            self.summary._logged(self._metrics.summarise(pending, numbers), is_removal)
        else:
            self.summary._logged(pending, None)
        if numbers and not self.disabled:
            sink = runtime.offline_sink() if self.offline else runtime.sink()
            sink.submit({"type": "metrics", "project": self.project, "run_id": self.id, "step": self.step,
                         "time_ns": time.time_ns(), "values": numbers})  # fmt: skip
        self.step += 1
        now = time.monotonic()
        if now - self._recorded_at >= SUMMARY_SECONDS:  # a SIGKILLed run resumes with its summary (W&B does)
            self._recorded_at = now
            self._state_changed()

    def _store_values(self, others: dict[str, Any]) -> dict[str, Any]:
        """Non-numeric values to `run_values` (media to the blob store); their summary forms by key."""
        put = blob_store(local=self.offline).put_bytes if not self.disabled else _digest_only
        stored, summary = {}, {}
        for key, value in others.items():
            try:
                converted = to_value(value, put)
            except Exception as error:  # a bad image, an unencodable table: lose this value, not the step
                converted, reason = None, f"{type(error).__name__}: {error}"
            else:
                reason = f"{type(value).__name__} is not a type run.log stores"
            if converted is None:
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning("tracehouse: %r not logged (%s); log numbers, strings, arrays, th.Table, "
                                   "th.Histogram, th.Image or another media or chart type", key, reason)  # fmt: skip
                continue
            stored[key] = converted
            kind = converted["_type"]
            summary[key] = converted["value"] if kind in ("text", "json") else (
                table_summary(converted) if kind == "table" else converted
            )  # fmt: skip
        if stored:
            self._submit({"type": "values", "project": self.project, "run_id": self.id, "step": self.step,
                          "time_ns": time.time_ns(), "values": stored})  # fmt: skip
        return summary

    def _submit(self, record: dict[str, Any]) -> None:
        if not self.disabled:
            (runtime.offline_sink() if self.offline else runtime.sink()).submit(record)

    # --- files and artifacts --------------------------------------------------------------------
    def save(self, glob_str: str, base_path: Optional[str] = None, policy: str = "live") -> list[str]:
        """Attach files matching `glob_str` to the run (W&B's policies: "live", "now", "end");
        returns their paths inside the run."""
        if self.disabled:
            return []
        return self._files.save(glob_str, base_path, policy)

    def log_artifact(
        self,
        artifact_or_path: Any,
        name: Optional[str] = None,
        type: Optional[str] = None,
        aliases: Optional[list[str]] = None,
    ) -> Artifact:
        """Store an artifact version logged by this run (`latest` plus `aliases`); returns the artifact."""
        from tracehouse.tracking.artifacts.store import log_artifact

        if self.disabled:  # the same API, nothing stored
            if isinstance(artifact_or_path, Artifact):
                return artifact_or_path
            return Artifact(name or Path(artifact_or_path).name, type or "unspecified")
        blobs = blob_store(local=self.offline)
        return log_artifact(self._submit, blobs, self.project, self.id, artifact_or_path, name, type, aliases)

    def use_artifact(self, artifact_or_name: Any, type: Optional[str] = None) -> Artifact:
        """The stored version `"name:alias"` / `"name:v3"` names (or a logged Artifact), recorded as
        an input of this run (lineage)."""
        from tracehouse.tracking.artifacts.store import read_artifact, use_record

        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact.version is None:
                artifact.wait()
        else:
            artifact = read_artifact(artifact_or_name, self.project, type)
        self._submit(use_record(artifact.project or self.project, artifact, self.id))
        return artifact

    def link_artifact(self, artifact: Artifact, target_path: str, aliases: Optional[list[str]] = None) -> Artifact:
        """Record `artifact`'s version in the collection `target_path` ("[entity/][project/]collection")."""
        from tracehouse.tracking.artifacts.models import link_artifact

        return link_artifact(self, artifact, target_path, aliases)

    def log_model(self, path: Any, name: Optional[str] = None, aliases: Optional[list[str]] = None) -> Artifact:
        """Log a model file or directory as an artifact of type "model" (default name `run-<id>-<basename>`)."""
        from tracehouse.tracking.artifacts.models import log_model

        return log_model(self, path, name, aliases)

    def use_model(self, name: str) -> str:
        """Use the model artifact `name` ("name:alias"), download it and return the local path."""
        from tracehouse.tracking.artifacts.models import use_model

        return use_model(self, name)

    def define_metric(
        self,
        name: str,
        step_metric: Optional[str] = None,
        summary: Optional[str] = None,
        goal: Optional[str] = None,
        step_sync: Optional[bool] = None,
        hidden: Optional[bool] = None,
    ) -> MetricRule:
        """How `name` (or a glob such as "val/*") is summarised: summary="min,max,mean,last,best,first,none",
        `goal` for "best"; `step_metric` is the key's x-axis (W&B's define_metric). The definition is
        stored with the run (`run_values`, key `_define_metric/<name>`), so every reader sees it."""
        with self._lock:
            rule = self._metrics.define(name, summary, goal, step_metric, step_sync, hidden)
        self._submit({"type": "values", "project": self.project, "run_id": self.id, "step": self.step,
                      "time_ns": time.time_ns(), "values": {f"_define_metric/{name}": rule.as_value()}})  # fmt: skip
        return rule

    # --- state ------------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """While running, rewrite the run's record now and then: a run whose beats stop has crashed."""
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            if self.state == "running":
                self._state_changed()

    def _state_changed(self) -> None:
        self._submit(self._record())

    def _record(self) -> dict[str, Any]:
        now = time.time_ns()
        return {
            "type": "run", "project": self.project, "run_id": self.id, "name": self.name, "state": self.state,
            "config": self.config.as_dict(), "summary": self.summary.as_dict(), "tags": self.tags,
            "group": self.group, "job_type": self.job_type, "notes": self.notes, "sweep_id": self.sweep_id,
            "entity": self.entity, "created_ns": self._started_ns,
            "updated_ns": now, "heartbeat_ns": now, "version": now, "host": this_host(), "pid": os.getpid(),
        }  # fmt: skip

    def finish(self, exit_code: Optional[int] = None) -> None:
        """End the run (`failed` for a non-zero exit code); its records are flushed. Twice is harmless."""
        global _current
        if self.state == "running":
            self.unwatch()  # no hook logs into a finished run
        with self._lock:
            if self.state != "running":
                return
            self._commit()
        try:
            self._files.finish()
        except Exception:
            log_internal_error("saving the run's files")
        with self._lock:
            self.state = self._stop_requested or ("failed" if exit_code else "finished")
        self._stopped.set()
        self._state_changed()
        outer = self._outer if self._outer is not None and self._outer.state == "running" else None
        with _lock:
            if _current is self:  # a run started beside another (reinit="create_new") hands it back
                _current = outer
                runtime.active_run_id = outer.id if outer is not None and not outer.disabled else None
        if not self.disabled:
            runtime.flush()

    def restore(self, name: str, root: Optional[str] = None, replace: bool = False) -> str:
        """Download a file this run saved (see `th.restore`)."""
        return restore_file(name, self.id, self.project, root, replace)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish(exit_code=1 if exc_type is not None else 0)

    def __repr__(self) -> str:
        return f"Run(project={self.project!r}, id={self.id!r}, name={self.name!r}, state={self.state!r})"


def _mark_current_run_stopped() -> None:
    run = _current
    if run is not None:
        run._stop_requested = "stopped"


on_stop_signal(_mark_current_run_stopped)


def current_run() -> Optional[Run]:
    """The active run (`th.run`), or None."""
    return _current


def set_current(run: Optional[Run]) -> None:
    """Make `run` the active run (`th.run`); spans started meanwhile carry its id."""
    global _current
    with _lock:
        _current = run
        runtime.active_run_id = run.id if run is not None and not run.disabled else None
