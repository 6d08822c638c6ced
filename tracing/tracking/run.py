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
import random
import string
import threading
import time
from collections import abc
from pathlib import Path
from typing import Any, Mapping, Optional

from tracehouse._errors import ConfigError
from tracehouse._internal_errors import log_internal_error
from tracehouse.collector.store.rows.runs import table_summary
from tracehouse.spans.config import _parse_project
from tracehouse.spans.runtime import runtime
from tracehouse.sweeps.trial import RunStopped, note_started, on_stop_signal, pending_trial
from tracehouse.tracking.artifacts.artifact import Artifact
from tracehouse.tracking.blobs import blob_store
from tracehouse.tracking.config import Config, Summary, as_mapping, flatten
from tracehouse.tracking.files import RunFiles
from tracehouse.tracking.files import restore as restore_file
from tracehouse.tracking.media import to_value
from tracehouse.tracking.metrics import MetricRule, MetricRules, is_removal

logger = logging.getLogger("tracehouse")
_ADJECTIVES = ("amber", "brisk", "calm", "dawn", "eager", "fine", "gentle", "hardy", "misty", "quiet", "swift")
_NOUNS = ("river", "sky", "forest", "meadow", "harbor", "summit", "breeze", "canyon", "glade", "comet")
_ID_CHARS = string.ascii_lowercase + string.digits
_lock = threading.Lock()
_current: Optional[Run] = None
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


class Run:
    """One experiment run: `log`, `config`, `summary`, `finish`; a context manager (`with th.init():`)."""

    def __init__(self, project: str, run_id: str, name: str, config: dict[str, Any], tags: list[str],
                 group: str, job_type: str, notes: str, disabled: bool, offline: bool = False,
                 dir: Optional[str] = None) -> None:  # fmt: skip
        self.project, self.id, self.name = project, run_id, name
        self.tags, self.group, self.job_type, self.notes = tags, group, job_type, notes
        self.disabled, self.offline = disabled, offline
        self.mode = "disabled" if disabled else "offline" if offline else "online"
        self.dir = str(Path(dir) if dir else runtime.settings.data_dir / "runs" / run_id / "files")
        self.state = "running"
        self.sweep_id = ""
        self._stop_requested: Optional[str] = None  # a sweep stopped this trial: the next log raises
        self.step = 0  # the step the next committed row gets
        self.config = Config(config, self._state_changed)
        self.summary = Summary({}, self._state_changed)
        self._pending: dict[str, Any] = {}
        self._started_ns = time.time_ns()
        self._started = time.monotonic()
        self._warned: set[str] = set()
        self._metrics = MetricRules()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._files = RunFiles(project, run_id, self._submit, offline)
        if not disabled:
            threading.Thread(target=self._heartbeat, name=f"tracehouse-run-{run_id}", daemon=True).start()

    # --- logging --------------------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: Optional[int] = None, commit: Optional[bool] = None) -> None:
        """Log a dict of values at the current step (W&B's step and commit rules)."""
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
                                   "th.Histogram or th.Image", key, reason)  # fmt: skip
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

    def define_metric(
        self,
        name: str,
        step_metric: Optional[str] = None,
        summary: Optional[str] = None,
        goal: Optional[str] = None,
    ) -> MetricRule:
        """How `name` (or a glob such as "val/*") is summarised: summary="min,max,mean,last,best,first,none",
        `goal` for "best"; `step_metric` is kept as the key's x-axis (W&B's define_metric)."""
        with self._lock:
            return self._metrics.define(name, summary, goal, step_metric)

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
            "created_ns": self._started_ns,
            "updated_ns": now, "heartbeat_ns": now, "version": now,
        }  # fmt: skip

    def finish(self, exit_code: Optional[int] = None) -> None:
        """End the run (`failed` for a non-zero exit code); its records are flushed. Twice is harmless."""
        global _current
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
        with _lock:
            if _current is self:
                _current = None
                runtime.active_run_id = None
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


def init(
    project: Optional[str] = None,
    name: Optional[str] = None,
    id: Optional[str] = None,
    config: Any = None,
    tags: Optional[list[str]] = None,
    group: Optional[str] = None,
    job_type: Optional[str] = None,
    notes: Optional[str] = None,
    mode: Optional[str] = None,
    resume: Any = None,
    dir: Optional[str] = None,
) -> Run:
    """Start a run (W&B's `wandb.init`); it becomes `th.run`, and a running one is finished first.

    `resume`: "allow" continues run `id` if it exists (else starts it), "must" requires it, "never"
    refuses an existing one, "auto" (or True) continues `id`, or without an id the last run of this
    project started from this data directory if it did not finish. A resumed run keeps its name,
    config (new keys added) and summary, and logs from its last step + 1.

    `mode`: "online" (default, or TRACEHOUSE_MODE), "offline" (records wait in the offline spool until
    `tracehouse sync`), "disabled" (the same API, nothing recorded). `dir`: the run's local file
    directory (`run.dir`); files left there are saved with the run when it finishes.
    """
    global _current
    mode = mode or os.environ.get("TRACEHOUSE_MODE") or "online"
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError("mode", f"expected 'online', 'offline' or 'disabled', got {mode!r}")
    if id is not None and (not isinstance(id, str) or not id or any(c in id for c in "/\\:")):
        raise ConfigError("id", f"expected a non-empty string without / \\ :, got {id!r}")
    resume = {True: "auto", False: None}.get(resume, resume) if isinstance(resume, bool) else resume
    if resume not in (None, "allow", "must", "never", "auto"):
        raise ConfigError("resume", f"expected 'allow', 'must', 'never', 'auto', True or None, got {resume!r}")
    if resume == "must" and id is None:
        raise ConfigError("resume", "resume='must' needs the id of the run to continue")
    values = as_mapping(config, "config")
    project = runtime.settings.project if project is None else _parse_project("project", project)
    trial = pending_trial()
    if trial is not None:
        id = _join_trial(trial, id, project, values)
        project, values, resume = trial.project, {**values, **trial.params}, None
    if dir is not None and (not isinstance(dir, (str, os.PathLike)) or not str(dir)):
        raise ConfigError("dir", f"expected a directory path, got {dir!r}")
    disabled = mode == "disabled" or runtime.disabled
    previous = _current
    if previous is not None:
        previous.finish()
    stored = None if disabled or resume is None else _resumable(project, id, resume)
    rng = random.Random()
    run = Run(
        project=project,
        run_id=stored["run_id"] if stored else id or "".join(rng.choice(_ID_CHARS) for _ in range(8)),
        name=name or (stored["name"] if stored else _random_name(rng)),
        config={**(stored["config"] if stored else {}), **values}, tags=[str(t) for t in tags or []],
        group=group or "", job_type=job_type or "", notes=notes or "", disabled=disabled,
        offline=mode == "offline", dir=None if dir is None else os.fspath(dir),
    )  # fmt: skip
    if trial is not None:
        run.sweep_id = trial.sweep_id
        run.config._lock(trial.params)
        note_started(run.id)
    if stored:
        run.summary._data.update(stored["summary"])
        run.step, run._started_ns = stored["next_step"], stored["created_ns"]
    if not disabled:
        _remember(run)
        try:
            os.makedirs(run.dir, exist_ok=True)
            run._files.save(os.path.join(run.dir, "**", "*"), base_path=run.dir, policy="end")
        except OSError as error:
            logger.warning("tracehouse: run.dir %s cannot be created (%s); files left there are not saved",
                           run.dir, error)  # fmt: skip
    with _lock:
        _current = run
        if not run.disabled:
            runtime.active_run_id = run.id
        if _finish_at_exit not in runtime.flush_hooks:
            runtime.flush_hooks.append(_finish_at_exit)
    run._state_changed()
    _link_current_span(run)
    return run


def _join_trial(trial: Any, run_id: Optional[str], project: str, values: dict[str, Any]) -> str:
    """A run started by a sweep agent is the agent's trial: its id, project and parameters win."""
    if run_id is not None and run_id != trial.run_id:
        logger.warning("tracehouse: id %r ignored: this run is trial %s of sweep %s", run_id, trial.run_id,
                       trial.sweep_id)  # fmt: skip
    if project != trial.project:
        logger.warning("tracehouse: project %r ignored: sweep %s runs in project %r", project, trial.sweep_id,
                       trial.project)  # fmt: skip
    for key in sorted(k for k in values if k in trial.params and values[k] != trial.params[k]):
        logger.warning("tracehouse: config %r = %r from the script is overridden by the sweep's %r", key, values[key],
                       trial.params[key])  # fmt: skip
    return str(trial.run_id)


def _random_name(rng: random.Random) -> str:
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1, 100)}"


def _resumable(project: str, run_id: Optional[str], resume: str) -> Optional[dict[str, Any]]:
    """The stored run to continue, or None to start a new one (errors for "must" / "never")."""
    remembered = _remembered(project) if resume == "auto" else None
    if run_id is None:  # "auto" without an id: the last run started here, unless it finished
        run_id = remembered
        if run_id is None:
            return None
    found = _stored_run(project, run_id)
    if resume == "must" and found is None:
        raise ConfigError("resume", f"run {run_id!r} does not exist in project {project!r} (resume='must')")
    if resume == "never" and found is not None:
        raise ConfigError("resume", f"run {run_id!r} already exists in project {project!r} (resume='never')")
    if found is not None and resume == "auto" and found["state"] == "finished" and remembered == run_id:
        return None  # the last run here finished: "auto" starts a new one
    return found


def _stored_run(project: str, run_id: str) -> Optional[dict[str, Any]]:
    import json

    from tracehouse.reads.reading import read

    runs = read("run", {"r": run_id}, project)
    if runs.empty:
        return None
    steps = read("run_last_step", {"r": run_id}, project)
    row = runs.iloc[0]
    return {
        "run_id": run_id, "name": str(row["name"]), "state": str(row["state"]),
        "config": json.loads(row["config"] or "{}"), "summary": json.loads(row["summary"] or "{}"),
        "created_ns": int(row["created_ns"]),
        "next_step": int(steps["last"].iloc[0]) + 1 if int(steps["n"].iloc[0]) else 0,
    }  # fmt: skip


def _remember_path(project: str) -> Any:
    import hashlib

    return runtime.settings.data_dir / "runs" / f"last-{hashlib.sha1(project.encode()).hexdigest()[:16]}"


def _remember(run: Run) -> None:
    """Note the run id for resume="auto" (best effort: a read-only data dir only loses auto-resume)."""
    try:
        path = _remember_path(run.project)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run.id)
    except OSError:
        pass


def _remembered(project: str) -> Optional[str]:
    try:
        return _remember_path(project).read_text().strip() or None
    except OSError:
        return None


def _link_current_span(run: Run) -> None:
    """A run started inside a traced function: that function's span belongs to the run too."""
    from opentelemetry import trace as otel_trace

    from tracehouse import _semconv as sc
    from tracehouse.spans.span import TraceSpan

    span = otel_trace.get_current_span()
    if isinstance(span, TraceSpan) and not run.disabled:
        span.attributes[sc.RUN_ID] = run.id


def _finish_at_exit(final: bool) -> None:
    """At exit, a run still running is finished (failed when the program ended on an uncaught error)."""
    import sys

    run = _current
    if final and run is not None:
        run.finish(exit_code=1 if getattr(sys, "last_value", None) is not None else 0)


def _mark_current_run_stopped() -> None:
    run = _current
    if run is not None:
        run._stop_requested = "stopped"


on_stop_signal(_mark_current_run_stopped)


def current_run() -> Optional[Run]:
    """The active run (`th.run`), or None."""
    return _current


def _require() -> Run:
    if _current is None:
        raise ConfigError("run", "no active run: call th.init() first")
    return _current


def log(data: Mapping[str, Any], step: Optional[int] = None, commit: Optional[bool] = None) -> None:
    """`th.log(...)`: log to the active run."""
    _require().log(data, step=step, commit=commit)


def define_metric(
    name: str, step_metric: Optional[str] = None, summary: Optional[str] = None, goal: Optional[str] = None
) -> MetricRule:
    """`th.define_metric(...)` on the active run."""
    return _require().define_metric(name, step_metric=step_metric, summary=summary, goal=goal)


def finish(exit_code: Optional[int] = None) -> None:
    """`th.finish()`: finish the active run (nothing happens without one)."""
    if _current is not None:
        _current.finish(exit_code)


def save(glob_str: str, base_path: Optional[str] = None, policy: str = "live") -> list[str]:
    """`th.save(...)`: attach files to the active run."""
    return _require().save(glob_str, base_path=base_path, policy=policy)


def log_artifact(
    artifact_or_path: Any, name: Optional[str] = None, type: Optional[str] = None, aliases: Optional[list[str]] = None
) -> Artifact:
    """`th.log_artifact(...)`: log an artifact version from the active run."""
    return _require().log_artifact(artifact_or_path, name=name, type=type, aliases=aliases)


def use_artifact(artifact_or_name: Any, type: Optional[str] = None, project: Optional[str] = None) -> Artifact:
    """`th.use_artifact("name:alias")`: a stored version, recorded as an input of the active run (when
    there is one; without a run it is only read)."""
    from tracehouse.tracking.artifacts.store import read_artifact

    if _current is not None and project is None:
        return _current.use_artifact(artifact_or_name, type=type)
    if isinstance(artifact_or_name, Artifact):
        return artifact_or_name
    return read_artifact(artifact_or_name, project or runtime.settings.project, type)


def restore(name: str, run_path: Optional[str] = None, replace: bool = False, root: Optional[str] = None) -> str:
    """Download a file saved with `run.save` (W&B's `wandb.restore`): `run_path` is "run_id" or
    "project/run_id" (default: the active run); returns the local path."""
    if run_path is None:
        run = _require()
        project, run_id = run.project, run.id
    else:
        project, _, run_id = run_path.rpartition("/") if isinstance(run_path, str) else ("", "", "")
        project = project or runtime.settings.project
    if not run_id:
        raise ConfigError("run_path", f"expected 'run_id' or 'project/run_id', got {run_path!r}")
    return restore_file(name, run_id, project, root, replace)
