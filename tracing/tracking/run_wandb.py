"""W&B's run attributes beyond the everyday ones: `url`, `path`, `entity`, `start_time`, `get_url()`,
`project_name()`, `log_code()`, `alert()`, `status()`, `mark_preempting()`, `watch()` / `unwatch()`.

`url` is the UI's run page when a UI is known (a collector endpoint, or `tracehouse ui` / `serve`
on this data dir), else None, as W&B's is None offline. An alert is stored with the run (a value
`_type: "alert"` at the current step, shown like any logged value) and logged as a warning: there
is no notification service to send it to.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse._errors import ConfigError
from tracehouse.tracking.banner import ui_page

if TYPE_CHECKING:
    from tracehouse.tracking.artifacts.artifact import Artifact

logger = logging.getLogger("tracehouse")


class AlertLevel(str, enum.Enum):
    """W&B's `wandb.AlertLevel`."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class WandbRunMixin:
    """The W&B run surface a Run gets on top of log / config / summary / finish."""

    id: str
    name: str
    project: str
    entity: str
    state: str
    step: int
    sweep_id: str
    offline: bool
    disabled: bool
    _started_ns: int
    _submit: Callable[[dict[str, Any]], None]

    @property
    def path(self) -> str:
        """`entity/project/run_id` (W&B's run path; the entity part is empty without one)."""
        return f"{self.entity}/{self.project}/{self.id}" if self.entity else f"{self.project}/{self.id}"

    @property
    def start_time(self) -> float:
        """When the run started, in seconds since the epoch."""
        return self._started_ns / 1e9

    def _ui_base(self) -> Optional[str]:
        """The UI's address when one is known and the run reaches it (not offline or disabled)."""
        from tracehouse.spans.runtime import runtime
        from tracehouse.tracking.banner import ui_url

        return None if self.offline or self.disabled else ui_url(runtime.settings)

    @property
    def url(self) -> Optional[str]:
        """The UI's page of this run when a UI is known, else None."""
        base = self._ui_base()
        return None if base is None else ui_page(base, "runs", self.project, self.id)

    def get_url(self) -> Optional[str]:
        """W&B's `run.get_url()`: `run.url`."""
        return self.url

    def get_project_url(self) -> Optional[str]:
        """The UI's runs page of this project, when a UI is known."""
        base = self._ui_base()
        return None if base is None else ui_page(base, "runs", self.project)

    def get_sweep_url(self) -> Optional[str]:
        """The UI's page of this run's sweep, when it is a trial and a UI is known."""
        base = self._ui_base()
        return None if base is None or not self.sweep_id else ui_page(base, "sweeps", self.project, self.sweep_id)

    def project_name(self) -> str:
        """W&B's `run.project_name()`."""
        return self.project

    def status(self) -> dict[str, Any]:
        """The run's state and step (W&B's `run.status()` reports sync state; records here are in the
        spool the moment they are logged, so only the state and step are worth saying)."""
        return {"state": self.state, "step": self.step, "offline": self.offline}

    def mark_preempting(self) -> None:
        """W&B's `run.mark_preempting()`: noted on the run (`run.preempting`); a run stopped here is
        continued with `th.init(id=..., resume="allow")` whatever state it was left in."""
        self.preempting = True

    def alert(self, title: str, text: str, level: Any = AlertLevel.INFO, wait_duration: Any = None) -> None:
        """W&B's `run.alert()`: kept with the run (a logged value `_type: "alert"`) and logged as a warning."""
        if not isinstance(title, str) or not title or not isinstance(text, str):
            raise ConfigError("title", "an alert needs a non-empty title and a text")
        level_name = level.value if isinstance(level, AlertLevel) else str(level).upper()
        if level_name not in AlertLevel.__members__:
            raise ConfigError("level", f"expected one of INFO, WARN, ERROR, got {level!r}")
        logger.warning("tracehouse alert [%s] %s: %s (run %s)", level_name, title, text, self.id)
        value = {"_type": "alert", "title": title, "text": text, "level": level_name}
        self._submit({"type": "values", "project": self.project, "run_id": self.id, "step": self.step,
                      "time_ns": time.time_ns(), "values": {f"alert/{title}": value}})  # fmt: skip

    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: Optional[str] = "gradients",
        log_freq: int = 1000,
        idx: Optional[int] = None,
        log_graph: bool = False,
    ) -> None:
        """W&B's `run.watch()`: histograms of a PyTorch model's gradients (`log="gradients"`), parameters
        (`"parameters"`) or both (`"all"`) every `log_freq` batches; `log_graph` stores the module tree.
        Watching a model again replaces its hooks. See tracehouse.tracking.watch."""
        from tracehouse.tracking.watch import Watched, check_models, check_watch_options, module_graph

        check_watch_options(log, log_freq)
        items = check_models(models)
        self.unwatch(items)
        watched = self._watched_models()
        start = len(watched) if idx is None else idx
        for offset, model in enumerate(items):
            index = start + offset
            entry = Watched(model, f"graph_{index}." if index else "", log_freq, self._log_uncommitted)
            if log in ("parameters", "all"):
                entry.hook_parameters()
            if log in ("gradients", "all"):
                entry.hook_gradients()
            watched.append(entry)
            if log_graph:
                graph = {f"graph_{index}": module_graph(model)}
                self._submit({"type": "values", "project": self.project, "run_id": self.id, "step": self.step,
                              "time_ns": time.time_ns(), "values": graph})  # fmt: skip

    def unwatch(self, models: Any = None) -> None:
        """W&B's `run.unwatch()`: remove the hooks of `models` (one or a list), or of every watched model."""
        watched = self._watched_models()
        listed = models if isinstance(models, (list, tuple)) else [models]
        chosen = None if models is None else {id(m) for m in listed}
        for entry in list(watched):
            if chosen is None or id(entry.model) in chosen:
                entry.remove()
                watched.remove(entry)

    def _watched_models(self) -> list[Any]:
        watched: list[Any] = self.__dict__.setdefault("_watched", [])
        return watched

    def _log_uncommitted(self, values: dict[str, Any]) -> None:
        self.log(values, commit=False)  # type: ignore[attr-defined]

    def log_code(
        self,
        root: Optional[str] = ".",
        name: Optional[str] = None,
        include_fn: Optional[Callable[..., bool]] = None,
        exclude_fn: Optional[Callable[..., bool]] = None,
        include_main_only: bool = False,
    ) -> Optional[Artifact]:
        """W&B's `run.log_code()`: the source files under `root` (`.py` by default; `include_fn(path)`
        / `exclude_fn(path)` choose) as an artifact of type `code`; None when there is nothing."""
        from tracehouse.tracking.artifacts.artifact import Artifact

        files = _main_script() if include_main_only else _code_files(root or ".", include_fn, exclude_fn)
        if not files:
            return None
        artifact = Artifact(name or f"source-{self.project}-{self.id}", "code")
        base = Path(root or ".").resolve()
        for path in files:
            relative = path.name if include_main_only else str(path.resolve().relative_to(base))
            artifact.add_file(path, relative)
        return self.log_artifact(artifact)  # type: ignore[attr-defined, no-any-return]


def _main_script() -> list[Path]:
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
    return [main] if main is not None and main.is_file() and main.suffix == ".py" else []


_SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".mypy_cache", "wandb"}


def _code_files(
    root: str, include: Optional[Callable[..., bool]], exclude: Optional[Callable[..., bool]]
) -> list[Path]:
    found: list[Path] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith(".")]
        for file_name in names:
            path = Path(directory) / file_name
            wanted = include(str(path)) if include is not None else path.suffix == ".py"
            if wanted and not (exclude is not None and exclude(str(path))):
                found.append(path)
    return sorted(found)


__all__ = ["AlertLevel", "WandbRunMixin"]
