"""W&B's public API (`th.Api`): runs, one run's values, history, files and artifacts, sweeps and
artifacts read back from real runs, embedded and through a collector."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import SESSION_STORE_URL

import tracehouse as th
from tracehouse.reads.api import Api


def _runs(tmp_path: Path) -> tuple[str, str]:
    """Two runs: alpha (config, 5 loss steps and an acc step, summary, a saved file, a logged
    artifact) and beta (another config, 3 steps, uses alpha's artifact)."""
    (tmp_path / "notes.txt").write_text("saved with the run")
    (tmp_path / "weights.bin").write_bytes(b"\x01" * 64)
    with th.init(name="alpha", config={"lr": 0.1, "opt": {"name": "adam"}}, tags=["base"], group="g",
                 job_type="train", notes="first") as alpha:  # fmt: skip
        for step in range(5):
            alpha.log({"loss": 1 / (step + 1)})
        alpha.log({"acc": 0.75})
        alpha.summary["best_loss"] = 0.2
        alpha.save(str(tmp_path / "notes.txt"), policy="now")
        model = th.Artifact("model", "model", metadata={"layers": 2})
        model.add_file(str(tmp_path / "weights.bin"))
        alpha.log_artifact(model, aliases=["best"])
    time.sleep(0.01)  # distinct creation times
    with th.init(name="beta", config={"lr": 0.01}) as beta:
        for step in range(3):
            beta.log({"loss": 2 / (step + 1)})
        beta.use_artifact("model:best")
    return alpha.id, beta.id


def test_runs_read_back_as_wandb_gives_them(th_env: th.Settings, tmp_path: Path) -> None:
    alpha_id, beta_id = _runs(tmp_path)
    api = Api()
    runs = api.runs("someone/test")
    assert len(runs) == runs.length == 2 and [r.name for r in runs] == ["alpha", "beta"]  # oldest first
    assert runs[0].id == alpha_id and [r.id for r in runs[0:2]] == [alpha_id, beta_id]
    assert [r.name for r in api.runs("test", order="-created_at")] == ["beta", "alpha"]
    assert [r.name for r in api.runs(order="+config.lr")] == ["beta", "alpha"]
    assert [r.name for r in api.runs(order="config.lr.value")] == ["beta", "alpha"]
    assert [r.name for r in api.runs(order="-summary_metrics.loss")] == ["beta", "alpha"]
    assert [r.name for r in api.runs(order="-summary_metrics.acc")] == ["alpha", "beta"]  # beta lacks it: last
    assert [r.name for r in api.runs(order="-name")] == ["beta", "alpha"]
    assert [r.id for r in api.runs("test", filters={"config.lr": 0.1})] == [alpha_id]
    assert [r.id for r in api.runs(filters={"$or": [{"tags": {"$in": ["base"]}}, {"display_name": "beta"}]})] == [
        alpha_id, beta_id,
    ]  # fmt: skip
    assert len(api.runs(filters={"state": "running"})) == 0

    run = api.run(f"someone/test/{alpha_id}")
    assert (run.id, run.name, run.state, run.project, run.entity) == (alpha_id, "alpha", "finished", "test", "someone")
    assert run.config == {"lr": 0.1, "opt": {"name": "adam"}}
    assert run.summary["loss"] == pytest.approx(0.2) and run.summary["acc"] == 0.75 and run.summary["best_loss"] == 0.2
    assert (run.tags, run.group, run.job_type, run.notes) == (["base"], "g", "train", "first")
    assert run.sweep is None and run.url is None and run.path == ["someone", "test", alpha_id]
    assert pd.Timestamp(run.created_at) <= pd.Timestamp.now(tz="UTC") and run.created_at.endswith("Z")
    for path in (f"test/{alpha_id}", alpha_id, f"e/test/runs/{alpha_id}"):
        assert api.run(path).id == alpha_id
    assert api.run(alpha_id).entity == "tracehouse"
    assert Api(overrides={"entity": "team", "project": "test"}).run(beta_id).path == ["team", "test", beta_id]


def test_history_and_scan_history(th_env: th.Settings, tmp_path: Path) -> None:
    alpha_id, _ = _runs(tmp_path)
    run = Api().run(f"test/{alpha_id}")
    history = run.history()
    assert isinstance(history, pd.DataFrame) and list(history["_step"]) == [0, 1, 2, 3, 4, 5]
    assert {"_step", "_runtime", "_timestamp", "loss", "acc"} <= set(history.columns)
    assert history["loss"].iloc[:5].tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert history["acc"].isna().sum() == 5 and history["acc"].iloc[5] == 0.75
    assert (history["_runtime"] >= 0).all() and history["_timestamp"].iloc[0] > 1.6e9
    loss = run.history(keys=["loss"])
    assert list(loss.columns) == ["_step", "loss"] and len(loss) == 5  # only steps holding every key
    sampled = run.history(samples=2, keys=["loss"])
    assert list(sampled["_step"]) == [0, 4]  # first and last kept
    rows = run.history(keys=["loss"], pandas=False)
    assert isinstance(rows, list) and rows[1] == {"_step": 1, "loss": 0.5}
    assert run.history(keys=["never-logged"]).empty
    assert run.history(stream="system").empty
    scanned = list(run.scan_history())
    assert [r["_step"] for r in scanned] == [0, 1, 2, 3, 4, 5] and "acc" not in scanned[0] and scanned[5]["acc"] == 0.75
    assert list(run.scan_history(keys=["loss"], min_step=1, max_step=3)) == [
        {"loss": 0.5},
        {"loss": pytest.approx(1 / 3)},
    ]
    assert list(run.scan_history(keys=["_step", "acc"])) == [{"_step": 5, "acc": 0.75}]
    with pytest.raises(th.ConfigError, match="keys"):
        run.history(keys="loss")  # type: ignore[arg-type]
    with pytest.raises(th.ConfigError, match="min_step"):
        list(run.scan_history(min_step=-1))


def test_history_holds_every_logged_value_and_scan_history_reads_in_pages(th_env: th.Settings) -> None:
    with th.init(project="api-values") as logged:
        for step in range(7):
            values: dict[str, object] = {"loss": 1.0 / (step + 1)}
            if step % 3 == 0:
                values["note"] = f"at {step}"
                values["samples"] = th.Table(columns=["a"], data=[[step]])
            logged.log(values)
    run = Api().run(f"api-values/{logged.id}")
    frame = run.history()
    assert list(frame["_step"]) == list(range(7)) and frame["note"].iloc[3] == "at 3"
    assert frame["samples"].iloc[6]["_type"] == "table" and frame["samples"].iloc[6]["rows"] == 1
    assert pd.isna(frame["note"].iloc[1])
    paged = list(run.scan_history(page_size=2))
    assert [r["_step"] for r in paged] == list(range(7)) and paged[6]["note"] == "at 6" and "note" not in paged[5]
    assert [r["note"] for r in run.scan_history(keys=["note"], page_size=3)] == ["at 0", "at 3", "at 6"]
    assert list(run.scan_history(keys=["note"], min_step=1, max_step=6)) == [{"note": "at 3"}]


def test_files_and_artifacts_of_a_run(th_env: th.Settings, tmp_path: Path) -> None:
    alpha_id, beta_id = _runs(tmp_path)
    api = Api()
    alpha, beta = api.run(alpha_id), api.run(beta_id)
    files = alpha.files()
    assert [f.name for f in files] == ["notes.txt"] and files[0].size == len("saved with the run")
    assert files[0].url is None and files[0].updated_at is not None and alpha.files(names=["other"]) == []
    root = tmp_path / "restored"
    with alpha.file("notes.txt").download(root=str(root)) as handle:
        assert handle.read() == "saved with the run"
    with pytest.raises(ValueError, match="replace=True"):
        alpha.file("notes.txt").download(root=str(root))
    (root / "notes.txt").write_text("changed here")
    with alpha.file("notes.txt").download(root=str(root), exist_ok=True) as handle:
        assert handle.read() == "changed here"
    with alpha.file("notes.txt").download(root=str(root), replace=True) as handle:
        assert handle.read() == "saved with the run"
    with pytest.raises(th.NotFoundError, match=r"saved no file 'missing\.txt'.*notes\.txt"):
        alpha.file("missing.txt")

    [logged] = alpha.logged_artifacts()
    assert (logged.name, logged.version, logged.type, logged.metadata) == ("model", "v0", "model", {"layers": 2})
    assert alpha.used_artifacts() == [] and beta.logged_artifacts() == []
    assert [a.qualified_name for a in beta.used_artifacts()] == ["test/model:v0"]
    for spec in ("someone/test/model:best", "test/model:v0", "model:latest", "model"):
        artifact = api.artifact(spec, type="model")
        assert artifact.version == "v0" and set(artifact.aliases) == {"best", "latest"}
    target = api.artifact("model:best").download(str(tmp_path / "art"))
    api.artifact("model:best").verify(target)
    assert (Path(target) / "weights.bin").read_bytes() == b"\x01" * 64
    assert logged.used_by() == [beta_id]  # api.artifact records no use
    assert [a.version for a in api.artifacts("model", "test/model")] == ["v0"]


def test_unknown_names_and_malformed_paths(th_env: th.Settings, tmp_path: Path) -> None:
    alpha_id, _ = _runs(tmp_path)
    api = Api()
    with pytest.raises(th.NotFoundError, match="no project 'nope'"):
        len(api.runs("nope"))
    with pytest.raises(th.NotFoundError, match="'zzzzzzzz' in project 'test'"):
        api.run("test/zzzzzzzz")
    with pytest.raises(th.NotFoundError, match="zzzzzzzz"):
        api.run("zzzzzzzz")
    with pytest.raises(th.NotFoundError, match="no sweep 'zzzzzzzz'"):
        api.sweep("e/test/zzzzzzzz")
    with pytest.raises(th.NotFoundError, match="no artifact is named 'ghost'"):
        api.artifact("ghost:latest")
    with pytest.raises(th.NotFoundError, match=r"it has versions v0\.\.v0"):
        api.artifact("model:v7")
    with pytest.raises(th.NotFoundError, match="no artifact 'model' of type 'dataset'"):
        api.artifacts("dataset", "model")
    for call in (lambda: api.run("a/b/c/d"), lambda: api.run(""), lambda: api.run(f"test//{alpha_id}"),
                 lambda: api.runs("a/b/c"), lambda: api.sweep("a/b/c/d"), lambda: api.artifact("a/b/c/d:v0"),
                 lambda: api.run(42)):  # type: ignore[arg-type]  # fmt: skip
        with pytest.raises(th.ConfigError, match=r"^(path|name):"):
            call()
    with pytest.raises(th.ConfigError, match="cannot order by 'colour'"):
        api.runs(order="-colour")
    with pytest.raises(th.ConfigError, match="filters"):
        api.runs(filters={"config.lr": {"$near": 1}})
    with pytest.raises(th.ConfigError, match="overrides: unknown colour"):
        Api(overrides={"colour": "red"})
    with pytest.raises(th.ConfigError, match="api_key"):
        Api(api_key="wandb-key")
    with pytest.raises(th.ConfigError, match="base_url"):
        Api(overrides={"base_url": "https://api.wandb.ai"})


def _trial() -> None:
    with th.init(config={"lr": 1.0}) as run:
        for epoch in range(3):
            run.log({"loss": run.config.lr / (epoch + 1)})
        run.log({"loss": 5.0})  # the last value (the summary) is worse than the best logged one


def test_a_sweep_its_runs_and_best_run(th_env: th.Settings) -> None:
    config = {"method": "grid", "name": "lr-grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"lr": {"values": [0.1, 0.5]}}}  # fmt: skip
    sweep_id = th.sweep(config)
    assert th.agent(sweep_id, function=_trial) == 2
    api = Api()
    sweep = api.sweep(f"someone/test/{sweep_id}")
    assert (sweep.id, sweep.name, sweep.state, sweep.method) == (sweep_id, "lr-grid", "FINISHED", "grid")
    assert sweep.config["parameters"] == config["parameters"] and sweep.path == ["someone", "test", sweep_id]
    assert sweep.order == "+summary_metrics.loss" and sweep.url is None
    assert len(sweep.runs) == 2 and sorted(r.config["lr"] for r in sweep.runs) == [0.1, 0.5]
    assert {r.sweep.id for r in sweep.runs if r.sweep is not None} == {sweep_id}
    best = sweep.best_run()
    assert best is not None and best.config["lr"] == 0.1  # best logged loss 0.1 / 3
    worst = sweep.best_run(order="-config.lr")
    assert worst is not None and worst.config["lr"] == 0.5
    assert api.sweep(f"e/test/sweeps/{sweep_id}").id == sweep_id
    run = api.run(best.id)
    assert run.sweep is not None and run.sweep.id == sweep_id
    assert api.runs(include_sweeps=False)[0].sweep is None


def test_the_api_through_a_collector_endpoint(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from servers import InProcessCollector

    from tracehouse.collector.server import ServeOptions

    options = ServeOptions(store_url=SESSION_STORE_URL, database=f"api_{os.getpid()}_{time.monotonic_ns()}",
                           default_project="ml", spool_dir=tmp_path / "wal",
                           blob_location=str(tmp_path / "collector-blobs"))  # fmt: skip
    with InProcessCollector(options) as collector:
        th.configure(endpoint=collector.url, data_dir=str(tmp_path / "data"), project="ml", silent=True)
        try:
            alpha_id, beta_id = _runs(tmp_path)
            api = Api(overrides={"base_url": collector.url + "/"})
            assert [r.id for r in api.runs("ml")] == [alpha_id, beta_id]
            run = api.run(f"ml/{alpha_id}")
            assert run.url == f"{collector.url}/runs/{alpha_id}?project=ml"
            assert list(run.history(keys=["loss"])["loss"]) == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
            notes = run.file("notes.txt")
            assert notes.url is not None and notes.url.startswith(f"{collector.url}/api/v1/blobs/")
            with notes.download(root=str(tmp_path / "remote")) as handle:
                assert handle.read() == "saved with the run"
            assert [a.version for a in api.run(beta_id).used_artifacts()] == ["v0"]
            assert api.artifact("ml/model:best").download(str(tmp_path / "remote-art"))
            with pytest.raises(th.NotFoundError, match="no run 'zzzzzzzz' in project 'ml'"):
                api.run("ml/zzzzzzzz")
        finally:
            th.configure()
