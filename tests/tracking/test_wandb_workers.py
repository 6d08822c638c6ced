"""W&B scripts that start a run in each worker process (a DDP-style group): fork and spawn both work."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_python

SCRIPT = """
import multiprocessing as mp

import tracehouse as th


def worker(rank):
    with th.init(project="ddp", group="g1", name=f"rank-{{rank}}", config={{"rank": rank}}) as run:
        for step in range(3):
            th.log({{"loss": 1.0 / (step + 1)}})
    return run.id


if __name__ == "__main__":
    with th.init(project="ddp", name="parent") as parent:
        th.log({{"x": 1}})
    with mp.get_context("{method}").Pool(2) as pool:
        ids = pool.map(worker, [0, 1])
    runs = th.runs(project="ddp")
    steps = th.query("SELECT run_id, count() AS n FROM metrics GROUP BY run_id")
    counted = dict(zip(steps["run_id"], steps["n"]))
    print(sorted(runs["name"]), sorted(runs["state"].unique()), [counted[i] for i in ids], sorted(runs["group"]))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_each_worker_process_logs_its_own_run(method: str, tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT.format(method=method))
    code = f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')"
    result = run_python(code, env={"TRACEHOUSE_DIR": str(tmp_path / "data"), "TRACEHOUSE_SILENT": "1"}, clean=True,
                        timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['parent', 'rank-0', 'rank-1'] ['finished'] [3, 3] ['', 'g1', 'g1']"
