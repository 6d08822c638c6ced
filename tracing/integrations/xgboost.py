"""XGBoost: a training callback, `xgb.train(..., callbacks=[TracehouseCallback()])` or
`XGBClassifier(callbacks=[TracehouseCallback()])`.

- Every boosting round logs each evaluation set's metrics as `<set>-<metric>` (W&B's names, e.g.
  `validation_0-logloss`; a cross-validation mean and std as `<set>-<metric>-mean` / `-std`) at
  the round's step.
- When training ends: the booster's config (`save_config()`, its learner and objective settings)
  into the run's config, `best_score` / `best_iteration` into the summary when early stopping kept
  them, the feature importance (`importance_type`, default "gain") as the table + bar chart
  `feature_importance`, and with `log_model=True` the model (`model.json`) as the `model`
  artifact `model-<run id>`.

Without an active run it starts one (`project`, `name`, `config`) and finishes it after training.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

from xgboost.callback import TrainingCallback

from tracehouse._errors import ConfigError
from tracehouse.integrations._training import active_or_new_run, importance_chart, log_model_artifact, storable

IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")


class TracehouseCallback(TrainingCallback):  # type: ignore[misc]
    """Logs XGBoost training to a tracehouse run (see the module docstring)."""

    def __init__(
        self,
        project: Optional[str] = None,
        name: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        log_model: bool = False,
        log_feature_importance: bool = True,
        importance_type: str = "gain",
    ) -> None:
        super().__init__()
        if importance_type not in IMPORTANCE_TYPES:
            raise ConfigError(
                "importance_type", f"expected one of {', '.join(IMPORTANCE_TYPES)}, got {importance_type!r}"
            )
        self.project, self.name, self.config = project, name, dict(config or {})
        self.log_model, self.log_feature_importance = bool(log_model), bool(log_feature_importance)
        self.importance_type = importance_type
        self.run: Any = None
        self._owns_run = False
        self._start = 0

    def before_training(self, model: Any) -> Any:
        self.run, self._owns_run = active_or_new_run(self.project, self.name, {"config": self.config})
        self._start = self.run.step
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Mapping[str, Any]]) -> bool:
        values: dict[str, float] = {}
        for data, metrics in evals_log.items():
            for metric, history in metrics.items():
                last = history[-1]
                if isinstance(last, tuple):  # xgb.cv: (mean, std)
                    values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-std"] = float(last[0]), float(last[1])
                else:
                    values[f"{data}-{metric}"] = float(last)
        if self.run is not None:
            self.run.log(values, step=self._start + epoch)
        return False  # never asks training to stop

    def after_training(self, model: Any) -> Any:
        if self.run is None:
            return model
        try:
            self._summarise(model)
        finally:
            if self._owns_run:
                self.run.finish()
        return model

    def _summarise(self, model: Any) -> None:
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        try:
            learner = json.loads(booster.save_config()).get("learner", {})
            self.run.config.update({"xgboost": storable(learner)}, allow_val_change=True)
        except (ValueError, AttributeError):
            pass
        for key in ("best_score", "best_iteration"):
            value = _attribute(booster, key)
            if value is not None:
                self.run.summary[key] = value
        if self.log_feature_importance:
            scores = booster.get_score(importance_type=self.importance_type)
            if scores:
                chart = importance_chart(scores, f"Feature importance ({self.importance_type})")
                self.run.log({"feature_importance": chart}, commit=False)
        if self.log_model:
            with tempfile.TemporaryDirectory(prefix="tracehouse-xgb-") as folder:
                path = Path(folder) / "model.json"
                booster.save_model(path)
                log_model_artifact(
                    self.run, path, f"model-{self.run.id}", ["latest"], {"rounds": booster.num_boosted_rounds()}
                )


def _attribute(booster: Any, key: str) -> Optional[float]:
    raw = booster.attr(key) if hasattr(booster, "attr") else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


WandbCallback = TracehouseCallback  # W&B's name (wandb.integration.xgboost.WandbCallback)

__all__ = ["TracehouseCallback", "WandbCallback"]
