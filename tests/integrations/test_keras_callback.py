"""Keras 3 (torch backend) with TracehouseCallback: metrics, model summary, checkpoints, predictions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras needs a backend; torch is the one the suite installs
keras = pytest.importorskip("keras")

import tracehouse as th  # noqa: E402
from tracehouse.integrations.keras import TracehouseCallback, WandbMetricsLogger  # noqa: E402


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32"))[:, None]


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    return model


def test_fit_logs_epochs_batches_config_checkpoints_and_predictions(th_env: th.Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, y = _data()
    model = _model()
    callback = TracehouseCallback(project="keras", name="fit", config={"batch_size": 16}, log_freq=2,
                                  log_model="best", validation_data=(x[:8], y[:8]), predictions=3)  # fmt: skip
    history = model.fit(x, y, batch_size=16, epochs=3, validation_data=(x[:8], y[:8]), callbacks=[callback], verbose=0)
    run = callback.run
    assert run.state == "finished" and th.run is None  # its own run, finished with training
    th.sync()
    row = th.runs(project="keras").iloc[0]
    assert row["config.batch_size"] == 16 and row["config.model.parameters"] == model.count_params() == 49
    assert row["config.model.optimizer.name"] == "adam" and row["config.model.loss"] == "mse"
    assert [
        layer["class"]
        for layer in json.loads(th.query("SELECT config FROM runs FINAL WHERE project = 'keras'")["config"].iloc[0])[
            "model"
        ]["layers"]
    ] == ["Dense", "Dense"]
    frame = th.history(run.id, project="keras")
    epochs = frame.dropna(subset=["epoch/loss"])
    assert list(epochs["epoch/epoch"]) == [0, 1, 2]
    assert list(epochs["epoch/loss"]) == pytest.approx(history.history["loss"], rel=1e-6)
    assert list(epochs["epoch/val_mae"]) == pytest.approx(history.history["val_mae"], rel=1e-6)
    assert epochs["epoch/learning_rate"].iloc[0] == pytest.approx(0.05)
    batches = frame.dropna(subset=["batch/loss"])
    assert list(batches["batch/batch_step"]) == [2, 4, 6, 8, 10, 12]  # 4 batches an epoch, every 2nd
    versions = th.query("SELECT version, metadata FROM artifacts FINAL WHERE project = 'keras' ORDER BY version")
    improved = [i for i, v in enumerate(history.history["val_loss"]) if v == min(history.history["val_loss"][: i + 1])]
    assert len(versions) == len(improved)
    aliases = th.query("SELECT alias, version FROM artifact_aliases FINAL WHERE project = 'keras'")
    assert dict(zip(aliases["alias"], aliases["version"], strict=True))["best"] == len(improved) - 1
    path = th.use_artifact(f"model-{run.id}:best", project="keras").download(tmp_path / "best")
    restored = keras.saving.load_model(os.path.join(path, f"model-{improved[-1]}.keras"))
    assert restored.count_params() == 49
    table = th.query(f"SELECT step, row FROM run_tables WHERE run_id = '{run.id}' AND key = 'validation_predictions'")
    assert len(table) == 9 and set(json.loads(table["row"].iloc[0])) == {"index", "target", "prediction"}


def test_inside_an_active_run_and_the_wandb_names(th_env: th.Settings) -> None:
    x, y = _data()
    with th.init(project="keras-own") as run:
        callback = WandbMetricsLogger()
        _model().fit(x, y, epochs=2, callbacks=[callback], verbose=0)
        assert callback.run is run and run.state == "running"  # the script's run: left running
        th.log({"after": 1.0})
    th.sync()
    assert th.query("SELECT count() AS n FROM artifacts WHERE project = 'keras-own'")["n"].iloc[0] == 0
    assert list(th.history(run.id, project="keras-own").dropna(subset=["epoch/loss"])["epoch/epoch"]) == [0, 1]
    with pytest.raises(th.ConfigError, match="log_model"):
        TracehouseCallback(log_model="sometimes")
    with pytest.raises(th.ConfigError, match="validation_data"):
        TracehouseCallback(predictions=4)
