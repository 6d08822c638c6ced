"""Several agents on one sweep through a collector: no grid point twice, run_cap across agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, run_python
from servers import Collector, free_port


def _agent_code(endpoint: str, data_dir: Path, sweep_id: str) -> str:
    return textwrap.dedent(
        f"""
        import time
        import tracehouse as th
        th.configure(endpoint={endpoint!r}, data_dir={str(data_dir)!r}, project="shared")

        def train():
            with th.init() as run:
                time.sleep(0.1)
                run.log({{"loss": run.config.x * run.config.y}})

        print(th.agent({sweep_id!r}, function=train))
        """
    )


def test_two_agents_share_a_grid_and_a_run_cap_through_the_collector(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "collector-data", free_port())
    collector.start()
    try:
        create = f"""
import json, tracehouse as th
th.configure(endpoint={collector.url!r}, data_dir={str(tmp_path / "admin")!r}, project="shared")
grid = th.sweep({{"method": "grid", "metric": {{"name": "loss"}},
                 "parameters": {{"x": {{"values": [1, 2, 3, 4]}}, "y": {{"values": [1, 2]}}}}}})
capped = th.sweep({{"method": "random", "run_cap": 5, "metric": {{"name": "loss"}},
                   "parameters": {{"x": {{"min": 0.0, "max": 1.0}}, "y": {{"value": 1}}}}}})
print(json.dumps([grid, capped]))
"""
        result = run_python(create, clean=True)
        assert result.returncode == 0, result.stderr
        grid, capped = json.loads(result.stdout)
        for sweep_id, expected in ((grid, 8), (capped, 5)):
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
            agents = [
                subprocess.Popen(
                    [sys.executable, "-c", _agent_code(collector.url, tmp_path / f"agent{i}", sweep_id)],
                    env=env,
                    cwd=str(REPO),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for i in range(2)
            ]
            ran = []
            for agent in agents:
                out, err = agent.communicate(timeout=120)
                assert agent.returncode == 0, err
                ran.append(int(out.strip().splitlines()[-1]))
            assert sum(ran) == expected and all(n > 0 for n in ran), ran  # both worked, no more than the sweep has
        check = f"""
import json, tracehouse as th
th.configure(endpoint={collector.url!r}, data_dir={str(tmp_path / "admin")!r}, project="shared")
grid = th.sweep_results({grid!r})
capped = th.sweep_results({capped!r})
print(json.dumps([sorted(zip(grid["x"].tolist(), grid["y"].tolist())), sorted(set(grid["state"])),
                  len(set(grid["agent_id"])), len(capped), th.sweep_status({capped!r})["state"]]))
"""
        result = run_python(check, clean=True)
        assert result.returncode == 0, result.stderr
        points, states, agents_seen, capped_trials, capped_state = json.loads(result.stdout)
        assert points == [[x, y] for x in (1, 2, 3, 4) for y in (1, 2)]  # every point once
        assert states == ["finished"] and agents_seen == 2 and capped_trials == 5 and capped_state == "finished"
    finally:
        if collector.process is not None and collector.process.poll() is None:
            collector.stop(signal.SIGTERM)
