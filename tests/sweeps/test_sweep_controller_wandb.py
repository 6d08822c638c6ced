"""W&B's `wandb.controller()`: a sweep built in code, created, followed until it is done."""

from __future__ import annotations

import threading

import pytest

import tracehouse as th


def _train() -> None:
    with th.init() as run:
        run.log({"loss": (run.config.lr - 0.05) ** 2})


def test_a_sweep_built_with_the_controller_runs_and_its_run_follows_it_to_the_end(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    ctrl = th.controller(project="ctl")
    ctrl.configure_search("grid")
    ctrl.configure_program("train.py")
    ctrl.configure_parameter("lr", values=[0.01, 0.05, 0.1])
    ctrl.configure_metric("loss", goal="minimize")
    ctrl.configure_controller(type="local")
    assert ctrl.sweep_config == {
        "method": "grid", "program": "train.py", "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.01, 0.05, 0.1]}},
    }  # fmt: skip
    sweep_id = ctrl.create()
    assert not ctrl.done() and ctrl.status["state"] == "running"
    with pytest.raises(th.ConfigError, match="cannot change"):
        ctrl.configure_search("random")
    worker = threading.Thread(target=th.agent, args=(sweep_id,), kwargs={"function": _train, "project": "ctl"})
    worker.start()
    final = ctrl.run(poll_seconds=0.05, timeout=120)
    worker.join(60)
    assert final["state"] == "finished" and len(final["trials"]) == 3 and ctrl.done()
    assert final["best"]["params"] == {"lr": 0.05}
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"tracehouse: sweep {sweep_id}")]
    assert lines[-1].startswith(f"tracehouse: sweep {sweep_id} finished: 3 finished; best loss=0 (")


def test_the_controller_of_an_existing_sweep_and_its_errors(th_env: th.Settings) -> None:
    config = {"method": "grid", "parameters": {"lr": {"values": [1]}}}
    sweep_id = th.sweep(config, project="ctl2")
    existing = th.controller(f"someone/ctl2/{sweep_id}")
    assert existing.sweep_id == sweep_id and existing.sweep_config == config and existing.create() == sweep_id
    with pytest.raises(th.NotFoundError, match="nope"):
        th.controller("nope", project="ctl2")
    bad = th.controller({"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}, project="ctl2")
    with pytest.raises(th.ConfigError, match="grid search needs `values`"):
        bad.create()
    with pytest.raises(th.ConfigError, match="create"):
        th.controller().step()
    with pytest.raises(th.ConfigError, match="'local' or 'cloud'"):
        th.controller().configure_controller(type="remote")
