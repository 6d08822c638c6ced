"""Keras 3: one callback for metrics, the model summary, checkpoints and validation predictions.

    model.fit(x, y, validation_data=(xv, yv), epochs=5,
              callbacks=[TracehouseCallback(project="mnist", log_model="best")])

- Metrics: every epoch as `epoch/<name>` (loss, val_loss, the compiled metrics, learning_rate) with
  `epoch/epoch` as their x-axis, and with `log_freq="batch"` (or every N batches) `batch/<name>`
  with `batch/batch_step` (W&B's WandbMetricsLogger keys). Each log is one run step.
- Config: the model summary under `model` (class, parameters, trainable parameters, each layer's
  class and parameter count, optimizer and its settings, loss) beside the run's own config.
- Checkpoints: `log_model="best"` (whenever `monitor` improves), `"all"` (every epoch), `"end"` (once
  when training ends) or False: the saved `.keras` file as a `model` artifact `model-<run id>`,
  aliases `latest`, `epoch_<n>` and `best` on the best so far.
- `validation_data=(x, y)` with `predictions=N`: a table `validation_predictions` of the first N
  examples' targets and predictions at each epoch's step.

Without an active run the callback starts one (`project`, `name`, `config`, `init_kwargs`) and
finishes it when training ends. W&B's `WandbMetricsLogger` and `WandbModelCheckpoint` names are
aliases of this callback with their defaults (no checkpoints; checkpoints every epoch).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import keras

from tracehouse._errors import ConfigError
from tracehouse.integrations._training import active_or_new_run, log_model_artifact, numbers, storable

LOG_MODEL = ("best", "all", "end", False)


class TracehouseCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Logs a Keras `fit` to a tracehouse run (see the module docstring)."""

    def __init__(
        self,
        project: Optional[str] = None,
        name: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        log_freq: Union[str, int] = "epoch",
        log_model: Union[str, bool] = "end",
        monitor: str = "val_loss",
        mode: str = "auto",
        validation_data: Optional[tuple[Any, Any]] = None,
        predictions: int = 0,
        init_kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__()
        if log_freq != "epoch" and log_freq != "batch" and not (isinstance(log_freq, int) and log_freq > 0):
            raise ConfigError(
                "log_freq", f"expected 'epoch', 'batch' or a positive number of batches, got {log_freq!r}"
            )
        if log_model not in LOG_MODEL:
            raise ConfigError("log_model", f"expected 'best', 'all', 'end' or False, got {log_model!r}")
        if mode not in ("auto", "min", "max"):
            raise ConfigError("mode", f"expected 'auto', 'min' or 'max', got {mode!r}")
        if predictions and validation_data is None:
            raise ConfigError("predictions", "give validation_data=(x, y) to log predictions")
        self.project, self.name, self.config = project, name, dict(config or {})
        self.batch_every = 0 if log_freq == "epoch" else 1 if log_freq == "batch" else int(log_freq)
        self.log_model, self.monitor, self.mode = log_model, monitor, mode
        self.validation_data, self.predictions = validation_data, int(predictions)
        self.init_kwargs = dict(init_kwargs or {})
        self.run: Any = None
        self._owns_run = False
        self._batch_step = 0
        self._best: Optional[float] = None
        self._folder: Optional[tempfile.TemporaryDirectory[str]] = None

    # --- Keras hooks ------------------------------------------------------------------------------
    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.run, self._owns_run = active_or_new_run(
            self.project, self.name, {"config": self.config, **self.init_kwargs}
        )
        self.run.config.update({"model": model_summary(self.model)}, allow_val_change=True)
        self.run.define_metric("epoch/*", step_metric="epoch/epoch")
        if self.batch_every:
            self.run.define_metric("batch/*", step_metric="batch/batch_step")
        self._folder = tempfile.TemporaryDirectory(prefix="tracehouse-keras-")

    def on_train_batch_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self._batch_step += 1
        if self.batch_every and self._batch_step % self.batch_every == 0 and self.run is not None:
            values = numbers(logs or {}, "batch/")
            self.run.log({**values, "batch/batch_step": self._batch_step})

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        if self.run is None:
            return
        values = {**numbers(logs or {}, "epoch/"), "epoch/epoch": epoch}
        rate = _learning_rate(self.model)
        if rate is not None:
            values["epoch/learning_rate"] = rate
        if self.predictions:
            values["validation_predictions"] = self._predictions_table()
        self.run.log(values)
        improved = self._improved(logs or {})
        if self.log_model == "all" or (self.log_model == "best" and improved):
            self._checkpoint(epoch, improved)

    def on_train_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        if self.run is None:
            return
        try:
            if self.log_model == "end":
                self._checkpoint(None, False)
        finally:
            if self._folder is not None:
                self._folder.cleanup()
            if self._owns_run:
                self.run.finish()

    # --- parts ------------------------------------------------------------------------------------
    def _improved(self, logs: Mapping[str, Any]) -> bool:
        value = numbers({"m": logs[self.monitor]}).get("m") if self.monitor in logs else None
        if value is None:
            return False
        maximize = self.mode == "max" or (self.mode == "auto" and any(w in self.monitor for w in ("acc", "auc")))
        if self._best is None or (value > self._best if maximize else value < self._best):
            self._best = value
            return True
        return False

    def _checkpoint(self, epoch: Optional[int], best: bool) -> None:
        assert self._folder is not None
        path = Path(self._folder.name) / f"model-{'end' if epoch is None else epoch}.keras"
        self.model.save(path)
        aliases = ["latest"] + ([f"epoch_{epoch}"] if epoch is not None else []) + (["best"] if best else [])
        metadata = {"epoch": epoch, self.monitor: self._best} if epoch is not None else {}
        log_model_artifact(self.run, path, f"model-{self.run.id}", aliases, metadata)

    def _predictions_table(self) -> Any:
        from tracehouse.tracking.media_table import Table

        assert self.validation_data is not None
        x, y = self.validation_data
        x, y = x[: self.predictions], y[: self.predictions]
        predicted = keras.ops.convert_to_numpy(self.model.predict(x, verbose=0))
        rows = [[i, storable(_plain(target)), storable(_plain(guess))] for i, (target, guess) in
                enumerate(zip(keras.ops.convert_to_numpy(y), predicted, strict=False))]  # fmt: skip
        return Table(columns=["index", "target", "prediction"], data=rows)


def _plain(value: Any) -> Any:
    listed = value.tolist() if hasattr(value, "tolist") else value
    return listed[0] if isinstance(listed, list) and len(listed) == 1 else listed


def _learning_rate(model: Any) -> Optional[float]:
    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", None)
    if rate is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(rate))
    except (TypeError, ValueError):
        return None


def model_summary(model: Any) -> dict[str, Any]:
    """The model as config: class, parameter counts, layers, optimizer and loss."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    optimizer = getattr(model, "optimizer", None)
    summary: dict[str, Any] = {
        "class": type(model).__name__, "name": model.name, "parameters": int(model.count_params()),
        "trainable_parameters": trainable,
        "layers": [{"name": layer.name, "class": type(layer).__name__, "parameters": int(layer.count_params())}
                   for layer in model.layers],
    }  # fmt: skip
    if optimizer is not None:
        summary["optimizer"] = storable(optimizer.get_config())
    if getattr(model, "loss", None) is not None:
        summary["loss"] = storable(model.loss)
    return summary


def WandbMetricsLogger(log_freq: Union[str, int] = "epoch", initial_global_step: int = 0,
                       **kwargs: Any) -> TracehouseCallback:  # fmt: skip
    """W&B's `WandbMetricsLogger`: metrics only, no checkpoints."""
    return TracehouseCallback(log_freq=log_freq, log_model=False, **kwargs)


def WandbModelCheckpoint(filepath: Any = None, monitor: str = "val_loss", save_best_only: bool = False,
                         mode: str = "auto", **kwargs: Any) -> TracehouseCallback:  # fmt: skip
    """W&B's `WandbModelCheckpoint`: a checkpoint artifact every epoch, or only on improvement."""
    return TracehouseCallback(log_model="best" if save_best_only else "all", monitor=monitor, mode=mode, **kwargs)


__all__ = ["TracehouseCallback", "WandbMetricsLogger", "WandbModelCheckpoint", "model_summary"]
