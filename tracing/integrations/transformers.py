"""Hugging Face Transformers: a `TrainerCallback`, and `report_to="tracehouse"`.

    Trainer(model, args, ..., callbacks=[TracehouseCallback(project="sst2")])
    # or, once this module is imported, TrainingArguments(..., report_to="tracehouse")

- Config: the training arguments (`args.to_dict()`) over the model's config (`model.config`), as
  W&B's callback merges them, plus `model/num_parameters`.
- Metrics: every `Trainer.log` at the global step, W&B's names: `eval_*` as `eval/*`, `test_*` as
  `test/*`, the rest as `train/*` (loss, learning_rate, grad_norm, epoch, the runtime figures).
- Checkpoints: `log_model="checkpoint"` logs each saved `checkpoint-<step>` folder as a version
  of the `model` artifact `checkpoint-<run id>` (aliases `latest`, `epoch_<e>`,
  `checkpoint_global_step_<n>`, `best` on the trainer's best checkpoint); `"end"` logs the final
  model (and its tokenizer / processor) as `model-<run id>`. The default comes from
  TRACEHOUSE_LOG_MODEL, else W&B's WANDB_LOG_MODEL, else nothing.
- Only the main process logs (`state.is_world_process_zero`).

Without an active run the callback starts one when training begins (`project`, `name` or the
arguments' `run_name`); like W&B's it stays active after `train()` so `trainer.evaluate()` and the
script's own logs land in it, and it finishes with `th.finish()` or at exit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from transformers import TrainerCallback

from tracehouse._errors import ConfigError
from tracehouse.integrations._training import active_or_new_run, log_model_artifact, numbers, storable

LOG_MODEL = ("checkpoint", "end", False)


def rewrite_logs(logs: Mapping[str, Any]) -> dict[str, float]:
    """W&B's names for the Trainer's logs: `eval_x` -> `eval/x`, `test_x` -> `test/x`, `x` -> `train/x`."""
    out: dict[str, float] = {}
    for key, value in numbers(logs).items():
        for prefix in ("eval_", "test_"):
            if key.startswith(prefix):
                out[f"{prefix[:-1]}/{key[len(prefix) :]}"] = value
                break
        else:
            out[f"train/{key}"] = value
    return out


def _log_model_default() -> Union[str, bool]:
    raw = os.environ.get("TRACEHOUSE_LOG_MODEL") or os.environ.get("WANDB_LOG_MODEL") or ""
    value = raw.strip().lower()
    if value in ("", "false", "0", "none"):
        return False
    return "end" if value in ("true", "1") else value


class TracehouseCallback(TrainerCallback):  # type: ignore[misc]
    """Logs a Transformers `Trainer` to a tracehouse run (see the module docstring)."""

    def __init__(
        self,
        project: Optional[str] = None,
        name: Optional[str] = None,
        log_model: Union[str, bool, None] = None,
        init_kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        chosen = _log_model_default() if log_model is None else log_model
        if chosen not in LOG_MODEL:
            raise ConfigError("log_model", f"expected 'checkpoint', 'end' or False, got {chosen!r}")
        self.project, self.name, self.log_model = project, name, chosen
        self.init_kwargs = dict(init_kwargs or {})
        self.run: Any = None

    def _ready(self, state: Any) -> bool:
        return self.run is not None and bool(getattr(state, "is_world_process_zero", True))

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not getattr(state, "is_world_process_zero", True):
            return
        if self.run is None or self.run.state != "running":
            name = self.name or (args.run_name if args.run_name and args.run_name != args.output_dir else None)
            self.run, _ = active_or_new_run(self.project, name, self.init_kwargs)
        self.run.config.update(training_config(args, model), allow_val_change=True)
        self.run.define_metric("*", step_metric="train/global_step")

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[dict[str, Any]] = None,
               **kwargs: Any) -> None:  # fmt: skip
        if not self._ready(state) or not logs:
            return
        values = {**rewrite_logs(logs), "train/global_step": state.global_step}
        step = max(int(state.global_step), self.run.step)
        self.run.log(values, step=step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._ready(state) or self.log_model != "checkpoint":
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not folder.is_dir():
            return
        aliases = [
            "latest",
            f"epoch_{round(float(state.epoch or 0), 2)}",
            f"checkpoint_global_step_{state.global_step}",
        ]
        best = getattr(state, "best_model_checkpoint", None)
        if best and Path(best).resolve() == folder.resolve():
            aliases.append("best")
        metadata = {"global_step": state.global_step, "epoch": state.epoch, "best_metric": state.best_metric}
        log_model_artifact(self.run, folder, f"checkpoint-{self.run.id}", aliases, metadata)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not self._ready(state) or self.log_model != "end" or model is None:
            return
        processor = kwargs.get("processing_class") or kwargs.get("tokenizer")
        with tempfile.TemporaryDirectory(prefix="tracehouse-hf-") as folder:
            model.save_pretrained(folder)
            if processor is not None and hasattr(processor, "save_pretrained"):
                processor.save_pretrained(folder)
            metadata = {"global_step": state.global_step, "epoch": state.epoch}
            log_model_artifact(self.run, Path(folder), f"model-{self.run.id}", ["latest", "end"], metadata)


def training_config(args: Any, model: Any) -> dict[str, Any]:
    """The run's config: the model's config under the training arguments (which win), and its size."""
    combined: dict[str, Any] = {}
    model_config = getattr(model, "config", None)
    if model_config is not None and hasattr(model_config, "to_dict"):
        combined.update(storable(model_config.to_dict()))
    combined.update(storable(args.to_dict()))
    if model is not None and hasattr(model, "num_parameters"):
        combined["model/num_parameters"] = int(model.num_parameters())
    return combined


def register() -> None:
    """Make `report_to="tracehouse"` name this callback (transformers looks names up in its
    `INTEGRATION_TO_CALLBACK` table when a Trainer is made); done when this module is imported."""
    from transformers.integrations import integration_utils

    integration_utils.INTEGRATION_TO_CALLBACK["tracehouse"] = TracehouseCallback


register()

__all__ = ["TracehouseCallback", "register", "rewrite_logs", "training_config"]
