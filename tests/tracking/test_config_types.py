"""Config and summary values read back as they were logged, whatever the other runs of the project hold:
an int stays an int (not `2.0`), a bool a bool, a string a string, and a key a run lacks is None (never
NaN), in every read path: `th.runs` on the embedded store, through the store's owner, through a
collector, the CLI, and the UI's JSON."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import pytest
from conftest import SESSION_STORE_URL, reconfigure, run_python

import tracehouse as th

PROJECT = "types"
# (column, [value, type] of the first run, then of the second): the second run has no `layers`, a float
# `warmup` where the first has an int, and no summary of its own
EXPECTED = {
    "config.layers": [[2, "int"], [None, "NoneType"]],
    "config.warmup": [[100, "int"], [0.1, "float"]],
    "config.lr": [[0.01, "float"], [0.02, "float"]],
    "config.flag": [[True, "bool"], [False, "bool"]],
    "config.name": [["a", "str"], ["b", "str"]],
    "config.opt.momentum": [[0, "int"], [None, "NoneType"]],
    "summary.best": [[3, "int"], [None, "NoneType"]],
    "summary.ok": [[True, "bool"], [None, "NoneType"]],
}


def _log_two_runs() -> list[str]:
    """Two runs in PROJECT: the first with every key, the second without `layers` (ids, oldest first)."""
    config = {"layers": 2, "warmup": 100, "lr": 0.01, "flag": True, "name": "a", "opt": {"momentum": 0}}
    with th.init(project=PROJECT, config=config) as first:
        first.summary["best"] = 3
        first.summary["ok"] = True
    with th.init(project=PROJECT, config={"warmup": 0.1, "lr": 0.02, "flag": False, "name": "b"}) as second:
        pass
    return [first.id, second.id]


def _typed(values: Sequence[Any]) -> list[list[Any]]:
    return [[value, type(value).__name__] for value in values]


def _frame_types(frame: Any, run_ids: list[str]) -> dict[str, list[list[Any]]]:
    """Each expected column of `th.runs`' frame, for the runs in `run_ids` order, as [value, type]."""
    rows = frame.set_index("run_id").loc[run_ids]
    return {column: _typed(rows[column].tolist()) for column in EXPECTED}


def _record_types(records: list[dict[str, Any]], run_ids: list[str]) -> dict[str, list[list[Any]]]:
    """The same from JSON rows (one dict per run, `run_id` and dotted columns)."""
    by_id = {r["run_id"]: r for r in records}
    return {column: _typed([by_id[r].get(column) for r in run_ids]) for column in EXPECTED}


def test_th_runs_keeps_each_logged_type_when_another_run_lacks_the_key(th_env: th.Settings) -> None:
    run_ids = _log_two_runs()
    frame = th.runs(project=PROJECT)
    assert _frame_types(frame, run_ids) == EXPECTED
    assert frame.set_index("run_id").loc[run_ids, "config.layers"].tolist() == [2, None]
    assert str(frame["config.lr"].dtype) == "float64" and str(frame["config.flag"].dtype) == "bool"
    assert str(frame["config.layers"].dtype) == "object"
    filtered = th.runs(project=PROJECT, filters={"config.layers": 2})
    assert _typed(filtered["config.layers"].tolist()) == [[2, "int"]]
    resumed = th.init(project=PROJECT, id=run_ids[0], resume="must")
    assert _typed([resumed.config["layers"], resumed.config["flag"]]) == [[2, "int"], [True, "bool"]]
    resumed.finish()


def test_the_cli_shows_an_int_as_an_int_and_leaves_a_missing_key_out(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tracehouse.cli.main import main

    reconfigure(th_env, project=PROJECT)  # the CLI reads the configured project
    run_ids = _log_two_runs()
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    assert _record_types(json.loads(capsys.readouterr().out), run_ids) == EXPECTED
    assert main(["run", run_ids[0]]) == 0
    shown = capsys.readouterr().out
    assert "  layers: 2\n" in shown and "  warmup: 100\n" in shown and "  best: 3\n" in shown
    assert main(["run", run_ids[1]]) == 0
    shown = capsys.readouterr().out
    assert "layers" not in shown and "best" not in shown and "nan" not in shown.lower()


def test_reads_through_the_owner_keep_each_logged_type(th_env: th.Settings, tmp_path: Path) -> None:
    """Another process on the same store reads through this process (its owner)."""
    run_ids = _log_two_runs()
    th.runs(project=PROJECT)  # this process holds the store, and serves it
    code = f"""
import json
import tracehouse as th
from tracehouse.reads.owner import access
th.configure(project={PROJECT!r}, data_dir={str(tmp_path / "other")!r}, clickhouse_url={SESSION_STORE_URL!r},
             database={th_env.database!r})
frame = th.runs().set_index("run_id").loc[{run_ids!r}]
print(type(access()).__name__)
print(json.dumps({{c: [[v, type(v).__name__] for v in frame[c].tolist()] for c in {list(EXPECTED)!r}}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    through, answer = result.stdout.strip().splitlines()[-2:]
    assert through == "OwnerAccess"
    assert json.loads(answer) == EXPECTED


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())


def test_reads_through_a_collector_and_the_ui_json_keep_each_logged_type(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from servers import InProcessCollector

    from tracehouse.collector.server import ServeOptions

    options = ServeOptions(store_url=SESSION_STORE_URL, database=f"types_{os.getpid()}_{time.monotonic_ns()}",
                           default_project=PROJECT, spool_dir=tmp_path / "wal")  # fmt: skip
    with InProcessCollector(options) as collector:
        th.configure(endpoint=collector.url, data_dir=str(tmp_path / "data"), project=PROJECT)
        try:
            run_ids = _log_two_runs()
            assert _frame_types(th.runs(), run_ids) == EXPECTED
        finally:
            th.configure()
        table = _get_json(f"{collector.url}/api/v1/ui/runs?project={PROJECT}&cols=" + "&cols=".join(EXPECTED))
        assert _record_types(table["runs"], run_ids) == EXPECTED
        assert all(column in row for row in table["runs"] for column in EXPECTED)  # null, not left out
        one = _get_json(f"{collector.url}/api/v1/ui/runs/{run_ids[0]}?project={PROJECT}")
        assert _typed(one["config"].values()) == [[2, "int"], [100, "int"], [0.01, "float"], [True, "bool"],
                                                  ["a", "str"], [{"momentum": 0}, "dict"]]  # fmt: skip
        assert _typed(one["summary"].values()) == [[3, "int"], [True, "bool"]]
        compared = _get_json(f"{collector.url}/api/v1/ui/runs/compare?project={PROJECT}&ids={','.join(run_ids)}")
        assert _typed([compared["configs"][run_ids[0]]["layers"], compared["configs"][run_ids[1]]["warmup"]]) == [
            [2, "int"], [0.1, "float"]
        ]  # fmt: skip
