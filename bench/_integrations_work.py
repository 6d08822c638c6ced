"""The training loops of bench/integrations.py: one per framework, with no logger, tracehouse's, or W&B's.

Each `run_<framework>(peer, steps)` builds tiny CPU work (random data made here), starts the peer's
run before the clock (W&B's integrations want `wandb.init` first; tracehouse's take the active run),
warms the library up with a short untimed pass, then times `steps` training steps with the peer's
callback logging every step. It returns the seconds of the timed loop and the peer's run id.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable


def _start(peer: str) -> Any:
    if peer == "tracehouse":
        import tracehouse as th

        return th.init(project="bench-integrations")
    if peer == "wandb":
        import wandb

        return wandb.init(project="bench-integrations", mode="offline")
    return None


def run_keras(peer: str, steps: int) -> tuple[float, Any]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(steps * 8, 4)).astype("float32"), rng.normal(size=(steps * 8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x[:64], y[:64], batch_size=8, epochs=1, verbose=0)  # warm-up, untimed
    run = _start(peer)
    callbacks: list[Any] = []
    if peer == "tracehouse":
        from tracehouse.integrations.keras import TracehouseCallback

        callbacks = [TracehouseCallback(log_freq="batch", log_model=False)]
    elif peer == "wandb":
        from wandb.integration.keras import WandbMetricsLogger

        callbacks = [WandbMetricsLogger(log_freq="batch")]
    started = time.perf_counter()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
    return time.perf_counter() - started, run


def _lightning_module() -> Any:
    import lightning.pytorch as pl
    import torch

    class Regressor(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Regressor()


def run_lightning(peer: str, steps: int) -> tuple[float, Any]:
    import lightning.pytorch as pl
    import torch

    data = torch.utils.data.TensorDataset(torch.randn(steps * 8, 4), torch.randn(steps * 8, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    options = {"enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
               "log_every_n_steps": 1, "accelerator": "cpu"}  # fmt: skip
    pl.Trainer(max_steps=20, logger=False, **options).fit(_lightning_module(), loader)  # warm-up, untimed
    logger: Any = False
    run = None
    if peer == "tracehouse":
        from tracehouse.integrations.lightning import TracehouseLogger

        logger = TracehouseLogger(project="bench-integrations")
        run = logger.experiment
    elif peer == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        logger = WandbLogger(project="bench-integrations", offline=True)
        run = logger.experiment
    trainer = pl.Trainer(max_steps=steps, logger=logger, **options)
    started = time.perf_counter()
    trainer.fit(_lightning_module(), loader)
    return time.perf_counter() - started, run


def run_transformers(peer: str, steps: int) -> tuple[float, Any]:
    import tempfile

    import torch
    import transformers

    class Examples(torch.utils.data.Dataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return steps * 4

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": torch.tensor([1 + i % 30] * 6), "labels": torch.tensor(i % 2)}

    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)  # fmt: skip

    def trainer(report_to: str, callbacks: list[Any], max_steps: int) -> Any:
        args = transformers.TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4,
                                              max_steps=max_steps, logging_steps=1, save_strategy="no",
                                              report_to=report_to, use_cpu=True, disable_tqdm=True)  # fmt: skip
        model = transformers.BertForSequenceClassification(config)
        return transformers.Trainer(model=model, args=args, train_dataset=Examples(), callbacks=callbacks)

    trainer("none", [], 10).train()  # warm-up, untimed
    run = _start(peer)
    callbacks: list[Any] = []
    if peer == "tracehouse":
        from tracehouse.integrations.transformers import TracehouseCallback

        callbacks = [TracehouseCallback()]
    timed = trainer("wandb" if peer == "wandb" else "none", callbacks, steps)
    started = time.perf_counter()
    timed.train()
    return time.perf_counter() - started, run


def _boosting_data() -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5))
    return x, x[:, 0] * 2 + rng.normal(scale=0.1, size=500)


def run_xgboost(peer: str, steps: int) -> tuple[float, Any]:
    import xgboost as xgb

    x, y = _boosting_data()
    train = xgb.DMatrix(x, y)
    params = {"max_depth": 2, "eta": 0.1, "eval_metric": "rmse", "nthread": 1}
    xgb.train(params, train, num_boost_round=10, evals=[(train, "train")], verbose_eval=False)  # warm-up
    run = _start(peer)
    callbacks: list[Any] = []
    if peer == "tracehouse":
        from tracehouse.integrations.xgboost import TracehouseCallback

        callbacks = [TracehouseCallback(log_feature_importance=False)]
    elif peer == "wandb":
        from wandb.integration.xgboost import WandbCallback

        callbacks = [WandbCallback(log_feature_importance=False)]
    started = time.perf_counter()
    xgb.train(params, train, num_boost_round=steps, evals=[(train, "train")], verbose_eval=False, callbacks=callbacks)
    return time.perf_counter() - started, run


def run_lightgbm(peer: str, steps: int) -> tuple[float, Any]:
    import lightgbm as lgb

    x, y = _boosting_data()
    params = {"objective": "regression", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    data = lgb.Dataset(x, y)
    lgb.train(params, data, num_boost_round=10, valid_sets=[data])  # warm-up
    run = _start(peer)
    callbacks: list[Any] = []
    if peer == "tracehouse":
        from tracehouse.integrations.lightgbm import tracehouse_callback

        callbacks = [tracehouse_callback(log_params=False)]
    elif peer == "wandb":
        from wandb.integration.lightgbm import wandb_callback

        callbacks = [wandb_callback(log_params=False)]
    started = time.perf_counter()
    lgb.train(params, data, num_boost_round=steps, valid_sets=[data], callbacks=callbacks)
    return time.perf_counter() - started, run


WORK: dict[str, Callable[[str, int], tuple[float, Any]]] = {
    "keras": run_keras, "lightning": run_lightning, "transformers": run_transformers, "xgboost": run_xgboost,
    "lightgbm": run_lightgbm,
}  # fmt: skip
# the metric key each framework's loop logs every step, per peer (how what was stored is counted)
STEP_KEY = {
    "keras": {"tracehouse": "batch/loss", "wandb": "batch/loss"},
    "lightning": {"tracehouse": "train_loss", "wandb": "train_loss"},
    "transformers": {"tracehouse": "train/loss", "wandb": "train/loss"},
    "xgboost": {"tracehouse": "train-rmse", "wandb": "train-rmse"},
    "lightgbm": {"tracehouse": "training_l2", "wandb": "training_l2"},
}
