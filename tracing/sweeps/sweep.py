"""`th.sweep(...)` and reading sweeps: `th.sweep_status`, `th.sweep_results`, `th.param_importance`.

The controller runs where the store is written: in this process for the embedded store (reads
catch up with the spool first, so finished trials count), or in the collector when an endpoint is
set (then agents on many machines share a sweep). See `tracing/sweeps/agent.py` for `th.agent`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast
from urllib.parse import quote

from tracehouse._errors import ConfigError
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    import pandas as pd


class SweepBackend(Protocol):
    """The controller's operations, here or at a collector."""

    def create(self, project: str, config: dict[str, Any]) -> str: ...
    def next_trial(self, project: str, sweep_id: str, agent_id: str, host: str, pid: int) -> dict[str, Any]: ...
    def heartbeat(
        self, project: str, sweep_id: str, agent_id: str, running: list[str], host: str, pid: int
    ) -> dict[str, Any]: ...
    def control(self, project: str, sweep_id: str, action: str) -> str: ...
    def status(self, project: str, sweep_id: str) -> dict[str, Any]: ...


class LocalSweeps:
    """The controller of the store's owner: this process for the embedded store it holds (or a
    ClickHouse server), else the process that holds it. The spool is ingested first, one caller at
    a time (an agent's heartbeat thread and its loop take turns)."""

    @staticmethod
    def _call(method: str, *args: Any) -> Any:
        from tracehouse.reads.reading import sweep_call

        return sweep_call(method, list(args))

    def create(self, project: str, config: dict[str, Any]) -> str:
        return cast(str, self._call("create", project, config))

    def next_trial(self, project: str, sweep_id: str, agent_id: str, host: str, pid: int) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("next_trial", project, sweep_id, agent_id, host, pid))

    def heartbeat(
        self, project: str, sweep_id: str, agent_id: str, running: list[str], host: str, pid: int
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("heartbeat", project, sweep_id, agent_id, running, host, pid))

    def control(self, project: str, sweep_id: str, action: str) -> str:
        return cast(str, self._call("control", project, sweep_id, action))

    def status(self, project: str, sweep_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("status", project, sweep_id))


class RemoteSweeps:
    """The controller of the collector at the configured endpoint."""

    @staticmethod
    def _call(method: str, path: str, payload: Optional[dict[str, Any]] = None) -> Any:
        from tracehouse.reads import remote as _remote

        return _remote.call_json(method, path, payload)

    def create(self, project: str, config: dict[str, Any]) -> str:
        return str(self._call("POST", "/api/v1/sweeps", {"project": project, "config": config})["sweep_id"])

    def next_trial(self, project: str, sweep_id: str, agent_id: str, host: str, pid: int) -> dict[str, Any]:
        body = {"project": project, "agent_id": agent_id, "host": host, "pid": pid}
        return cast("dict[str, Any]", self._call("POST", f"/api/v1/sweeps/{quote(sweep_id)}/next", body))

    def heartbeat(
        self, project: str, sweep_id: str, agent_id: str, running: list[str], host: str, pid: int
    ) -> dict[str, Any]:
        body = {"project": project, "agent_id": agent_id, "running": running, "host": host, "pid": pid}
        return cast("dict[str, Any]", self._call("POST", f"/api/v1/sweeps/{quote(sweep_id)}/heartbeat", body))

    def control(self, project: str, sweep_id: str, action: str) -> str:
        body = {"project": project, "action": action}
        return str(self._call("POST", f"/api/v1/sweeps/{quote(sweep_id)}/control", body)["state"])

    def status(self, project: str, sweep_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("GET", f"/api/v1/sweeps/{quote(sweep_id)}?project={quote(project)}"))


def backend() -> SweepBackend:
    """Where the controller is: the collector when an endpoint is set, else this process."""
    return RemoteSweeps() if runtime.settings.endpoint else LocalSweeps()


def load_config(config_or_path: Any) -> dict[str, Any]:
    """A sweep config from a dict or a YAML (or JSON) file."""
    if isinstance(config_or_path, dict):
        return config_or_path
    if isinstance(config_or_path, (str, os.PathLike)):
        path = Path(config_or_path)
        if not path.is_file():
            raise ConfigError("config", f"{str(path)!r} is not a file (give a dict or a YAML file)")
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ConfigError("config", f"{path} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError("config", f"{path} does not hold a mapping of sweep settings")
        return loaded
    raise ConfigError("config", f"expected a dict or a YAML file path, got {type(config_or_path).__name__}")


def _project(project: Optional[str]) -> str:
    from tracehouse.spans.config import _parse_project

    return runtime.settings.project if project is None else _parse_project("project", project)


def check_sweep_id(sweep_id: Any) -> str:
    if not isinstance(sweep_id, str) or not sweep_id or "/" in sweep_id:
        raise ConfigError("sweep_id", f"expected the id `th.sweep` returned, got {sweep_id!r}")
    return sweep_id


def sweep_path(sweep_id: Any, project: Optional[str]) -> tuple[str, Optional[str]]:
    """(sweep id, project) from W&B's "entity/project/sweep_id", "project/sweep_id" or a bare id."""
    if isinstance(sweep_id, str) and "/" in sweep_id:
        parts = sweep_id.split("/")
        if len(parts) in (2, 3) and all(parts):
            return parts[-1], project or parts[-2]
    return check_sweep_id(sweep_id), project


def sweep(
    sweep: Any = None,
    project: Optional[str] = None,
    entity: Optional[str] = None,
    prior_runs: Optional[list[str]] = None,
    *,
    config: Any = None,
) -> str:
    """Create a sweep from a W&B sweep config (a dict, or a YAML file); returns its id.

    W&B's signature: `sweep(sweep=cfg, project=, entity=)` (or `config=cfg`); `entity` is accepted
    (tracehouse has no entities yet) and `prior_runs` is refused, not ignored (the controller warms
    up from every finished trial of the sweep instead). The config is checked first: a ConfigError
    names the offending key and what is allowed.
    """
    from tracehouse.collector.sweeps.config import parse_config

    if (sweep is None) == (config is None):
        raise ConfigError("sweep", "give the sweep config once: th.sweep(config) or th.sweep(sweep=config)")
    if prior_runs:
        raise ConfigError("prior_runs", "not supported: trials of other sweeps are not imported")
    raw = load_config(sweep if sweep is not None else config)
    parse_config(raw)  # errors before any I/O
    return backend().create(_project(project or raw.get("project")), raw)


def sweep_status(sweep_id: str, project: Optional[str] = None) -> dict[str, Any]:
    """The sweep's state, method, metric, every trial (parameters, state, metric, runtime) and the best."""
    sweep_id, project = sweep_path(sweep_id, project)
    return backend().status(_project(project), sweep_id)


def sweep_control(sweep_id: str, action: str, project: Optional[str] = None) -> str:
    """ "stop" (no new trials), "pause", "resume" or "cancel" (running trials are stopped too);
    returns the sweep's new state."""
    sweep_id, project = sweep_path(sweep_id, project)
    return backend().control(_project(project), sweep_id, action)


def sweep_results(sweep_id: str, project: Optional[str] = None) -> pd.DataFrame:
    """One row per trial: run_id, trial, state, metric (its best logged value), runtime, agent,
    then one column per parameter (nested ones dotted); best first."""
    import pandas as pd

    status = sweep_status(sweep_id, project)
    rows = [{k: v for k, v in t.items() if k != "params"} | t["params"] for t in status["trials"]]
    names = sorted({k for t in status["trials"] for k in t["params"]})
    frame = pd.DataFrame(rows, columns=["run_id", "trial", "state", "metric", "runtime", "agent_id", *names])
    ascending = status["goal"] != "maximize"
    frame = frame.sort_values(["metric", "trial"], ascending=[ascending, True], na_position="last")
    return cast("pd.DataFrame", frame.reset_index(drop=True))


def param_importance(sweep_id: str, project: Optional[str] = None) -> dict[str, float]:
    """How much each parameter explains the metric over the finished trials (Optuna's PED-ANOVA
    importance, summing to 1, most important first); needs at least two finished trials with the metric."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    status = sweep_status(sweep_id, project)
    finished = [t for t in status["trials"] if t["state"] == "finished" and t["metric"] is not None]
    if len(finished) < 2:
        raise ConfigError("sweep_id", f"sweep {sweep_id} has {len(finished)} finished trial(s) with the metric; 2+")
    names = sorted({k for t in finished for k, v in t["params"].items() if len({repr(x["params"].get(k)) for x in
                                                                                   finished}) > 1})  # fmt: skip
    if not names:
        raise ConfigError("sweep_id", f"no parameter of sweep {sweep_id} varies across its finished trials")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=status["goal"])
    numeric = {n: all(isinstance(t["params"][n], (int, float)) and not isinstance(t["params"][n], bool)
                      for t in finished) for n in names}  # fmt: skip
    choices = {n: sorted({repr(t["params"][n]) for t in finished}) for n in names if not numeric[n]}
    distributions: dict[str, Any] = {
        n: FloatDistribution(min(float(t["params"][n]) for t in finished), max(float(t["params"][n]) for t in finished))
        if numeric[n] else CategoricalDistribution(choices[n])
        for n in names
    }  # fmt: skip
    for trial in finished:
        params = {n: float(trial["params"][n]) if numeric[n] else repr(trial["params"][n]) for n in names}
        study.add_trial(create_trial(params=params, distributions=distributions, value=trial["metric"]))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
