"""LightGBM: `lgb.train(..., callbacks=[tracehouse_callback()])`, then `log_summary(booster)`
(W&B's `wandb_callback()` and `log_summary()`, under those names too).

- Every iteration logs each validation set's metrics as `<set>_<metric>` (W&B's names, e.g.
  `valid_0_l2`; `lgb.cv` means and stds as `<set>_<metric>-mean` / `-std`) at the iteration's step;
  the first iteration stores the training parameters in the run's config (`log_params=True`).
- `log_summary(model, feature_importance=True, save_model_checkpoint=False)`: `best_iteration` and
  `best_score` into the summary, the split and gain importances as the tables + bar charts
  `feature_importance/split` and `feature_importance/gain`, and the model text file as the `model`
  artifact `model-<run id>`.

Without an active run the callback starts one (`project`, `name`); `log_summary` finishes a run the
callback started (W&B leaves that to `wandb.finish()`; here the run ends with training's summary).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from tracehouse._errors import ConfigError
from tracehouse.integrations._training import active_or_new_run, importance_chart, log_model_artifact, storable

_started: dict[str, bool] = {}  # run id -> whether the callback started (and so owns) that run


def tracehouse_callback(log_params: bool = True, project: Optional[str] = None,
                        name: Optional[str] = None) -> Callable[[Any], None]:  # fmt: skip
    """A LightGBM callback logging each iteration's evaluation results to the active (or a new) run."""
    state: dict[str, Any] = {}

    def _callback(env: Any) -> None:
        run = state.get("run")
        if run is None or run.state != "running":
            run, owned = active_or_new_run(project, name, {})
            state["run"], state["start"] = run, run.step - env.begin_iteration
            _started[run.id] = owned
            if log_params:
                run.config.update({"lightgbm": storable(env.params)}, allow_val_change=True)
        values: dict[str, float] = {}
        for result in env.evaluation_result_list or []:
            data, metric, value = result[0], result[1], result[2]
            if len(result) == 5:  # lgb.cv: (data, metric, mean, higher_is_better, std)
                values[f"{data}_{metric}-mean"], values[f"{data}_{metric}-std"] = float(value), float(result[4])
            else:
                values[f"{data}_{metric}"] = float(value)
        run.log(values, step=state["start"] + env.iteration)

    _callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own record_evaluation (20)
    return _callback


def log_summary(model: Any, feature_importance: bool = True, save_model_checkpoint: bool = False) -> None:
    """After training: best iteration and score, feature importances and (optionally) the model."""
    from tracehouse.tracking.run import current_run

    run = current_run()
    if run is None:
        raise ConfigError("run", "no active run: train with tracehouse_callback() or call th.init() first")
    if not hasattr(model, "feature_importance") or not hasattr(model, "save_model"):
        raise ConfigError("model", f"expected a lightgbm.Booster, got {type(model).__name__}")
    if getattr(model, "best_iteration", 0):
        run.summary["best_iteration"] = int(model.best_iteration)
    best = {f"{data}_{metric}": float(value) for data, scores in (getattr(model, "best_score", {}) or {}).items()
            for metric, value in scores.items()}  # fmt: skip
    if best:
        run.summary["best_score"] = best
    if feature_importance:
        names = model.feature_name()
        charts = {}
        for kind in ("split", "gain"):
            scores = dict(zip(names, map(float, model.feature_importance(kind)), strict=True))
            charts[f"feature_importance/{kind}"] = importance_chart(scores, f"Feature importance ({kind})")
        run.log(charts, commit=False)
    if save_model_checkpoint:
        with tempfile.TemporaryDirectory(prefix="tracehouse-lgb-") as folder:
            path = Path(folder) / "model.txt"
            model.save_model(str(path))
            log_model_artifact(run, path, f"model-{run.id}", ["latest"], {"best_iteration": model.best_iteration})
    if _started.pop(run.id, False):
        run.finish()


wandb_callback = tracehouse_callback  # W&B's names (wandb.integration.lightgbm)

__all__ = ["log_summary", "tracehouse_callback", "wandb_callback"]
