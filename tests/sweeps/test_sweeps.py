"""Sweeps: configs, search methods, agents (in-process and CLI), hyperband, control, faults."""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import tracehouse as th
from tracehouse.collector.sweeps.config import parse_config
from tracehouse.collector.sweeps.search import TrialInfo, hyperband_stops


@pytest.mark.parametrize(
    "config, key, words",
    [
        ({"parameters": {"a": {"value": 1}}}, "method", "grid, random, bayes"),
        ({"method": "grid"}, "parameters", "non-empty dict"),
        ({"method": "random", "parameters": {"lr": {"min": 1.0, "max": 0.1}}}, "parameters.lr.min", "above max"),
        ({"method": "random", "parameters": {"lr": {"distribution": "gaussian"}}}, "parameters.lr.distribution",
         "one of constant, categorical"),
        ({"method": "random", "parameters": {"lr": {"distribution": "uniform", "min": 0}}}, "parameters.lr.max",
         "uniform needs min, max"),
        ({"method": "random", "parameters": {"lr": {"distribution": "normal", "sigma": 0}}}, "parameters.lr.sigma",
         "must be positive"),
        ({"method": "random", "parameters": {"lr": {"values": [1, 2], "probabilities": [0.5, 0.6]}}},
         "parameters.lr.probabilities", "sum to 1"),
        ({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}},
         "parameters.lr.min", "min > 0"),
        ({"method": "random", "parameters": {"lr": {"distribution": "uniform", "min": 0, "max": 1, "q": 2}}},
         "parameters.lr.q", "allowed: distribution, min, max"),
        ({"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}, "parameters.lr",
         "grid search needs `values`"),
        ({"method": "bayes", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}, "metric", "needs a metric"),
        ({"method": "random", "metric": {"name": "loss", "goal": "lowest"}, "parameters": {"a": {"value": 1}}},
         "metric.goal", "minimize or maximize"),
        ({"method": "random", "run_cap": 0, "parameters": {"a": {"value": 1}}}, "run_cap", "at least 1"),
        ({"method": "random", "early_terminate": {"type": "hyperband", "min_iter": 3},
          "parameters": {"a": {"value": 1}}}, "metric", "hyperband needs a metric"),
        ({"method": "random", "metric": {"name": "m"}, "early_terminate": {"type": "median"},
          "parameters": {"a": {"value": 1}}}, "early_terminate.type", "only hyperband"),
        ({"method": "random", "parameters": {"a": {"value": 1}}, "programme": "x.py"}, "programme",
         "not a sweep config key"),
        ({"method": "random", "parameters": {"opt": {"parameters": {}}}}, "parameters.opt", "non-empty dict"),
        ({"method": "random", "parameters": {"a": {"value": 1}}, "command": "python x.py"}, "command",
         "list of strings"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_key_and_what_is_allowed(config: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(th.ConfigError) as raised:
        parse_config(config)
    assert raised.value.option == key and words in str(raised.value)


def test_distributions_sample_within_their_ranges() -> None:
    config = parse_config({
        "method": "random",
        "parameters": {
            "const": {"value": "x"}, "cat": {"values": ["a", "b"], "probabilities": [0.0, 1.0]},
            "n": {"min": 2, "max": 4}, "u": {"min": 0.5, "max": 1.5},
            "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 5},
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "inv": {"distribution": "inv_log_uniform_values", "min": 0.1, "max": 10},
            "norm": {"distribution": "q_normal", "mu": 100, "sigma": 1, "q": 1},
            "ln": {"distribution": "log_normal", "mu": 0, "sigma": 0.1},
            "beta": {"distribution": "beta", "a": 2, "b": 5},
            "opt": {"parameters": {"name": {"values": ["adam"]}, "momentum": {"min": 0.8, "max": 0.99}}},
        },
    })  # fmt: skip
    rng = random.Random(1)
    for _ in range(200):
        flat = {p.name: p.sample(rng) for p in config.params}
        assert flat["const"] == "x" and flat["cat"] == "b" and flat["n"] in (2, 3, 4) and 0.5 <= flat["u"] <= 1.5
        assert flat["q"] in (0, 5, 10) and isinstance(flat["q"], int) and 1e-4 <= flat["lr"] <= 1e-1
        assert 0.1 <= flat["inv"] <= 10 and isinstance(flat["norm"], int) and 0.5 < flat["ln"] < 2
        assert 0 <= flat["beta"] <= 1 and 0.8 <= flat["opt.momentum"] <= 0.99
        for param in config.params:  # the inverse CDF bayes search uses stays in range too
            value = param.ppf(rng.random())
            assert param.distribution not in ("uniform",) or 0.5 <= value <= 1.5
    nested = config.nest({p.name: p.sample(rng) for p in config.params})
    assert nested["opt"]["name"] == "adam" and set(nested["opt"]) == {"name", "momentum"}


def _train(losses: dict[str, float]) -> Any:
    def train() -> None:
        with th.init(config={"lr": 1.0, "layers": 9}) as run:
            for epoch in range(3):
                run.log({"loss": run.config.lr * run.config.layers / (epoch + 1)})
            losses[run.id] = run.summary["loss"]

    return train


def test_grid_runs_every_point_once_then_the_sweep_is_finished(
    th_env: th.Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sweep_id = th.sweep({"method": "grid", "metric": {"name": "loss"},
                         "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}, "layers": {"values": [1, 2]},
                                        "opt": {"parameters": {"name": {"value": "adam"}}}}})  # fmt: skip
    losses: dict[str, float] = {}
    assert th.agent(sweep_id, function=_train(losses)) == 6
    assert "config 'lr' = 1.0 from the script is overridden by the sweep's" in caplog.text
    results = th.sweep_results(sweep_id)
    assert sorted(zip(results["lr"], results["layers"], strict=True)) == sorted(
        (lr, layers) for lr in (0.1, 0.01, 0.001) for layers in (1, 2)
    )
    assert set(results["state"]) == {"finished"} and set(results["opt.name"]) == {"adam"}
    assert results["metric"].iloc[0] == pytest.approx(0.001 / 3) and results["run_id"].iloc[0] in losses
    status = th.sweep_status(sweep_id)
    assert status["state"] == "finished" and status["best"]["params"] == {"lr": 0.001, "layers": 1, "opt.name": "adam"}
    assert th.agent(sweep_id, function=_train(losses)) == 0  # nothing left
    runs = th.query("SELECT count() AS n FROM runs FINAL WHERE sweep_id = {s:String}", {"s": sweep_id})
    assert runs["n"].iloc[0] == 6
    importance = th.param_importance(sweep_id)
    assert set(importance) == {"lr", "layers"} and sum(importance.values()) == pytest.approx(1.0)


def test_random_respects_run_cap_and_count_and_locks_config(
    th_env: th.Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sweep_id = th.sweep({"method": "random", "run_cap": 3, "metric": {"name": "loss"},
                         "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e-1},
                                        "layers": {"values": [1, 2, 3]}}})  # fmt: skip
    seen: list[tuple[float, int]] = []

    def train() -> None:
        with th.init(config={"lr": 5.0}) as run:
            run.config.lr = 7.0  # locked by the sweep: ignored with a warning
            run.config.update({"extra": 1})
            seen.append((run.config.lr, run.config.layers))
            run.log({"loss": run.config.lr})

    assert th.agent(sweep_id, function=train, count=2) == 2
    assert th.agent(sweep_id, function=train) == 1  # run_cap 3 holds across agents
    assert all(1e-3 <= lr <= 1e-1 and layers in (1, 2, 3) for lr, layers in seen)
    assert "config 'lr' is set by the sweep" in caplog.text
    assert th.sweep_status(sweep_id)["state"] == "finished"


def test_bayes_is_warm_started_from_the_store_and_failed_trials_count_as_worst(th_env: th.Settings) -> None:
    sweep_id = th.sweep({"method": "bayes", "metric": {"name": "loss", "goal": "minimize"}, "run_cap": 24,
                         "parameters": {"x": {"min": 0.0, "max": 1.0}, "kind": {"values": ["a", "b"]}}})  # fmt: skip

    def train() -> None:
        with th.init() as run:
            if run.config.x > 0.95:
                raise RuntimeError("diverged")  # a failed trial: the sweep goes on
            run.log({"loss": (run.config.x - 0.7) ** 2 + (0.5 if run.config.kind == "b" else 0.0)})

    assert th.agent(sweep_id, function=train, count=12) == 12
    assert th.agent(sweep_id, function=train) == 12  # a second agent continues from the stored trials
    results = th.sweep_results(sweep_id)
    assert len(results) == 24 and set(results["state"]) <= {"finished", "failed"}
    assert (results[results["state"] == "failed"]["x"] > 0.95).all()
    best = results.iloc[0]
    assert best["kind"] == "a" and abs(best["x"] - 0.7) < 0.1
    late = results[results["trial"] >= 12]
    assert (late["kind"] == "a").mean() >= 0.5  # the sampler learned "b" is worse


def test_hyperband_stops_the_laggards() -> None:
    config = parse_config({"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
                           "early_terminate": {"type": "hyperband", "max_iter": 5, "eta": 2, "s": 2},
                           "parameters": {"a": {"values": [1, 2, 3]}}})  # fmt: skip
    assert config.hyperband is not None and config.hyperband["bands"] == [1, 2]
    trials = [
        TrialInfo("a", {}, {}, "finished", [10, 9]),
        TrialInfo("b", {}, {}, "running", [10, 10]),  # behind at band 1
        TrialInfo("c", {}, {}, "running", [10, 8, 8]),  # passes band 1, behind at band 2
        TrialInfo("d", {}, {}, "running", [10, 7, 7]),
        TrialInfo("e", {}, {}, "finished", [10, 6, 6]),
        TrialInfo("f", {}, {}, "running", [10]),  # no band reached yet
    ]
    assert hyperband_stops(config, trials) == ["b", "c"]
    maximize = parse_config({**config.raw, "metric": {"name": "acc", "goal": "maximize"}})
    flipped = [TrialInfo(t.run_id, {}, {}, t.state, [-v for v in t.history]) for t in trials]
    assert hyperband_stops(maximize, flipped) == ["b", "c"]
    with pytest.raises(th.ConfigError, match="no band"):
        parse_config({**config.raw, "early_terminate": {"type": "hyperband", "max_iter": 1, "s": 1, "eta": 3}})


def test_hyperband_stops_a_running_trial_which_ends_stopped(
    th_env: th.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracehouse.sweeps import agent as _sweep_agent

    monkeypatch.setattr(_sweep_agent, "HEARTBEAT_SECONDS", 0.1)
    sweep_id = th.sweep({"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
                         "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 3},
                         "parameters": {"quality": {"values": [1.0, 0.0]}}})  # fmt: skip
    logged: dict[str, int] = {}

    def train() -> None:
        with th.init() as run:
            for step in range(60):
                run.log({"loss": 10.0 - run.config.quality * 5 + step * 0.001})
                logged[run.id] = step + 1
                if run.config.quality < 1:
                    time.sleep(0.05)  # the bad trial is slow enough for a heartbeat to catch it

    assert th.agent(sweep_id, function=train) == 2
    results = th.sweep_results(sweep_id).set_index("quality")
    assert results.loc[1.0, "state"] == "finished" and logged[results.loc[1.0, "run_id"]] == 60
    assert results.loc[0.0, "state"] == "stopped" and logged[results.loc[0.0, "run_id"]] < 60
    row = th.runs(filters={"run_id": results.loc[0.0, "run_id"]}).iloc[0]
    assert row["state"] == "stopped" and row["sweep_id"] == sweep_id


def test_a_metric_set_only_in_the_summary_counts(th_env: th.Settings) -> None:
    sweep_id = th.sweep({"method": "grid", "metric": {"name": "score", "goal": "maximize"},
                         "parameters": {"k": {"values": [1, 2]}}})  # fmt: skip

    def train() -> None:
        with th.init() as run:
            run.summary["score"] = run.config.k * 10

    assert th.agent(sweep_id, function=train) == 2
    assert th.sweep_results(sweep_id)["metric"].tolist() == [20, 10]


def test_control_pause_resume_stop_cancel(th_env: th.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracehouse.sweeps import agent as _sweep_agent

    sweep_id = th.sweep({"method": "random", "parameters": {"a": {"min": 0.0, "max": 1.0}}})
    assert th.sweep_control(sweep_id, "pause") == "paused"
    waits: list[float] = []
    monkeypatch.setattr(_sweep_agent, "WAIT_SECONDS", 0.01)
    real_sleep = time.sleep

    def sleep_then_resume(seconds: float) -> None:  # the agent waits while paused, then goes on
        waits.append(seconds)
        if len(waits) == 3:
            th.sweep_control(sweep_id, "resume")
        real_sleep(seconds)

    monkeypatch.setattr(_sweep_agent.time, "sleep", sleep_then_resume)

    def train() -> None:
        with th.init() as run:
            run.log({"x": run.config.a})

    assert th.agent(sweep_id, function=train, count=2) == 2 and len(waits) == 3
    assert th.sweep_control(sweep_id, "stop") == "stopped"
    assert th.agent(sweep_id, function=train) == 0
    assert th.sweep_control(sweep_id, "cancel") == "cancelled"
    with pytest.raises(th.ConfigError, match="is cancelled; it cannot be resumed"):
        th.sweep_control(sweep_id, "resume")
    with pytest.raises(th.ConfigError, match="expected one of stop, pause, resume, cancel"):
        th.sweep_control(sweep_id, "explode")


def test_faults_a_trial_that_raises_an_unknown_sweep_and_a_dead_agent(
    th_env: th.Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(th.NotFoundError, match="no sweep 'nope'"):
        th.agent("nope", function=lambda: None)
    with pytest.raises(th.ConfigError, match=r"parameters\.lr\.min"):
        th.sweep({"method": "random", "parameters": {"lr": {"min": 2.0, "max": 1.0}}})
    with pytest.raises(th.ConfigError, match="count"):
        th.agent("x", function=lambda: None, count=0)
    sweep_id = th.sweep({"method": "grid", "metric": {"name": "loss"}, "parameters": {"i": {"values": [1, 2, 3]}}})

    def train() -> None:
        with th.init() as run:
            run.log({"loss": float(run.config.i)})
            if run.config.i == 2:
                raise ValueError("bad batch")

    with caplog.at_level(logging.ERROR):
        assert th.agent(sweep_id, function=train) == 3
    assert "trial" in caplog.text and "raised; it is failed and the sweep goes on" in caplog.text
    states = th.sweep_results(sweep_id).set_index("i")["state"].to_dict()
    assert states == {1: "finished", 2: "failed", 3: "finished"}
    assert len(th.history(th.sweep_results(sweep_id).set_index("i").loc[2, "run_id"])) == 1  # its log kept

    # an agent that claimed a trial and died: the trial shows crashed, the sweep goes on
    from tracehouse.collector.sweeps import controller as controller_module
    from tracehouse.collector.sweeps.controller import controller_for
    from tracehouse.reads.reading import get_store
    from tracehouse.spans.runtime import runtime

    other = th.sweep({"method": "random", "parameters": {"a": {"min": 0.0, "max": 1.0}}})
    controller = controller_for(get_store(), runtime.sink().submit)
    claimed = controller.next_trial(th_env.project, other, "dead-agent")
    monkeypatch.setattr(controller_module, "AGENT_DEAD_AFTER", 0.2)
    time.sleep(0.3)
    status = controller.status(th_env.project, other)
    assert [(t["run_id"], t["state"]) for t in status["trials"]] == [(claimed["run_id"], "crashed")]
    assert controller.next_trial(th_env.project, other, "live-agent")["action"] == "run"


def test_cli_sweep_and_agent_run_the_command_with_macros(
    th_env: th.Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracehouse.cli.main import main
    from tracehouse.sweeps.agent import build_command

    program = tmp_path / "train.py"
    program.write_text(
        "import json, sys\nimport tracehouse as th\n"
        "with th.init(config={'lr': 1.0}) as run:\n"
        "    run.config.update({'argv': sys.argv[1:]})\n"
        "    run.log({'loss': run.config.lr * run.config.depth})\n"
        "    if run.config.depth == 3:\n"
        "        sys.exit(3)\n"
    )
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"program: {program}\nmethod: grid\nmetric: {{name: loss}}\n"
        "parameters:\n  lr: {values: [0.5]}\n  depth: {values: [1, 2, 3]}\n"
        "command: ['${env}', '${interpreter}', '${program}', '${args_no_equals}']\n"
    )
    assert main(["sweep", str(config)]) == 0
    sweep_id = capsys.readouterr().out.strip()
    assert main(["agent", sweep_id]) == 0
    assert "agent ran 3 trial(s)" in capsys.readouterr().out
    results = th.sweep_results(sweep_id).set_index("depth")
    assert results["state"].to_dict() == {1: "finished", 2: "finished", 3: "failed"}
    assert list(results["metric"]) == [0.5, 1.0, 1.5]
    row = th.runs(filters={"run_id": results.loc[2, "run_id"]}).iloc[0]
    assert list(row["config.argv"]) == ["--lr", "0.5", "--depth", "2"] and row["config.lr"] == 0.5
    assert main(["sweep", "status", sweep_id]) == 0
    out = capsys.readouterr().out
    assert "(grid): finished" in out and "trials: 1 failed, 2 finished" in out and "metric: loss (minimize)" in out
    assert main(["sweep", "--pause", sweep_id]) == 1 and "is finished; it cannot be paused" in capsys.readouterr().err
    assert main(["sweep", "status", "nope"]) == 1 and "no sweep 'nope'" in capsys.readouterr().err

    command = build_command(
        {"program": "t.py", "command": ["${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}",
                                        "${args_json}", "${args_json_file}", "${envvar:HOME}", "--fixed"]},
        {"lr": 0.1, "opt": {"name": "adam"}}, "/tmp/params.json",
    )  # fmt: skip
    assert command[:3] == ["/usr/bin/env", sys.executable, "t.py"]
    assert command[3:9] == ["--lr=0.1", '--opt={"name": "adam"}', "lr=0.1", 'opt={"name": "adam"}',
                            json.dumps({"lr": 0.1, "opt": {"name": "adam"}}), "/tmp/params.json"]  # fmt: skip
    assert command[-1] == "--fixed"
    with pytest.raises(th.ConfigError, match="NO_SUCH_VARIABLE"):
        build_command({"command": ["${envvar:NO_SUCH_VARIABLE}"]}, {}, "")


def test_the_cli_agent_stops_a_child_trial_with_sigterm_and_it_ends_stopped(
    th_env: th.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracehouse.sweeps import agent as _sweep_agent

    monkeypatch.setattr(_sweep_agent, "HEARTBEAT_SECONDS", 0.2)
    program = tmp_path / "train.py"
    program.write_text(
        "import time\nimport tracehouse as th\n"
        "with th.init() as run:\n"
        "    for step in range(200):\n"
        "        run.log({'loss': 10.0 - run.config.quality * 5})\n"
        "        if step % 5 == 0:\n"
        "            th.flush()\n"
        "        time.sleep(0.001 if run.config.quality else 0.05)\n"
    )
    sweep_id = th.sweep({"method": "grid", "program": str(program), "metric": {"name": "loss"},
                         "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 3},
                         "parameters": {"quality": {"values": [1, 0]}}})  # fmt: skip
    assert th.agent(sweep_id) == 2
    results = th.sweep_results(sweep_id).set_index("quality")
    assert results.loc[1, "state"] == "finished"
    assert results.loc[0, "state"] == "stopped"
    stopped = th.runs(filters={"run_id": results.loc[0, "run_id"]}).iloc[0]
    assert stopped["state"] == "stopped"  # the child caught SIGTERM and finished its run as stopped
    assert 3 <= len(th.history(results.loc[0, "run_id"])) < 200
