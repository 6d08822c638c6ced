"""W&B's command-line forms: `tracehouse offline|online` and `tracehouse sync DIR`; a SIGKILLed run
resumes with its summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tracehouse as th
from tracehouse.cli.main import main


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_offline_and_online_set_the_mode_of_runs_started_from_the_data_dir(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(capsys, "offline", "--json")
    assert code == 0 and json.loads(out)["mode"] == "offline"
    with th.init(project="modes") as run:
        assert run.mode == "offline"
    with th.init(project="modes", mode="online") as run:  # an argument still wins
        assert run.mode == "online"
    code, out = _cli(capsys, "online")
    assert code == 0 and "online" in out
    with th.init(project="modes") as run:
        assert run.mode == "online"


def test_sync_dir_delivers_another_data_dirs_offline_runs_with_their_blobs(
    th_env: th.Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "laptop"
    code = (
        "import numpy as np\n"
        "import tracehouse as th\n"
        "with th.init(project='away', mode='offline', config={'lr': 0.1}) as run:\n"
        "    th.log({'loss': 0.5, 'pic': th.Image(np.zeros((4, 4, 3), dtype=np.uint8))})\n"
        "print(run.id)\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}, "TRACEHOUSE_DIR": str(other),
           "TRACEHOUSE_SILENT": "1"}  # fmt: skip
    made = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.strip()
    code_, out = _cli(capsys, "sync", str(other), "--json")
    assert code_ == 0 and json.loads(out)["rows"] > 0
    runs = th.runs(project="away")
    assert runs["run_id"].tolist() == [run_id] and runs["config.lr"].tolist() == [0.1]
    value = th.query("SELECT value FROM run_values WHERE run_id = {r:String} AND key = 'pic'", {"r": run_id})
    digest = json.loads(value["value"][0])["digest"]
    from tracehouse.tracking.blobs import blob_store

    assert blob_store().exists(digest)
    assert main(["sync", str(tmp_path / "missing")]) == 1


def test_a_sigkilled_run_resumes_with_its_summary(th_env: th.Settings) -> None:
    code = (
        "import os, signal, time\n"
        "import tracehouse as th\n"
        "run = th.init(project='killed', id='k1', config={'lr': 0.1})\n"
        "run.summary['best'] = 0.25\n"
        "deadline = time.monotonic() + 1.5\n"
        "step = 0\n"
        "while time.monotonic() < deadline:\n"
        "    th.log({'loss': 1.0 / (step + 1)})\n"
        "    step += 1\n"
        "    time.sleep(0.01)\n"
        "th.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")},
           "TRACEHOUSE_DIR": str(th_env.data_dir), "TRACEHOUSE_SILENT": "1"}  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with th.init(project="killed", id="k1", resume="must") as run:
        assert run.summary["best"] == 0.25 and "loss" in run.summary
        assert run.step > 0
