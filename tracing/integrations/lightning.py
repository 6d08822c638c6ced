"""PyTorch Lightning: a `Logger` for `Trainer(logger=TracehouseLogger(project="mnist"))`.

- `log_metrics` logs at the trainer's global step (train and validation metrics of one step land on
  the same run step); `log_hyperparams` (the module's `save_hyperparameters()`, the datamodule's)
  goes to the run's config.
- Checkpoints of every `ModelCheckpoint`: `log_model=True` logs them when training ends, `"all"` as
  each is saved, False never; each is a version of the `model` artifact `model-<run id>` with the
  aliases `latest`, `best` (the callback's best model) and its metadata (score, monitor, step).
- `watch(model, log="gradients", log_freq=100)`: gradient / parameter histograms (th.watch).
- Multi-process strategies: only rank 0 logs (Lightning's `rank_zero_only`). With spawn-based ones
  (`ddp_spawn`) the logger is pickled into the workers; rank 0 there starts (or continues) the run
  under the id chosen when the logger was made, so every rank's logger names the same run.

Without an active run the logger starts one when first used (`project`, `name`, `config`,
`init_kwargs`) and finishes it in `finalize` (state `failed` unless Lightning reports success).
"""

from __future__ import annotations

import os
import random
import string
from argparse import Namespace
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from tracehouse._errors import ConfigError
from tracehouse.integrations._training import log_model_artifact, numbers, storable

try:  # the unified `lightning` package, else the standalone `pytorch_lightning`
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment  # type: ignore[attr-defined]
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # pragma: no cover - depends on which package is installed
    from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment  # type: ignore[attr-defined, assignment, no-redef]
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]


class TracehouseLogger(Logger):  # type: ignore[misc]
    """Logs a Lightning `Trainer` to a tracehouse run (see the module docstring)."""

    def __init__(
        self,
        project: Optional[str] = None,
        name: Optional[str] = None,
        id: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        log_model: Union[bool, str] = False,
        prefix: str = "",
        init_kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            raise ConfigError("log_model", f"expected True, False or 'all', got {log_model!r}")
        self._project, self._name, self._config = project, name, dict(config or {})
        self._id = id or "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        self._id_given, self._started = id is not None, False
        self._log_model, self._prefix = log_model, prefix
        self._init_kwargs = dict(init_kwargs or {})
        self._run: Any = None
        self._owns_run = False
        self._made_in = os.getpid()
        self._callbacks: dict[int, Any] = {}
        self._logged: dict[str, float] = {}  # checkpoint path -> modification time when logged

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None  # a run holds threads and locks; the worker continues it by id
        return state

    # --- Logger API -------------------------------------------------------------------------------
    @property
    def name(self) -> Optional[str]:
        return self._project or (self._run.project if self._run is not None else None)

    @property
    def version(self) -> Optional[str]:
        return self._id

    @property
    def save_dir(self) -> Optional[str]:
        return getattr(self._run, "dir", None)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The tracehouse run (`th.Run`): started, continued or the active one on first use."""
        if self._run is None:
            self._run = self._attach()
        return self._run

    def _attach(self) -> Any:
        from tracehouse.tracking.run import current_run
        from tracehouse.tracking.session import init

        active = current_run()
        if active is not None and active.state == "running":
            self._id = active.id
            return active
        kwargs = {"config": self._config, **self._init_kwargs}
        # a run id chosen here and never started cannot be stored yet: no read of the store to look for it
        resume = "allow" if self._id_given or self._started else None
        started_by_parent = self._started and os.getpid() != self._made_in  # a spawned worker's copy
        run = init(project=self._project, name=self._name, id=self._id, resume=resume, **kwargs)
        self._started = True
        self._owns_run = not started_by_parent  # the parent's run is the parent's to finish
        return run

    @rank_zero_only  # type: ignore[misc]
    def log_hyperparams(self, params: Union[dict[str, Any], Namespace], *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params or {})
        self.experiment.config.update(storable(values), allow_val_change=True)

    @rank_zero_only  # type: ignore[misc]
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        values = numbers(metrics, f"{self._prefix}/" if self._prefix else "")
        run = self.experiment
        if step is not None and step >= run.step:
            run.log(values, step=step)
        else:
            run.log(values, commit=False)

    @rank_zero_only  # type: ignore[misc]
    def watch(self, model: Any, log: Optional[str] = "gradients", log_freq: int = 100, log_graph: bool = True) -> None:
        """Gradient and parameter histograms of `model` (see th.watch)."""
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._log_model == "all":
            self._log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._callbacks[id(checkpoint_callback)] = checkpoint_callback

    @rank_zero_only  # type: ignore[misc]
    def finalize(self, status: str) -> None:
        if self._run is None:
            return
        try:
            if status == "success":
                for callback in self._callbacks.values():
                    self._log_checkpoints(callback)
        finally:
            if self._owns_run:
                self._run.finish(exit_code=0 if status == "success" else 1)
                self._run = None

    # --- checkpoints ------------------------------------------------------------------------------
    @rank_zero_only  # type: ignore[misc]
    def _log_checkpoints(self, callback: Any) -> None:
        scored = dict(getattr(callback, "best_k_models", {}) or {})
        paths = {str(p): scored.get(p) for p in scored}
        for extra in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")):
            if extra:
                paths.setdefault(str(extra), None)
        existing = [(p, s) for p, s in paths.items() if Path(p).is_file()]
        existing.sort(key=lambda item: Path(item[0]).stat().st_mtime)
        best = str(getattr(callback, "best_model_path", "") or "")
        for path, score in existing:
            mtime = Path(path).stat().st_mtime
            if self._logged.get(path) == mtime:
                continue
            self._logged[path] = mtime
            aliases = ["latest"] + (["best"] if path == best else [])
            metadata = {"score": storable(score), "monitor": getattr(callback, "monitor", None),
                        "original_filename": Path(path).name}  # fmt: skip
            log_model_artifact(self.experiment, Path(path), f"model-{self.experiment.id}", aliases, metadata)


__all__ = ["TracehouseLogger"]
