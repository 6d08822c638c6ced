"""PyTorch Lightning with TracehouseLogger: metrics at the global step, hyperparameters, checkpoints
as model artifacts (latest / best), watch, and a two-process ddp_spawn run where rank 0 logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

import tracehouse as th  # noqa: E402
from tracehouse.integrations.lightning import TracehouseLogger  # noqa: E402

MODULE = """
import torch
import lightning.pytorch as pl


class Regressor(pl.LightningModule):
    def __init__(self, lr=0.05, hidden=8):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-1.0], [0.5]])
    data = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(data, batch_size=16), torch.utils.data.DataLoader(data, batch_size=32)
"""


def _module(tmp_path: Path):  # type: ignore[no-untyped-def]
    import importlib.util

    source = tmp_path / "lightning_module.py"
    source.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("lightning_module", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trainer(tmp_path: Path, logger: TracehouseLogger, **options):  # type: ignore[no-untyped-def]
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=2,
                                              save_last=True)  # fmt: skip
    trainer = pl.Trainer(max_epochs=3, logger=logger, callbacks=[checkpoint], log_every_n_steps=1,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         default_root_dir=tmp_path, **options)  # fmt: skip
    return trainer, checkpoint


def test_fit_logs_metrics_hyperparameters_and_checkpoints(th_env: th.Settings, tmp_path: Path) -> None:
    lightning_module = _module(tmp_path)
    logger = TracehouseLogger(project="pl", name="fit", log_model=True)
    model = lightning_module.Regressor(lr=0.05)
    trainer, checkpoint = _trainer(tmp_path, logger)
    logger.watch(model.net, log="all", log_freq=4)
    trainer.fit(model, *lightning_module.loaders())
    run_id = logger.version
    assert logger._run is None and th.run is None  # its own run, finished
    th.sync()
    row = th.runs(project="pl").iloc[0]
    assert (row["run_id"], row["state"], row["config.lr"], row["config.hidden"]) == (run_id, "finished", 0.05, 8)
    history = th.history(run_id, project="pl")
    train = history.dropna(subset=["train_loss"])
    assert list(train["_step"]) == list(range(12))  # 4 batches x 3 epochs, at the trainer's global step
    val = history.dropna(subset=["val_loss"])
    assert list(val["_step"]) == [3, 7, 11] and list(val["epoch"]) == [0, 1, 2]
    assert history["val_loss"].dropna().iloc[-1] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    histograms = th.query(f"SELECT DISTINCT key FROM run_values WHERE run_id = '{run_id}' AND key LIKE '%/0.weight'")
    assert set(histograms["key"]) == {"gradients/0.weight", "parameters/0.weight"}
    versions = th.query(f"SELECT version, metadata FROM artifacts FINAL WHERE name = 'model-{run_id}' ORDER BY version")
    kept = {Path(p).name for p in checkpoint.best_k_models} | {Path(checkpoint.last_model_path).name}
    assert {json.loads(m)["original_filename"] for m in versions["metadata"]} == kept
    best = th.use_artifact(f"model-{run_id}:best", project="pl").download(tmp_path / "best")
    assert (Path(best) / Path(checkpoint.best_model_path).name).read_bytes() == Path(
        checkpoint.best_model_path).read_bytes()  # fmt: skip


def test_ddp_spawn_two_processes_log_one_run_from_rank_zero(th_env: th.Settings, tmp_path: Path) -> None:
    from conftest import run_python

    (tmp_path / "lightning_module.py").write_text(MODULE)
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import lightning.pytorch as pl
import tracehouse as th
from tracehouse.integrations.lightning import TracehouseLogger
from lightning_module import Regressor, loaders

if __name__ == "__main__":
    logger = TracehouseLogger(project="ddp")
    trainer = pl.Trainer(max_epochs=2, logger=logger, strategy="ddp_spawn", devices=2, accelerator="cpu",
                         log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir={str(tmp_path)!r})
    trainer.fit(Regressor(), *loaders())
    runs = th.runs(project="ddp")
    steps = th.query("SELECT count() AS n, uniqExact(step) AS steps FROM metrics FINAL WHERE key = 'train_loss'")
    print(len(runs), runs["run_id"].iloc[0] == logger.version, runs["state"].iloc[0], steps["n"].iloc[0],
          steps["steps"].iloc[0])
"""
    script = tmp_path / "ddp.py"
    script.write_text(code)
    result = run_python(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
                        env={"TRACEHOUSE_DIR": str(tmp_path / "data"), "TRACEHOUSE_SILENT": "1"}, clean=True,
                        timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # 64 examples split over two ranks: 2 batches a rank an epoch, 4 steps, logged once (rank 0)
    assert result.stdout.split() == ["1", "True", "finished", "4", "4"]


def test_bad_options(th_env: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match="log_model"):
        TracehouseLogger(log_model="best")
