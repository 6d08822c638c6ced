"""The process's active run: `th.init()` starts it, `th.log`, `th.finish`, `th.save`, ... act on it.

`init` takes W&B's arguments (project, name, id, config, tags, group, job_type, notes, mode, resume,
dir): a sweep agent's pending trial wins over them, `resume` continues a stored run, and the run
becomes `th.run`. The `Run` itself is `tracking/run.py`.
"""

from __future__ import annotations

import logging
import os
import random
import string
from typing import Any, Mapping, Optional

from tracehouse._errors import ConfigError
from tracehouse.spans.config import _parse_project
from tracehouse.spans.runtime import runtime
from tracehouse.sweeps.trial import note_started, pending_trial
from tracehouse.tracking.artifacts.artifact import Artifact
from tracehouse.tracking.banner import announce
from tracehouse.tracking.config import as_mapping
from tracehouse.tracking.files import restore as restore_file
from tracehouse.tracking.metrics import MetricRule
from tracehouse.tracking.run import Run, current_run, set_current

logger = logging.getLogger("tracehouse")
_ADJECTIVES = ("amber", "brisk", "calm", "dawn", "eager", "fine", "gentle", "hardy", "misty", "quiet", "swift")
_ID_CHARS = string.ascii_lowercase + string.digits
_NOUNS = ("river", "sky", "forest", "meadow", "harbor", "summit", "breeze", "canyon", "glade", "comet")


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
    entity: Optional[str] = None,
    reinit: Any = None,
    settings: Any = None,
    save_code: Optional[bool] = None,
    allow_val_change: bool = False,
    config_exclude_keys: Optional[list[str]] = None,
    config_include_keys: Optional[list[str]] = None,
    fork_from: Optional[str] = None,
    resume_from: Optional[str] = None,
    **ignored: Any,
) -> Run:
    """Start a run (W&B's `wandb.init`, its arguments and `WANDB_*` variables); it becomes `th.run`.

    `resume`: "allow" continues run `id` if it exists (else starts it), "must" requires it, "never"
    refuses an existing one, "auto" (or True) continues `id`, or without an id the last run of this
    project started from this data directory if it did not finish. A resumed run keeps its name,
    config (new keys added) and summary, and logs from its last step + 1.
    `resume_from="<id>?_step=N"` continues run `id` from step N + 1; `fork_from="<id>?_step=N"` starts a
    new run with that run's config, logging from step N + 1 (its history is not copied).

    `mode`: "online" (default, or TRACEHOUSE_MODE / WANDB_MODE; W&B's "dryrun" is "offline"), "offline"
    (records wait in the offline spool until `tracehouse sync`), "disabled" (the same API, nothing
    recorded). `dir`: the run's local file directory (`run.dir`); files left there are saved with
    the run when it finishes. `config` may be a YAML file's path; `config_include_keys` /
    `config_exclude_keys` filter it. `reinit`: a running run is finished first (True, the default),
    returned instead (False, "return_previous"), or left running ("create_new": it is the active run again
    once the new one finishes). `entity` is kept
    with the run as its namespace; `settings` takes `th.Settings(...)` or a dict; `save_code=True`
    saves the main script with the run; `allow_val_change=True` lets config values change.
    `anonymous`, `sync_tensorboard`, `monitor_gym` are accepted and have no effect.

    It prints one line on stderr naming the run and where to look at it (the UI's run page when a
    collector is known); `silent` (TRACEHOUSE_SILENT or WANDB_SILENT) and mode="disabled" print nothing.
    """
    from tracehouse.tracking.wandb_options import resolve

    extra = {"entity": entity, "reinit": reinit, "settings": settings, "save_code": save_code,
             "allow_val_change": allow_val_change, "config_exclude_keys": config_exclude_keys,
             "config_include_keys": config_include_keys, "fork_from": fork_from, "resume_from": resume_from,
             **ignored}  # fmt: skip
    options = resolve({"project": project, "name": name, "id": id, "config": config, "tags": tags, "group": group,
                       "job_type": job_type, "notes": notes, "mode": mode, "resume": resume, "dir": dir},
                      {k: v for k, v in extra.items() if v is not None})  # fmt: skip
    previous = current_run()
    if options.reinit == "return_previous" and previous is not None and previous.state == "running":
        return previous
    run = _start(options, previous if options.reinit == "finish_previous" else None)
    if options.reinit == "create_new" and previous is not None and previous.state == "running":
        run._outer = previous  # active again once this run finishes
    return run


def _start(options: Any, previous: Optional[Run]) -> Run:
    """Create, resume or fork the run `options` describe (after finishing `previous`)."""
    mode, resume, id = _checked_mode(options.mode), _checked_resume(options.resume, options.id), options.id
    values = as_mapping(options.config, "config")
    project = runtime.settings.project if options.project is None else _parse_project("project", options.project)
    trial = pending_trial()
    if trial is not None:
        id = _join_trial(trial, id, project, values)
        project, values, resume = trial.project, {**values, **trial.params}, None
    if options.dir is not None and (not isinstance(options.dir, (str, os.PathLike)) or not str(options.dir)):
        raise ConfigError("dir", f"expected a directory path, got {options.dir!r}")
    disabled = mode == "disabled" or runtime.disabled
    if previous is not None:
        previous.finish()
    stored, forked = _stored_origin(options, project, id, resume, disabled)
    rng = random.Random()
    run_id = stored["run_id"] if stored else id or "".join(rng.choice(_ID_CHARS) for _ in range(8))
    run_dir = options.dir or (
        os.path.join(options.dir_root, "tracehouse", run_id, "files") if options.dir_root else None
    )
    run = Run(
        project=project, run_id=run_id, name=options.name or (stored["name"] if stored else _random_name(rng)),
        config={**(stored["config"] if stored else forked or {}), **values}, tags=options.tags or [],
        group=options.group or "", job_type=options.job_type or "", notes=options.notes or "", disabled=disabled,
        offline=mode == "offline", dir=None if run_dir is None else os.fspath(run_dir), entity=options.entity,
    )  # fmt: skip
    run.resumed = bool(stored)
    if options.allow_val_change:
        run.config.allow_changes()
    if trial is not None:
        run.sweep_id = trial.sweep_id
        run.config._lock(trial.params)
        note_started(run.id)
    _continue_from(run, stored, options)
    return _begin(run, disabled, options)


def _stored_origin(
    options: Any, project: str, run_id: Optional[str], resume: Optional[str], disabled: bool
) -> tuple[Optional[dict[str, Any]], Optional[dict[str, Any]]]:
    """(the stored run to continue, the config of a run to fork from) for `options`."""
    if disabled:
        return None, None
    if options.resume_from is not None:
        return _resumable(project, options.resume_from[0], "must"), None
    if options.fork_from is not None:
        source = _stored_run(project, options.fork_from[0])
        if source is None:
            raise ConfigError("fork_from", f"run {options.fork_from[0]!r} does not exist in project {project!r}")
        return None, dict(source["config"])
    return (None if resume is None else _resumable(project, run_id, resume)), None


def _continue_from(run: Run, stored: Optional[dict[str, Any]], options: Any) -> None:
    if stored:
        run.summary._data.update(stored["summary"])
        run.step, run._started_ns = stored["next_step"], stored["created_ns"]
    origin = options.resume_from or options.fork_from
    if origin is not None:
        run.step = origin[1] + 1  # W&B: logging continues after the step it forked or rewound to
        run.forked_from = f"{origin[0]}?_step={origin[1]}" if options.fork_from else ""


def _begin(run: Run, disabled: bool, options: Any) -> Run:
    if not disabled:
        _prepare_dir(run)
    set_current(run)
    if _finish_at_exit not in runtime.flush_hooks:
        runtime.flush_hooks.append(_finish_at_exit)
    run._state_changed()
    _link_current_span(run)
    if options.save_code and not disabled:
        run.log_code(include_main_only=True)
    announce(run, resumed=run.resumed, silent=options.silent)
    return run


MODE_FILE = "mode"  # in the data dir: what `tracehouse offline` / `online` chose for runs started there


def saved_mode() -> Optional[str]:
    """The mode `tracehouse offline` saved in the data dir (W&B's `wandb offline`), or None."""
    try:
        saved = (runtime.settings.data_dir / MODE_FILE).read_text().strip()
    except OSError:
        return None
    return saved if saved in ("online", "offline", "disabled") else None


def _checked_mode(mode: Optional[str]) -> str:
    mode = mode or os.environ.get("TRACEHOUSE_MODE") or saved_mode() or "online"
    mode = {"dryrun": "offline", "run": "online", "shared": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError("mode", f"expected 'online', 'offline' or 'disabled', got {mode!r}")
    return mode


def _checked_resume(resume: Any, run_id: Optional[str]) -> Optional[str]:
    if run_id is not None and (not isinstance(run_id, str) or not run_id or any(c in run_id for c in "/\\:")):
        raise ConfigError("id", f"expected a non-empty string without / \\ :, got {run_id!r}")
    resume = {True: "auto", False: None}.get(resume, resume) if isinstance(resume, bool) else resume
    if resume not in (None, "allow", "must", "never", "auto"):
        raise ConfigError("resume", f"expected 'allow', 'must', 'never', 'auto', True or None, got {resume!r}")
    if resume == "must" and run_id is None:
        raise ConfigError("resume", "resume='must' needs the id of the run to continue")
    return resume  # type: ignore[no-any-return]


def _prepare_dir(run: Run) -> None:
    """Remember the run for resume="auto" and save what is left in `run.dir` when it finishes."""
    _remember(run)
    try:
        os.makedirs(run.dir, exist_ok=True)
        run._files.save(os.path.join(run.dir, "**", "*"), base_path=run.dir, policy="end")
    except OSError as error:
        logger.warning("tracehouse: run.dir %s cannot be created (%s); files left there are not saved", run.dir,
                       error)  # fmt: skip


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

    run = current_run()
    if final and run is not None:
        run.finish(exit_code=1 if getattr(sys, "last_value", None) is not None else 0)


def _require() -> Run:
    run = current_run()
    if run is None:
        raise ConfigError("run", "no active run: call th.init() first")
    return run


def log(data: Optional[Mapping[str, Any]] = None, step: Optional[int] = None, commit: Optional[bool] = None) -> None:
    """`th.log(...)`: log to the active run."""
    _require().log(data, step=step, commit=commit)


def define_metric(
    name: str, step_metric: Optional[str] = None, summary: Optional[str] = None, goal: Optional[str] = None,
    step_sync: Optional[bool] = None, hidden: Optional[bool] = None,
) -> MetricRule:  # fmt: skip
    """`th.define_metric(...)` on the active run."""
    return _require().define_metric(name, step_metric=step_metric, summary=summary, goal=goal, step_sync=step_sync,
                                    hidden=hidden)  # fmt: skip


def finish(exit_code: Optional[int] = None, quiet: Optional[bool] = None) -> None:
    """`th.finish()`: finish the active run (nothing happens without one); `quiet` is W&B's and
    changes nothing (finishing prints nothing here)."""
    run = current_run()
    if run is not None:
        run.finish(exit_code)


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

    run = current_run()
    if run is not None and project is None:
        return run.use_artifact(artifact_or_name, type=type)
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
