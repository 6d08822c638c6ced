"""W&B's init arguments, WANDB_* variables, run attributes and module helpers, as W&B scripts use them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_python

import tracehouse as th
from tracehouse.tracking.config import Config
from tracehouse.tracking.run_wandb import AlertLevel
from tracehouse.tracking.wandb_module import errors, login, setup, teardown, termerror, termlog, termwarn
from tracehouse.tracking.wandb_options import Settings


def _stored(run_id: str, column: str, project: str = "wb") -> object:
    frame = th.query(f"SELECT {column} AS v FROM runs FINAL WHERE run_id = {{r:String}}", {"r": run_id})
    return frame["v"][0]


def test_entity_is_kept_with_the_run_and_in_its_path(th_env: th.Settings) -> None:
    with th.init(project="wb", entity="team-a") as run:
        assert run.entity == "team-a" and run.path == f"team-a/wb/{run.id}" and run.project_name() == "wb"
        assert run.start_time == pytest.approx(__import__("time").time(), abs=60)
        assert run.status()["state"] == "running" and run.url is None and run.get_url() is None
    assert _stored(run.id, "entity") == "team-a"
    assert th.runs(project="wb")["entity"].tolist() == ["team-a"]


def test_reinit_returns_finishes_or_keeps_the_previous_run(th_env: th.Settings) -> None:
    first = th.init(project="wb")
    assert th.init(project="wb", reinit=False) is first and first.state == "running"
    kept = th.init(project="wb", reinit="create_new")
    assert first.state == "running" and kept is not first
    second = th.init(project="wb", reinit=True)
    assert kept.state == "finished" and second is not kept
    for run in (first, second):
        run.finish()
    with pytest.raises(th.ConfigError, match="reinit"):
        th.init(project="wb", reinit="sometimes")


def test_settings_object_or_dict_name_the_run_and_silence_it(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with th.init(project="wb", settings=Settings(run_name="from-settings", silent=True, run_tags=["x"])) as run:
        assert run.name == "from-settings" and run.tags == ["x"]
    assert capsys.readouterr().err == ""
    with th.init(project="wb", settings={"run_group": "g"}) as run:
        assert run.group == "g"
    with pytest.raises(th.ConfigError, match="settings"):
        th.init(project="wb", settings=42)


def test_config_from_a_yaml_file_with_include_and_exclude(th_env: th.Settings, tmp_path: Path) -> None:
    path = tmp_path / "config-defaults.yaml"
    path.write_text("wandb_version: 1\nlr:\n  desc: learning rate\n  value: 0.01\nlayers: 2\nsecret: s\n")
    with th.init(project="wb", config=str(path), config_exclude_keys=["secret"]) as run:
        assert run.config.as_dict() == {"lr": 0.01, "layers": 2}
    with th.init(project="wb", config={"a": 1, "b": 2}, config_include_keys=["a"]) as run:
        assert run.config.as_dict() == {"a": 1}
    with pytest.raises(th.ConfigError, match="config"):
        th.init(project="wb", config=str(tmp_path / "missing.yaml"))


def test_mode_aliases_and_unknown_arguments(th_env: th.Settings) -> None:
    with th.init(project="wb", mode="dryrun") as run:
        assert run.offline and run.mode == "offline"
    with pytest.raises(th.ConfigError, match="mode"):
        th.init(project="wb", mode="sometimes")
    with pytest.raises(th.ConfigError, match="colour"):
        th.init(project="wb", colour="red")
    with th.init(project="wb", anonymous="allow", sync_tensorboard=False, monitor_gym=False, save_code=False) as run:
        assert run.state == "running"


def test_allow_val_change_at_init_and_del_config(th_env: th.Settings) -> None:
    with th.init(project="wb", config={"lr": 0.1, "drop": 1}, allow_val_change=True) as run:
        run.config.lr = 0.2
        del run.config["drop"]
        assert run.config.as_dict() == {"lr": 0.2}
    assert json.loads(str(_stored(run.id, "config"))) == {"lr": 0.2}
    with th.init(project="wb", config={"lr": 0.1}) as run, pytest.raises(th.ConfigError, match="allow_val_change"):
        run.config.lr = 0.3
    standalone = Config()
    standalone.update({"a": 1})
    assert standalone.a == 1


def test_log_without_data_commits_the_step(th_env: th.Settings) -> None:
    with th.init(project="wb") as run:
        th.log({"loss": 1.0}, commit=False)
        th.log()
        th.log({"loss": 0.5})
    history = th.history(run.id, project="wb")
    assert history["_step"].tolist() == [0, 1] and history["loss"].tolist() == [1.0, 0.5]


def test_resume_from_and_fork_from_continue_after_the_step(th_env: th.Settings) -> None:
    with th.init(project="wb", config={"lr": 0.1}) as source:
        for step in range(5):
            th.log({"loss": 1.0 / (step + 1)})
    with th.init(project="wb", fork_from=f"{source.id}?_step=2") as fork:
        assert fork.id != source.id and fork.config.lr == 0.1 and fork.step == 3 and fork.forked_from
        th.log({"loss": 9.0})
    assert th.history(fork.id, project="wb")["_step"].tolist() == [3]
    with th.init(project="wb", resume_from=f"{source.id}?_step=1") as resumed:
        assert resumed.id == source.id and resumed.step == 2 and resumed.resumed
    with pytest.raises(th.ConfigError, match="fork_from"):
        th.init(project="wb", fork_from="nope")
    with pytest.raises(th.ConfigError, match="fork_from"):
        th.init(project="wb", fork_from="unknown-run?_step=1")


def test_alert_is_stored_with_the_run(th_env: th.Settings) -> None:
    with th.init(project="wb") as run:
        run.alert("loss spiked", "loss went above 10", level=AlertLevel.WARN)
        with pytest.raises(th.ConfigError, match="level"):
            run.alert("x", "y", level="LOUD")
    value = th.query("SELECT key, value FROM run_values WHERE run_id = {r:String}", {"r": run.id})
    assert value["key"].tolist() == ["alert/loss spiked"]
    assert json.loads(value["value"][0]) == {"_type": "alert", "title": "loss spiked", "text": "loss went above 10",
                                            "level": "WARN"}  # fmt: skip


def test_log_code_and_save_code_store_the_sources_as_a_code_artifact(th_env: th.Settings, tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "pkg").mkdir(parents=True)
    (source / "train.py").write_text("print('train')\n")
    (source / "pkg" / "model.py").write_text("MODEL = 1\n")
    (source / "notes.txt").write_text("not code\n")
    with th.init(project="wb") as run:
        artifact = run.log_code(str(source))
        assert artifact is not None and artifact.type == "code"
    stored = th.use_artifact(f"{artifact.name}:latest", project="wb")
    assert sorted(stored.files()) == ["pkg/model.py", "train.py"]
    script = tmp_path / "script.py"
    script.write_text(
        "import tracehouse as th\n\nwith th.init(project='wb', save_code=True) as run:\n    print(run.id)\n"
    )
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")},
           "TRACEHOUSE_DIR": str(th_env.data_dir)}  # fmt: skip
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    saved = th.use_artifact(f"source-wb-{result.stdout.strip()}:latest", project="wb")
    assert saved.type == "code" and saved.files() == ["script.py"]


def test_wandb_environment_variables_are_read_when_tracehouse_ones_are_unset(tmp_path: Path) -> None:
    root = str(tmp_path / "wandb-dir")
    code = (
        "import tracehouse as th\n"
        "run = th.init()\n"
        "print(run.project, run.name, run.id, run.group, run.job_type, run.notes, ','.join(run.tags), run.mode,"
        f" run.entity, run.dir.startswith({root!r}))\n"
        "run.finish()\n"
    )
    env = {"TRACEHOUSE_DIR": str(tmp_path / "data"), "WANDB_PROJECT": "from-env", "WANDB_NAME": "named",
           "WANDB_RUN_ID": "envrun1", "WANDB_RUN_GROUP": "grp", "WANDB_JOB_TYPE": "train", "WANDB_NOTES": "n",
           "WANDB_TAGS": "a,b", "WANDB_MODE": "offline", "WANDB_ENTITY": "ent", "WANDB_SILENT": "true",
           "WANDB_DIR": str(tmp_path / "wandb-dir")}  # fmt: skip
    result = run_python(code, env=env, clean=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from-env", "named", "envrun1", "grp", "train", "n", "a,b", "offline", "ent",
                                     "True"]  # fmt: skip
    ours = run_python(code, env={**env, "TRACEHOUSE_PROJECT": "ours", "TRACEHOUSE_MODE": "disabled"}, clean=True)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.split()[0] == "ours" and ours.stdout.split()[7] == "disabled"


def test_module_helpers(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert login() is True and login(key="wandb-key-never-sent") is True
    assert th.get_settings().api_key is None
    setup({"project": "set-up"})
    assert th.get_settings().project == "set-up"
    termlog("hello")
    termwarn("careful")
    termerror("broken")
    err = capsys.readouterr().err.splitlines()
    assert err == ["tracehouse: hello", "tracehouse: WARNING careful", "tracehouse: ERROR broken"]
    run = th.init()
    teardown()
    assert run.state == "finished"
    assert issubclass(errors.CommError, th.TracehouseError) and errors.UsageError is th.ConfigError
    with th.init() as run:
        run.mark_preempting()
        assert run.preempting


def test_define_metric_is_stored_with_step_metric_step_sync_and_hidden(th_env: th.Settings) -> None:
    with th.init(project="wb") as run:
        run.define_metric("epoch", hidden=True)
        run.define_metric("val/*", step_metric="epoch", step_sync=False, summary="max", goal="maximize")
        th.log({"epoch": 1, "val/acc": 0.5})
        with pytest.raises(th.ConfigError, match="step_metric"):
            run.define_metric("x", step_metric="")
    frame = th.query("SELECT key, value FROM run_values WHERE run_id = {r:String} AND key LIKE '_define_metric/%' "
                     "ORDER BY key", {"r": run.id})  # fmt: skip
    stored = {k: json.loads(v) for k, v in zip(frame["key"], frame["value"], strict=True)}
    assert stored["_define_metric/epoch"]["hidden"] is True
    val = stored["_define_metric/val/*"]
    assert val["step_metric"] == "epoch" and val["step_sync"] is False and val["summary"] == ["max"]
    summary = th.runs(project="wb").filter(like="summary.val/acc").iloc[0].tolist()
    assert summary == [0.5]  # the summary rule still applies


def test_wandb_sweep_and_agent_signatures_with_entity_paths(th_env: th.Settings) -> None:
    def train() -> None:
        with th.init() as run:
            th.log({"loss": run.config.lr})

    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"lr": {"values": [0.1, 0.01]}}}  # fmt: skip
    sweep_id = th.sweep(sweep=config, entity="team", project="wb-sweeps")
    assert th.agent(f"team/wb-sweeps/{sweep_id}", function=train, count=2) == 2
    status = th.sweep_status(f"wb-sweeps/{sweep_id}")
    assert status["best"]["params"] == {"lr": 0.01}
    with pytest.raises(th.ConfigError, match="sweep"):
        th.sweep(config, config=config)
    with pytest.raises(th.ConfigError, match="prior_runs"):
        th.sweep(config, project="wb-sweeps", prior_runs=["abc"])
