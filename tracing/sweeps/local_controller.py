"""W&B's `wandb.controller()`: build a sweep in code, create it, and watch it until it is done.

tracehouse's controller always runs where the store is written (this process for the embedded
store, the collector otherwise) and reacts to agents as they ask, so there is nothing to schedule
by hand: `run()` only follows the sweep and prints its progress until it is finished, stopped or
cancelled, and `step()` refreshes it once. Both the builder form and an existing sweep work:

    ctrl = th.controller()                           # or th.controller(sweep_id) / (config dict)
    ctrl.configure_search("grid")
    ctrl.configure_program("train.py")
    ctrl.configure_parameter("lr", values=[0.1, 0.01])
    ctrl.configure_metric("loss", goal="minimize")
    sweep_id = ctrl.create()
    ctrl.run()                                        # returns when the sweep is done
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

from tracehouse._errors import ConfigError

DONE_STATES = ("finished", "stopped", "cancelled")


class Controller:
    """A sweep being built (`configure_*`, then `create()`) or an existing one (`sweep_id`)."""

    def __init__(
        self, sweep_id_or_config: Any = None, entity: Optional[str] = None, project: Optional[str] = None
    ) -> None:
        from tracehouse.sweeps.sweep import load_config, sweep_path

        self.entity = entity
        self.project = project
        self.sweep_id: Optional[str] = None
        self._config: dict[str, Any] = {}
        self._status: Optional[dict[str, Any]] = None
        if isinstance(sweep_id_or_config, str) and not sweep_id_or_config.endswith((".yaml", ".yml", ".json")):
            self.sweep_id, self.project = sweep_path(sweep_id_or_config, project)
            self._status = self._fetch()  # an unknown id is a NotFoundError here, not at run()
            self._config = dict(self._status.get("config") or {})
        elif sweep_id_or_config is not None:
            self._config = dict(load_config(sweep_id_or_config))

    # --- building ---------------------------------------------------------------------------------
    def _building(self) -> dict[str, Any]:
        if self.sweep_id is not None:
            raise ConfigError("controller", f"sweep {self.sweep_id} is created; its config cannot change")
        return self._config

    def configure(self, sweep_dict_or_yaml: Any) -> None:
        """Replace the whole config (a dict or a YAML file)."""
        from tracehouse.sweeps.sweep import load_config

        self._building().clear()
        self._config.update(load_config(sweep_dict_or_yaml))

    def configure_search(self, search: str, **kwargs: Any) -> None:
        """The method: "grid", "random" or "bayes"."""
        self._building()["method"] = search
        self._config.update(kwargs)

    def configure_stopping(self, stopping: str, **kwargs: Any) -> None:
        """Early termination, e.g. `configure_stopping("hyperband", min_iter=3)`."""
        self._building()["early_terminate"] = {"type": stopping, **kwargs}

    def configure_metric(self, metric: str, goal: Optional[str] = None) -> None:
        """The metric to optimise and its goal ("minimize" or "maximize")."""
        self._building()["metric"] = {"name": metric, **({"goal": goal} if goal else {})}

    def configure_program(self, program: str) -> None:
        """The script `tracehouse agent` runs for each trial."""
        self._building()["program"] = program

    def configure_name(self, name: str) -> None:
        self._building()["name"] = name

    def configure_description(self, description: str) -> None:
        self._building()["description"] = description

    def configure_controller(self, type: str) -> None:
        """W&B's "local" or "cloud": both mean tracehouse's own controller."""
        if type not in ("local", "cloud"):
            raise ConfigError("type", f"expected 'local' or 'cloud', got {type!r}")
        self._building()

    def configure_parameter(
        self,
        name: str,
        values: Any = None,
        value: Any = None,
        distribution: Any = None,
        min: Any = None,
        max: Any = None,
        mu: Any = None,
        sigma: Any = None,
        q: Any = None,
        a: Any = None,
        b: Any = None,
    ) -> None:
        """One parameter's search space (W&B's keys: values, value, distribution, min, max, mu, sigma, q)."""
        given = {"values": values, "value": value, "distribution": distribution, "min": min, "max": max,
                 "mu": mu, "sigma": sigma, "q": q, "a": a, "b": b}  # fmt: skip
        self._building().setdefault("parameters", {})[name] = {k: v for k, v in given.items() if v is not None}

    @property
    def sweep_config(self) -> dict[str, Any]:
        """The config as built (or as the sweep was created with)."""
        return dict(self._config)

    def create(self, from_dict: bool = False) -> str:
        """Create the sweep (the config is checked first); returns its id."""
        from tracehouse.sweeps.sweep import sweep

        if self.sweep_id is not None:
            return self.sweep_id
        self.sweep_id = sweep(sweep=dict(self._config), project=self.project, entity=self.entity)
        self._status = None
        return self.sweep_id

    # --- following --------------------------------------------------------------------------------
    def _fetch(self) -> dict[str, Any]:
        from tracehouse.sweeps.sweep import sweep_status

        if self.sweep_id is None:
            raise ConfigError("controller", "create() the sweep first")
        return sweep_status(self.sweep_id, self.project)

    def step(self) -> dict[str, Any]:
        """Refresh the sweep's status (its trials and state); returns it."""
        self._status = self._fetch()
        return self._status

    @property
    def status(self) -> dict[str, Any]:
        """The last status read (read now if none yet)."""
        return self._status if self._status is not None else self.step()

    def done(self) -> bool:
        """Whether the sweep is finished, stopped or cancelled."""
        return str(self.status["state"]) in DONE_STATES

    def run(
        self,
        verbose: bool = False,
        print_status: bool = True,
        print_actions: bool = False,
        print_debug: bool = False,
        poll_seconds: float = 2.0,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """Follow the sweep until it is done (or `timeout` seconds pass), printing a line each time its
        trials change; returns the last status. Agents (`th.agent` / `tracehouse agent`) run the trials."""
        if self.sweep_id is None:
            self.create()
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = None
        while True:
            status = self.step()
            line = _status_line(status)
            if print_status and line != shown:
                _print(line)
                shown = line
            if str(status["state"]) in DONE_STATES or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll_seconds)

    def print_status(self) -> None:
        _print(_status_line(self.step()))


def _status_line(status: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for trial in status["trials"]:
        counts[trial["state"]] = counts.get(trial["state"], 0) + 1
    trials = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials yet"
    best = status.get("best")
    best_text = f"; best {status['metric']}={best['metric']:.6g} ({best['run_id']})" if best else ""
    return f"sweep {status['sweep_id']} {status['state']}: {trials}{best_text}"


def _print(line: str, stream: Callable[[], Any] = lambda: sys.stderr) -> None:
    from tracehouse.spans.runtime import runtime

    if not runtime.settings.silent and stream() is not None:
        print(f"tracehouse: {line}", file=stream(), flush=True)


def controller(
    sweep_id_or_config: Any = None, entity: Optional[str] = None, project: Optional[str] = None
) -> Controller:
    """W&B's `wandb.controller()`: a Controller for an existing sweep id, a config to create, or empty."""
    return Controller(sweep_id_or_config, entity, project)


__all__ = ["Controller", "controller"]
