"""What runs log beside numbers (text, tables, histograms, images), their files, offline runs, filters."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracehouse as th


def test_non_numeric_values_land_in_their_own_tables(th_env: th.Settings) -> None:
    table = th.Table(columns=["question", "answer", "score"], data=[["2+2?", "4", 1.0]])
    table.add_data("capital of France?", "Paris", np.float32(0.5))
    with th.init(project=th_env.project) as run:
        run.log({"loss": 0.5, "sample": "the model said hi", "eval": table, "weights": np.arange(100.0),
                 "grads": th.Histogram(np_histogram=([1, 2], [0.0, 0.5, 1.0])), "logits": [0.1, 0.2, 0.3],
                 "frame": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
                 "picture": th.Image(np.zeros((2, 3, 3), dtype=np.uint8), caption="black")})  # fmt: skip
        run.log({"sample": "second step"})
    values = th.query(
        "SELECT step, key, type, value FROM run_values WHERE run_id = {r:String} ORDER BY step, key", {"r": run.id}
    )
    kinds = {(row.step, row.key): row.type for row in values.itertuples()}
    assert kinds == {
        (0, "eval"): "table", (0, "frame"): "table", (0, "grads"): "histogram", (0, "logits"): "histogram",
        (0, "picture"): "image", (0, "sample"): "text", (0, "weights"): "histogram", (1, "sample"): "text",
    }  # fmt: skip
    weights = json.loads(values[values.key == "weights"].value.iloc[0])
    assert sum(weights["values"]) == 100 and len(weights["bins"]) == 65
    # a logged table is rows, queryable with SQL
    rows = th.query(
        "SELECT JSONExtractString(row, 'answer') AS answer, JSONExtractFloat(row, 'score') AS score FROM run_tables "
        "WHERE run_id = {r:String} AND key = 'eval' ORDER BY row_index",
        {"r": run.id},
    )
    assert rows.values.tolist() == [["4", 1.0], ["Paris", 0.5]]
    # the image is a blob; the summary keeps each key's last value
    image = json.loads(values[values.key == "picture"].value.iloc[0])
    assert (image["width"], image["height"], image["caption"]) == (3, 2, "black")
    from tracehouse.tracking.blobs import blob_store

    assert blob_store().read_bytes(image["digest"]).startswith(b"\x89PNG")
    assert run.summary["sample"] == "second step" and run.summary["eval"]["rows"] == 2
    assert list(th.history(run.id)["loss"]) == [0.5]  # only numbers are metrics


def test_table_api(th_env: th.Settings) -> None:
    table = th.Table(dataframe=pd.DataFrame({"x": [1, 2], "y": [3.0, 4.0]}))
    table.add_column("z", ["a", "b"])
    assert table.columns == ["x", "y", "z"] and table.get_column("z") == ["a", "b"]
    assert table.get_column("x", convert_to="numpy").tolist() == [1, 2]
    assert table.get_dataframe().to_dict("list") == {"x": [1, 2], "y": [3.0, 4.0], "z": ["a", "b"]}
    assert len(table) == 2 and table.get_index() == [0, 1]
    with pytest.raises(th.ConfigError, match="a row needs 3 values"):
        table.add_data(1, 2)
    with pytest.raises(th.ConfigError, match="2 rows, the column 1 values"):
        table.add_column("w", [1])
    with pytest.raises(th.ConfigError, match="no column 'q'"):
        table.get_column("q")
    with pytest.raises(th.ConfigError, match="distinct"):
        th.Table(columns=["a", "a"])
    with pytest.raises(th.ConfigError, match="num_bins"):
        th.Histogram([1, 2], num_bins=0)
    with pytest.raises(th.ConfigError, match="HxW"):
        th.Image(np.zeros((2, 2, 2)))


def test_a_value_that_cannot_be_stored_warns_and_the_step_is_kept(
    th_env: th.Settings, caplog: pytest.LogCaptureFixture
) -> None:
    class Opaque:
        pass

    with th.init(project=th_env.project) as run:
        run.log({"loss": 1.0, "blob": Opaque(), "note": "kept"})
        run.log({"loss": 2.0, "blob": Opaque()})
    assert caplog.text.count("'blob' not logged") == 1  # once per key
    assert list(th.history(run.id)["loss"]) == [1.0, 2.0]
    assert "blob" not in run.summary and run.summary["note"] == "kept"


def test_save_policies_and_restore(th_env: th.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracehouse.tracking import files as _run_files

    monkeypatch.setattr(_run_files, "LIVE_SECONDS", 0.05)
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    (work / "config.yaml").write_text("lr: 0.1")
    (work / "ckpt" / "model.pt").write_text("v1")
    run = th.init(project=th_env.project)
    assert run.save(str(work / "config.yaml"), policy="now") == ["config.yaml"]
    assert run.save(str(work / "ckpt" / "*.pt"), base_path=str(work), policy="live") == ["ckpt/model.pt"]
    run.save(str(work / "*.log"), policy="end")
    (work / "train.log").write_text("done")
    (work / "ckpt" / "model.pt").write_text("v2, changed while running")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the live policy stores the change while the run goes on
        found = th.query("SELECT size FROM run_files FINAL WHERE path = 'ckpt/model.pt'")
        if not found.empty and int(found["size"].iloc[0]) == len("v2, changed while running"):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the live file was not stored again after it changed")
    Path(run.dir, "notes.txt").write_text("written to run.dir")
    with pytest.raises(th.ConfigError, match="policy"):
        run.save(str(work / "x"), policy="sometimes")
    with pytest.raises(th.ConfigError, match="not under base_path"):
        run.save(str(work / "config.yaml"), base_path=str(tmp_path / "elsewhere"))
    run.finish()
    saved = th.query("SELECT path FROM run_files FINAL WHERE run_id = {r:String} ORDER BY path", {"r": run.id})
    assert saved["path"].tolist() == ["ckpt/model.pt", "config.yaml", "notes.txt", "train.log"]
    restored = th.restore("ckpt/model.pt", run_path=f"{th_env.project}/{run.id}", root=str(tmp_path / "back"))
    assert Path(restored).read_text() == "v2, changed while running"
    with pytest.raises(th.NotFoundError, match="saved no file 'nope'"):
        th.restore("nope", run_path=run.id)


def test_offline_runs_wait_for_sync(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import run_python

    code = f"""
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project={th_env.project!r})
with th.init(id="offline-run", mode="offline", config={{"lr": 0.1}}) as run:
    for step in range(50):
        run.log({{"loss": 1.0 / (step + 1)}})
    run.log({{"note": "offline text"}})
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    with pytest.raises(th.NotFoundError, match="no project 'test'"):  # reads do not pick offline runs up
        th.runs()
    with pytest.raises(th.NotFoundError, match="no run 'offline-run'"):
        th.history("offline-run")
    from tracehouse.cli.main import main

    assert main(["sync"]) == 0
    assert "ingested 53 records" in capsys.readouterr().out  # 50 steps, 1 text value, 2 run states
    row = th.runs().iloc[0]
    assert (row["run_id"], row["state"], row["config.lr"], row["summary.note"]) == (
        "offline-run", "finished", 0.1, "offline text"
    )  # fmt: skip
    assert len(th.history("offline-run")) == 50
    assert main(["sync"]) == 0 and "ingested 0 records" in capsys.readouterr().out


def test_runs_filters(th_env: th.Settings) -> None:
    for lr, loss, tags in ((0.1, 0.5, ["baseline"]), (0.01, 0.2, ["tuned"]), (0.001, 0.3, ["tuned", "slow"])):
        with th.init(project=th_env.project, config={"lr": lr}, tags=tags) as run:
            run.log({"loss": loss})
    failed = th.init(project=th_env.project, config={"lr": 1.0})
    failed.finish(exit_code=1)

    def lrs(filters: dict[str, object]) -> list[float]:
        found = th.runs(filters=filters)
        return sorted(found["config.lr"].tolist()) if "config.lr" in found else []

    assert lrs({"state": "finished"}) == [0.001, 0.01, 0.1]
    assert lrs({"config.lr": {"$lt": 0.05}}) == [0.001, 0.01]
    assert lrs({"summary_metrics.loss": {"$gte": 0.3}, "state": "finished"}) == [0.001, 0.1]
    assert lrs({"tags": "tuned"}) == [0.001, 0.01]
    assert lrs({"tags": {"$in": ["slow", "baseline"]}}) == [0.001, 0.1]
    assert lrs({"$or": [{"config.lr": 1.0}, {"summary.loss": 0.2}]}) == [0.01, 1.0]
    assert lrs({"summary.loss": {"$exists": False}}) == [1.0]
    assert lrs({"name": {"$regex": "^nomatch$"}}) == []
    with pytest.raises(th.ConfigError, match="unknown operator '\\$near'"):
        th.runs(filters={"config.lr": {"$near": 1}})
    with pytest.raises(th.ConfigError, match="takes a list"):
        th.runs(filters={"tags": {"$in": "tuned"}})
    with pytest.raises(th.ConfigError, match="expected a dict"):
        th.runs(filters=["state"])  # type: ignore[arg-type]
    assert lrs({"config.lr": {"$nin": [0.1, 1.0]}, "tags": {"$ne": "slow"}}) == [0.01]
    assert lrs({"$nor": [{"state": "failed"}, {"tags": "baseline"}]}) == [0.001, 0.01]
    assert lrs({"created_at": {"$gt": "2000-01-01T00:00:00"}}) == [0.001, 0.01, 0.1, 1.0]


def test_filters_run_in_the_store_on_nested_and_flat_keys(th_env: th.Settings) -> None:
    slow = "a" * 40 + "!"
    with th.init(project=th_env.project, name=slow, config={"optimizer": {"name": "adam", "lr": 0.1}}) as run:
        run.log({"eval": {"acc": 0.9}, "note": "kept"})  # summary key "eval.acc", flat
    with th.init(project=th_env.project, config={"optimizer": {"name": "sgd", "lr": 0.5}, "layers": [64, 32]}) as run:
        run.log({"eval": {"acc": 0.5}})

    def names(filters: dict[str, object]) -> list[str]:
        found = th.runs(filters=filters)
        return sorted(found["config.optimizer.name"].tolist()) if len(found) else []

    assert names({"config.optimizer.lr": {"$lt": 0.2}}) == ["adam"]
    assert names({"summary.eval.acc": {"$gte": 0.8}}) == ["adam"]
    assert names({"config.optimizer.name": {"$regex": "^s"}}) == ["sgd"]
    assert names({"config.layers": 32}) == ["sgd"]  # an element of a list matches, as in W&B
    assert names({"summary.note": {"$exists": True}}) == ["adam"]
    assert names({"name": {"$regex": "(a+)+$"}}) == []  # RE2: no catastrophic backtracking, answers at once
    with pytest.raises(th.ConfigError, match="RE2"):
        th.runs(filters={"name": {"$regex": "(?=lookahead)"}})
    with pytest.raises(th.ConfigError, match="unknown key 'colour'"):
        th.runs(filters={"colour": "red"})
    with pytest.raises(th.ConfigError, match="ISO time"):
        th.runs(filters={"created_at": {"$gt": "last tuesday"}})


def test_finish_returns_in_bounded_time_with_the_collector_down(th_env: th.Settings) -> None:
    from conftest import run_python

    code = f"""
import time
import tracehouse as th
th.configure(data_dir={str(th_env.data_dir)!r}, project="down", endpoint="http://127.0.0.1:9", flush_timeout=2)
run = th.init()
for step in range(1000):
    run.log({{"x": float(step)}})
started = time.monotonic()
run.finish()
run.finish()
print(run.id, round(time.monotonic() - started, 3))
"""
    result = run_python(code, env={"TRACEHOUSE_FLUSH_TIMEOUT": "2"}, timeout=90)  # a hang fails here
    assert result.returncode == 0, result.stderr
    run_id, _ = result.stdout.split()
    assert os.listdir(th_env.data_dir / "spool")  # the data waits in the spool for `tracehouse sync`
    th.sync()  # here there is no endpoint: the store takes what the collector never got
    assert len(th.history(run_id, project="down")) == 1000
