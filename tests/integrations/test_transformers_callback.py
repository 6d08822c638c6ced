"""Hugging Face Transformers' Trainer with TracehouseCallback (a tiny BERT built from a config, no
download): config, metrics at the global step, checkpoints as artifacts, report_to="tracehouse",
and an evals.evaluate inside training linked to the training run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tracehouse as th  # noqa: E402
from tracehouse import evals  # noqa: E402
from tracehouse.integrations.transformers import TracehouseCallback, rewrite_logs  # noqa: E402


class Pairs(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(n)
        self.ids = torch.randint(1, 40, (n, 6), generator=generator)
        self.labels = (self.ids[:, 0] > 20).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(6, dtype=torch.long), "labels": self.labels[i]}


def _model() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)  # fmt: skip
    return transformers.BertForSequenceClassification(config)


def _args(tmp_path: Path, **options: Any) -> Any:
    return transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, per_device_eval_batch_size=8,
        num_train_epochs=2, logging_steps=1, eval_strategy="epoch", save_strategy="epoch", learning_rate=1e-3,
        use_cpu=True, disable_tqdm=True, seed=0, **options,
    )  # fmt: skip


def test_trainer_logs_config_metrics_and_checkpoints(th_env: th.Settings, tmp_path: Path) -> None:
    callback = TracehouseCallback(project="hf", name="bert-tiny", log_model="checkpoint")
    trainer = transformers.Trainer(model=_model(), args=_args(tmp_path, report_to="none", load_best_model_at_end=True),
                                   train_dataset=Pairs(32), eval_dataset=Pairs(16), callbacks=[callback])  # fmt: skip
    trainer.train()
    run = callback.run
    assert th.run is run and run.state == "running"  # stays active for trainer.evaluate(), as W&B's does
    final = trainer.evaluate()
    th.finish()
    th.sync()
    row = th.runs(project="hf").iloc[0]
    assert row["config.learning_rate"] == 1e-3 and row["config.hidden_size"] == 16
    assert row["config.model/num_parameters"] == sum(p.numel() for p in trainer.model.parameters())
    history = th.history(run.id, project="hf")
    train = history.dropna(subset=["train/loss"])
    assert list(train["_step"]) == list(range(1, 9)) == list(train["train/global_step"])  # 4 steps an epoch
    eval_rows = history.dropna(subset=["eval/loss"])
    assert list(eval_rows["_step"]) == [4, 8]  # each epoch's evaluation; trainer.evaluate() lands on step 8 too
    assert eval_rows["eval/loss"].iloc[-1] == pytest.approx(final["eval_loss"], rel=1e-6)
    versions = th.query(f"SELECT version, metadata FROM artifacts FINAL WHERE name = 'checkpoint-{run.id}'")
    assert sorted(json.loads(m)["global_step"] for m in versions["metadata"]) == [4, 8]
    aliases = set(th.query(f"SELECT alias FROM artifact_aliases FINAL WHERE name = 'checkpoint-{run.id}'")["alias"])
    assert {"latest", "best", "checkpoint_global_step_4", "checkpoint_global_step_8", "epoch_2.0"} <= aliases
    folder = th.use_artifact(f"checkpoint-{run.id}:latest", project="hf").download(tmp_path / "ckpt")
    restored = transformers.BertForSequenceClassification.from_pretrained(folder)
    assert restored.config.hidden_size == 16


class EvaluateWithTracehouse(transformers.TrainerCallback):  # type: ignore[misc]
    """A user's callback: after each evaluation, an evals.evaluate of the model's predictions."""

    def __init__(self, data: Pairs) -> None:
        self.data = data

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        @th.trace(kind="llm", name="classify")
        def classify(ids: list[int]) -> int:
            with torch.no_grad():
                return int(model(input_ids=torch.tensor([ids])).logits.argmax())

        rows = [
            {"id": str(i), "ids": self.data.ids[i].tolist(), "expected": int(self.data.labels[i])} for i in range(4)
        ]
        evals.evaluate(classify, rows, scorers=[evals.exact_match()], name=f"step{state.global_step}", project="hf2")


def test_report_to_tracehouse_and_an_eval_in_training_linked_to_the_run(th_env: th.Settings, tmp_path: Path) -> None:
    trainer = transformers.Trainer(model=_model(), args=_args(tmp_path, report_to="tracehouse", run_name="linked"),
                                   train_dataset=Pairs(16), eval_dataset=Pairs(8),
                                   callbacks=[EvaluateWithTracehouse(Pairs(8))])  # fmt: skip
    with th.init(project="hf2", name="outer") as outer:  # the callback logs to the script's own run
        trainer.train()
        assert th.run is outer
    th.sync()
    history = th.history(outer.id, project="hf2")
    assert "train/loss" in history and history["evals/step2/exact_match.pass_rate"].notna().any()
    joined = th.query(
        "SELECT t.name AS training, e.name AS eval, count() AS spans FROM spans s "
        "JOIN runs AS e FINAL ON s.run_id = e.run_id "
        "JOIN runs AS t FINAL ON JSONExtractString(e.config, 'parent_run_id') = t.run_id "
        "WHERE s.name = 'classify' GROUP BY training, eval ORDER BY eval"
    )
    assert joined.values.tolist() == [["outer", "step2", 4], ["outer", "step4", 4]]


def test_rewrite_logs_and_options() -> None:
    assert rewrite_logs({"loss": 1, "eval_loss": 2.0, "test_acc": 0.5, "note": "text"}) == {
        "train/loss": 1.0, "eval/loss": 2.0, "test/acc": 0.5,
    }  # fmt: skip
    with pytest.raises(th.ConfigError, match="log_model"):
        TracehouseCallback(log_model="always")
