"""Runs, artifacts and files through a collector, with a project key: another machine reads them back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import run_python
from servers import Collector, free_port


def _child(code: str, endpoint: str, key: str, data_dir: Path) -> str:
    prelude = f"""
import tracehouse as th
th.configure(endpoint={endpoint!r}, api_key={key!r}, data_dir={str(data_dir)!r}, project="ml")
"""
    result = run_python(prelude + textwrap.dedent(code), clean=True)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_runs_artifacts_and_files_through_a_collector_with_a_project_key(tmp_path: Path) -> None:
    collector_dir = tmp_path / "collector-data"
    created = subprocess.run(
        [sys.executable, "-m", "tracehouse", "keys", "create", "--project", "ml", "--data-dir", str(collector_dir),
         "--json"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = json.loads(created.stdout)["key"]
    collector = Collector(collector_dir, free_port(), "--require-keys")
    collector.start()
    try:
        (tmp_path / "weights.bin").write_bytes(b"\x00" * 1000)
        run_id = _child(
            f"""
            import numpy as np
            with th.init(config={{"lr": 0.1}}) as run:
                for step in range(20):
                    run.log({{"loss": 1 / (step + 1)}})
                run.log({{"picture": th.Image(np.zeros((2, 2))), "note": "remote"}})
                model = th.Artifact("model", "model")
                model.add_file({str(tmp_path / "weights.bin")!r})
                run.log_artifact(model, aliases=["best"])
                run.save({str(tmp_path / "weights.bin")!r}, policy="now")
            print(run.id)
            """,
            collector.url, key, tmp_path / "trainer",
        ).strip()  # fmt: skip
        offline_id = _child(
            """
            with th.init(mode="offline") as run:
                run.log({"loss": 0.5})
                data = th.Artifact("offline-data", "dataset")
                with data.new_file("rows.txt") as handle:
                    handle.write("kept locally until sync")
                run.log_artifact(data)
            print(run.id)
            """,
            collector.url, key, tmp_path / "laptop",
        ).strip()  # fmt: skip
        before_sync = _child(
            """
            try:
                th.use_artifact("offline-data:latest")
            except th.NotFoundError as error:
                print(error)
            """,
            collector.url, key, tmp_path / "reader",
        )  # fmt: skip
        assert "no artifact is named 'offline-data'" in before_sync
        _child("print(th.sync().rows)", collector.url, key, tmp_path / "laptop")
        out = _child(
            f"""
            runs = th.runs()
            print(sorted(runs["run_id"]) == sorted([{run_id!r}, {offline_id!r}]), runs["state"].tolist())
            print(len(th.history({run_id!r})), th.runs(filters={{"config.lr": 0.1}})["run_id"].tolist())
            model = th.use_artifact("model:best")
            root = model.download({str(tmp_path / "fetched")!r})
            model.verify(root)
            print(model.version, model.logged_by(), open(root + "/weights.bin", "rb").read() == bytes(1000))
            offline = th.use_artifact("offline-data:latest")
            print(open(offline.download({str(tmp_path / "fetched2")!r}) + "/rows.txt").read())
            print(open(th.restore("weights.bin", run_path={run_id!r}, root={str(tmp_path / "r")!r}), "rb").read()
                  == bytes(1000))
            try:
                th.query("SELECT 1")
            except th.TracehouseError as error:
                print("query refused:", "admin" in str(error))
            """,
            collector.url, key, tmp_path / "reader",
        ).splitlines()  # fmt: skip
        assert out == [
            "True ['finished', 'finished']",
            f"20 ['{run_id}']",
            f"v0 {run_id} True",
            "kept locally until sync",
            "True",
            "query refused: True",
        ]
    finally:
        if collector.process is not None and collector.process.poll() is None:
            collector.stop(signal.SIGTERM)
