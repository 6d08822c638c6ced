"""Real W&B scripts, with the import swapped, run unchanged and their data lands in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_python

QUICKSTART = """
import random

import {module} as wandb

wandb.login()
run = wandb.init(
    project="my-awesome-project",
    entity="my-team",
    config={{"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 5}},
    settings=wandb.Settings(silent=True),
)
epochs = 5
offset = random.random() / 5
for epoch in range(2, epochs):
    acc = 1 - 2 ** -epoch - random.random() / epoch - offset
    loss = 2 ** -epoch + random.random() / epoch + offset
    wandb.log({{"acc": acc, "loss": loss}})
table = wandb.Table(columns=["x", "y"], data=[[i, i * i] for i in range(5)])
wandb.log({{"squares": wandb.plot.line(table, "x", "y", title="squares"), "samples": table}})
run.summary["best_acc"] = 0.9
wandb.define_metric("loss", summary="min")
wandb.finish()

api = wandb.Api()
stored = api.run(f"my-team/my-awesome-project/{{run.id}}")
print(json.dumps({{"config": stored.config, "steps": len(stored.history()), "entity": stored.entity,
                  "state": stored.state, "best": stored.summary.get("best_acc"), "path": run.path,
                  "chart_rows": int(wandb.query("SELECT count() AS n FROM run_tables WHERE key = 'squares'")["n"][0]),
                  "chart": wandb.runs(project="my-awesome-project")["summary.squares"][0]["chart"]["kind"]}}))
"""


@pytest.mark.parametrize("module", ["tracehouse", "tracehouse.wandb"])
def test_the_wandb_quickstart_runs_unchanged(module: str, tmp_path: Path) -> None:
    code = "import json\n" + QUICKSTART.format(module=module)
    result = run_python(code, env={"TRACEHOUSE_DIR": str(tmp_path / "data")}, clean=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # silent=True: no line
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["config"] == {"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 5}
    # history() holds every logged value, as W&B's does: the 4th step logged only a chart and a table
    assert out["steps"] == 4 and out["state"] == "finished" and out["best"] == 0.9
    assert out["chart_rows"] == 5 and out["chart"] == "line"
    assert out["entity"] == "my-team" and out["path"].startswith("my-team/my-awesome-project/")


def test_a_wandb_script_reads_its_settings_from_wandb_variables(tmp_path: Path) -> None:
    code = (
        "import tracehouse as wandb\n"
        "with wandb.init(config={'lr': 0.1}) as run:\n"
        "    wandb.log({'loss': 1.0})\n"
        "print(run.project, run.mode, run.name)\n"
    )
    env = {"TRACEHOUSE_DIR": str(tmp_path / "data"), "WANDB_PROJECT": "env-project", "WANDB_MODE": "dryrun",
           "WANDB_NAME": "nightly", "WANDB_SILENT": "true"}  # fmt: skip
    result = run_python(code, env=env, clean=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["env-project", "offline", "nightly"]
