"""XGBoost and LightGBM callbacks with the real libraries on tiny random data: per-iteration metrics
as the libraries computed them, feature importance tables and charts, the model as an artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

import tracehouse as th  # noqa: E402
from tracehouse.integrations import lightgbm as th_lightgbm  # noqa: E402
from tracehouse.integrations.xgboost import TracehouseCallback  # noqa: E402


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    return x, 3 * x[:, 0] - x[:, 2] + rng.normal(scale=0.1, size=200)


def _rows(run_id: str, key: str) -> list[dict[str, Any]]:
    found = th.query("SELECT row FROM run_tables WHERE run_id = {r:String} AND key = {k:String} ORDER BY row_index",
                     {"r": run_id, "k": key})  # fmt: skip
    return [json.loads(r) for r in found["row"]]


def test_xgboost_logs_each_round_importance_and_the_model(th_env: th.Settings, tmp_path: Path) -> None:
    x, y = _data()
    train = xgb.DMatrix(x[:150], y[:150], feature_names=list("abcd"))
    valid = xgb.DMatrix(x[150:], y[150:], feature_names=list("abcd"))
    callback = TracehouseCallback(project="xgb", log_model=True)
    recorded: dict[str, Any] = {}
    params = {"max_depth": 2, "eta": 0.3, "eval_metric": ["rmse", "mae"]}
    evals = [(train, "train"), (valid, "valid")]
    booster = xgb.train(params, train, num_boost_round=6, evals=evals, evals_result=recorded, callbacks=[callback])
    run = callback.run
    assert run.state == "finished"
    th.sync()
    history = th.history(run.id, project="xgb")
    assert list(history["_step"]) == list(range(6))
    assert list(history["valid-rmse"]) == pytest.approx(recorded["valid"]["rmse"], rel=1e-6)
    assert list(history["train-mae"]) == pytest.approx(recorded["train"]["mae"], rel=1e-6)
    importance = {r["feature"]: r["importance"] for r in _rows(run.id, "feature_importance")}
    assert importance == pytest.approx(booster.get_score(importance_type="gain"))
    assert next(iter(importance)) == "a"  # largest first: the strongest feature
    row = th.runs(project="xgb").iloc[0]
    assert row["config.xgboost.objective.name"] == "reg:squarederror"
    folder = th.use_artifact(f"model-{run.id}:latest", project="xgb").download(tmp_path / "model")
    restored = xgb.Booster(model_file=str(Path(folder) / "model.json"))
    assert restored.predict(valid) == pytest.approx(booster.predict(valid), rel=1e-6)


def test_xgboost_sklearn_api_with_early_stopping_in_the_scripts_run(th_env: th.Settings) -> None:
    x, y = _data()
    with th.init(project="xgb-sk") as run:
        model = xgb.XGBRegressor(
            n_estimators=50, max_depth=2, early_stopping_rounds=2, callbacks=[TracehouseCallback()]
        )
        model.fit(x[:150], y[:150], eval_set=[(x[150:], y[150:])], verbose=False)
        assert run.state == "running"
    th.sync()
    row = th.runs(project="xgb-sk").iloc[0]
    assert row["summary.best_iteration"] == model.best_iteration
    assert row["summary.best_score"] == pytest.approx(model.best_score)
    assert "validation_0-rmse" in th.history(run.id, project="xgb-sk")
    with pytest.raises(th.ConfigError, match="importance_type"):
        TracehouseCallback(importance_type="size")


def test_lightgbm_callback_and_log_summary(th_env: th.Settings, tmp_path: Path) -> None:
    x, y = _data()
    train = lgb.Dataset(x[:150], y[:150], feature_name=list("abcd"))
    valid = lgb.Dataset(x[150:], y[150:], reference=train)
    recorded: dict[str, Any] = {}
    params = {"objective": "regression", "num_leaves": 4, "verbose": -1, "metric": ["l2", "l1"]}
    callbacks = [th_lightgbm.tracehouse_callback(project="lgb"), lgb.record_evaluation(recorded)]
    booster = lgb.train(params, train, num_boost_round=5, valid_sets=[valid], valid_names=["val"], callbacks=callbacks)
    run = th.run
    assert run is not None and run.config["lightgbm"]["num_leaves"] == 4
    th_lightgbm.log_summary(booster, save_model_checkpoint=True)
    assert run.state == "finished" and th.run is None  # the callback's own run ends with the summary
    th.sync()
    history = th.history(run.id, project="lgb")
    assert list(history["val_l2"]) == pytest.approx(recorded["val"]["l2"], rel=1e-6)
    assert list(history["val_l1"]) == pytest.approx(recorded["val"]["l1"], rel=1e-6)
    gain = {r["feature"]: r["importance"] for r in _rows(run.id, "feature_importance/gain")}
    assert gain == pytest.approx(dict(zip(list("abcd"), booster.feature_importance("gain"), strict=True)))
    split = _rows(run.id, "feature_importance/split")
    assert sum(r["importance"] for r in split) == booster.feature_importance("split").sum()
    folder = th.use_artifact(f"model-{run.id}:latest", project="lgb").download(tmp_path / "model")
    restored = lgb.Booster(model_file=str(Path(folder) / "model.txt"))
    assert restored.predict(x[150:]) == pytest.approx(booster.predict(x[150:]))
    with pytest.raises(th.ConfigError, match="no active run"):
        th_lightgbm.log_summary(booster)
