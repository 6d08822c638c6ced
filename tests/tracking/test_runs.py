"""Experiment runs (`th.init`, `log`, `config`, `summary`, `finish`) stored beside the traces."""

from __future__ import annotations

import argparse
import math

import pytest

import tracehouse as th


def test_log_config_summary_finish_land_in_runs_and_metrics(th_env: th.Settings) -> None:
    with th.init(project="exp", name="baseline", config={"lr": 0.01, "model": {"layers": 2}}, tags=["a"]) as run:
        assert th.run is run and th.config.lr == 0.01 and th.config["model"] == {"layers": 2}
        for step in range(5):
            th.log({"loss": 1.0 / (step + 1), "acc": step / 10, "epoch": {"n": step}})
        run.summary["best_acc"] = 0.4
    assert th.run is None and run.state == "finished" and run.step == 5
    table = th.runs(project="exp")
    row = table.iloc[0]
    assert (row["run_id"], row["name"], row["state"], list(row["tags"])) == (run.id, "baseline", "finished", ["a"])
    assert row["config.lr"] == 0.01 and row["config.model.layers"] == 2
    assert row["summary.loss"] == pytest.approx(0.2) and row["summary.best_acc"] == 0.4
    history = th.history(run.id, project="exp")
    assert list(history["_step"]) == [0, 1, 2, 3, 4]
    assert list(history["loss"]) == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert list(history["epoch.n"]) == [0, 1, 2, 3, 4]
    assert list(th.history(run.id, keys=["acc"], project="exp").columns) == ["_step", "_timestamp", "acc"]


def test_step_and_commit_rules_follow_wandb(th_env: th.Settings, caplog: pytest.LogCaptureFixture) -> None:
    run = th.init(project="steps")
    run.log({"a": 1}, commit=False)
    run.log({"b": 2})  # commits step 0 with a and b
    run.log({"c": 3}, step=5)  # moves to step 5, not committed yet
    run.log({"d": 4}, step=5)
    run.log({"e": 5}, step=7)  # commits step 5
    run.log({"late": 1}, step=2)  # lower than the current step: dropped with a warning
    run.finish()
    assert "step 2 is below" in caplog.text
    history = th.history(run.id, project="steps").set_index("_step")
    assert history.loc[0, "a"] == 1 and history.loc[0, "b"] == 2
    assert history.loc[5, "c"] == 3 and history.loc[5, "d"] == 4 and history.loc[7, "e"] == 5
    assert "late" not in history.columns


def test_config_rules_and_argparse(th_env: th.Settings) -> None:
    args = argparse.Namespace(lr=0.1, batch=32)
    run = th.init(project="cfg", config=args)
    assert run.config.batch == 32
    with pytest.raises(th.ConfigError, match="allow_val_change"):
        run.config.lr = 0.2
    run.config.update({"lr": 0.2}, allow_val_change=True)
    run.config.dropout = 0.5
    assert run.config.as_dict() == {"lr": 0.2, "batch": 32, "dropout": 0.5}
    run.finish()
    row = th.runs(project="cfg").iloc[0]
    assert (row["config.lr"], row["config.dropout"]) == (0.2, 0.5)


def test_bad_input_is_a_clear_error_and_loses_nothing(th_env: th.Settings, caplog: pytest.LogCaptureFixture) -> None:
    run = th.init(project="bad")
    run.log({"loss": 1.0})
    with pytest.raises(th.ConfigError, match="dict"):
        run.log([1, 2])  # type: ignore[arg-type]
    with pytest.raises(th.ConfigError, match="keys must be strings"):
        run.log({1: 2.0})  # type: ignore[dict-item]
    with pytest.raises(th.ConfigError, match="step"):
        run.log({"loss": 2.0}, step=-1)
    with pytest.raises(th.ConfigError, match="project"):
        th.init(project="no spaces/allowed")
    assert th.run is run  # a refused init leaves the active run alone
    run.log({"loss": math.nan, "peak": math.inf, "note": "text only", "thing": object()})
    run.finish()
    assert "'thing' not logged (object is not a type run.log stores)" in caplog.text
    history = th.history(run.id, project="bad")
    assert history["loss"].iloc[0] == 1.0 and math.isnan(history["loss"].iloc[1])
    assert history["peak"].iloc[1] == math.inf
    row = th.runs(project="bad").iloc[0]
    assert row["summary.note"] == "text only" and "summary.thing" not in row
    with pytest.raises(th.ConfigError, match="finish"):
        run.log({"loss": 3.0})  # after finish: refused, the stored run is untouched
    assert len(th.history(run.id, project="bad")) == 2


def test_an_exception_in_the_with_block_fails_the_run_and_finish_twice_is_harmless(th_env: th.Settings) -> None:
    with pytest.raises(RuntimeError), th.init(project="fail") as run:
        run.log({"x": 1})
        raise RuntimeError("training diverged")
    run.finish()
    assert run.state == "failed" and th.runs(project="fail").iloc[0]["state"] == "failed"


def test_spans_inside_a_run_carry_its_id(th_env: th.Settings) -> None:
    @th.trace(kind="chain")
    def evaluate(x: int) -> int:
        return x + 1

    @th.trace(kind="chain")
    def experiment() -> str:
        run = th.init(project=th_env.project)  # a run started inside a traced function
        evaluate(1)
        run.finish()
        return run.id

    run_id = experiment()
    rows = th.query("SELECT name, run_id FROM spans ORDER BY name")
    assert rows.values.tolist() == [["evaluate", run_id], ["experiment", run_id]]


def test_disabled_mode_has_the_same_api_and_stores_nothing(th_env: th.Settings) -> None:
    run = th.init(project="off", mode="disabled", config={"a": 1})
    run.log({"loss": 1.0, "table": th.Table(columns=["a"], data=[[1]]), "note": "x"})
    assert run.save(__file__, policy="now") == []
    art = th.Artifact("nothing", "dataset")
    art.add_file(__file__)
    assert run.log_artifact(art) is art and run.log_artifact(__file__).name == "test_runs.py"
    run.finish()
    with pytest.raises(th.NotFoundError, match="no project 'off'"):  # nothing was stored, so none is known
        th.runs(project="off")
    assert not (th_env.data_dir / "blobs").exists()


def test_define_metric_summary_rules(th_env: th.Settings) -> None:
    run = th.init(project="rules")
    run.define_metric("loss", summary="min,max,mean")
    th.define_metric("val/*", summary="best", goal="maximize")
    run.define_metric("noise", summary="none")
    for loss, acc in ((0.5, 0.6), (0.2, 0.9), (0.3, 0.7)):
        run.log({"loss": loss, "val/acc": acc, "noise": 1.0, "lr": 0.1})
    assert run.summary["loss"] == {"min": 0.2, "max": 0.5, "mean": pytest.approx(1.0 / 3)}
    assert run.summary["val/acc"] == {"best": 0.9} and "noise" not in run.summary and run.summary["lr"] == 0.1
    with pytest.raises(th.ConfigError, match="goal"):
        run.define_metric("x", summary="best")
    with pytest.raises(th.ConfigError, match="unknown summary"):
        run.define_metric("x", summary="median")
    run.finish()
    row = th.runs(project="rules").iloc[0]
    assert row["summary.loss.min"] == 0.2 and row["summary.val/acc.best"] == 0.9


def test_a_run_killed_with_sigkill_mid_run_is_crashed_keeps_what_it_flushed_and_resumes(th_env: th.Settings) -> None:
    from conftest import run_python

    code = f"""
import os, signal
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project="killed")
run = th.init(project="killed", name="doomed")
for step in range(100_000):
    th.log({{"loss": 1.0 / (step + 1), "step_copy": float(step)}})
    if step == 60_000:
        th.flush()
        print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # 40k steps later, some of them still queued in memory
"""
    result = run_python(code)
    assert result.returncode == -9, result.stderr
    run_id = result.stdout.strip()
    th.sync()
    # its heartbeat is recent, but its process is known dead on this host: crashed at once, as W&B can't say
    assert th.runs(project="killed").iloc[0]["state"] == "crashed"
    assert list(th.runs(project="killed", filters={"state": "crashed"})["run_id"]) == [run_id]
    row = th.runs(project="killed", crashed_after=0).iloc[0]
    assert (row["run_id"], row["name"], row["state"]) == (run_id, "doomed", "crashed")
    history = th.history(run_id, project="killed")
    kept = len(history)
    assert kept >= 60_001  # everything flushed is there, in order, with no gap
    assert list(history["_step"]) == list(range(kept)) and list(history["step_copy"]) == list(map(float, range(kept)))
    resumed = th.init(project="killed", id=run_id, resume="must")
    assert (resumed.step, resumed.name) == (kept, "doomed")
    resumed.log({"loss": 0.0})
    resumed.finish()
    assert th.runs(project="killed", crashed_after=0).iloc[0]["state"] == "finished"
    assert th.history(run_id, project="killed")["_step"].iloc[-1] == kept


def test_a_running_run_of_a_live_process_or_another_host_keeps_running_until_its_heartbeat_stops(
    th_env: th.Settings,
) -> None:
    import os
    import time

    run = th.init(project="alive", name="here")
    th.sync()
    row = th.query("SELECT host, pid FROM runs FINAL WHERE project = 'alive'").iloc[0]
    assert (row["pid"], bool(row["host"])) == (os.getpid(), True)
    assert th.runs(project="alive").iloc[0]["state"] == "running"
    # a run recorded on another machine with a pid that is dead here: only the heartbeat can tell
    from tracehouse.spans.runtime import runtime

    now = time.time_ns()
    runtime.sink().submit({"type": "run", "project": "alive", "run_id": "elsewhere", "name": "far", "state": "running",
                           "created_ns": now, "updated_ns": now, "heartbeat_ns": now, "version": now,
                           "host": "another-machine", "pid": 2**31 - 2})  # fmt: skip
    th.sync()
    listed = th.runs(project="alive")
    assert dict(zip(listed["run_id"], listed["state"], strict=True)) == {run.id: "running", "elsewhere": "running"}
    timed_out = th.runs(project="alive", crashed_after=0)
    assert dict(zip(timed_out["run_id"], timed_out["state"], strict=True))["elsewhere"] == "crashed"
    run.finish()


def test_cli_lists_runs_and_shows_one(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tracehouse.cli.main import main

    with th.init(project=th_env.project, name="cli-run", config={"lr": 0.5}) as run:
        th.log({"loss": 0.25})
    assert main(["runs", "--json"]) == 0  # on the configured store (this process already holds it open)
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["name"], r["state"], r["config.lr"]) for r in listed] == [
        (run.id, "cli-run", "finished", 0.5)
    ]
    assert main(["run", run.id]) == 0
    out = capsys.readouterr().out
    assert "config:\n  lr: 0.5" in out and "summary:\n  loss: 0.25" in out and "steps: 1" in out
    assert main(["run", "nope"]) == 1 and "no run 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("ending, state", [("pass", "finished"), ("raise SystemExit(0)", "finished"),
                                           ("raise RuntimeError('boom')", "failed")])  # fmt: skip
def test_a_run_left_open_is_finished_at_exit(th_env: th.Settings, ending: str, state: str) -> None:
    from conftest import run_python

    project = f"exit-{state}-{len(ending)}"
    code = f"""
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project={project!r})
th.init(project={project!r})
th.log({{"x": 1.0}})
{ending}
"""
    run_python(code)
    th.sync()
    assert th.runs(project=project, crashed_after=0).iloc[0]["state"] == state


def test_resume_modes_continue_a_run_at_its_next_step(th_env: th.Settings) -> None:
    with th.init(project="res", id="run-1", name="first", config={"lr": 0.1}) as run:
        for step in range(3):
            run.log({"loss": 1.0 / (step + 1)})
    with pytest.raises(th.ConfigError, match="already exists"):
        th.init(project="res", id="run-1", resume="never")
    with pytest.raises(th.ConfigError, match="does not exist"):
        th.init(project="res", id="other", resume="must")
    with th.init(project="res", id="run-1", resume="must", config={"batch": 8}) as again:
        assert (again.name, again.step, again.summary["loss"]) == ("first", 3, pytest.approx(1 / 3))
        assert again.config.as_dict() == {"lr": 0.1, "batch": 8}
        again.log({"loss": 0.1})
    assert list(th.history("run-1", project="res")["_step"]) == [0, 1, 2, 3]
    fresh = th.init(project="res", id="run-2", resume="allow")  # allow: new when it does not exist
    assert fresh.step == 0
    fresh.finish()


def test_auto_resume_continues_a_crashed_run(th_env: th.Settings) -> None:
    from conftest import run_python

    code = f"""
import os, signal
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project="auto")
run = th.init(project="auto", resume="auto")
for step in range(5):
    th.log({{"loss": float(step)}})
th.flush()
print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    run_id = run_python(code).stdout.strip()
    resumed = th.init(project="auto", resume="auto")  # same data dir: the crashed run is continued
    assert resumed.id == run_id and resumed.step == 5
    resumed.log({"loss": 5.0})
    resumed.finish()
    assert list(th.history(run_id, project="auto")["loss"]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert th.init(project="auto", resume="auto").id != run_id  # it finished: auto starts a new run
    th.finish()
