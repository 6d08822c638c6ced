"""`th.init()` says on stderr, in one line, which run started and where to look at it (W&B's `wandb:` lines)."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import reconfigure, run_python
from servers import Collector, free_port

import tracehouse as th

_START = """
import tracehouse as th
run = th.init(project="demo", name="bright-river-3", mode={mode!r})
print(run.id)
run.finish()
"""


def _lines(text: str) -> list[str]:
    """The banner lines in `text` (other `tracehouse:` lines, warnings, are not the banner)."""
    return [line for line in text.splitlines() if re.match(r"tracehouse: (resumed |offline )?run \S+ \(id ", line)]


def _child(tmp_path: Path, mode: str = "online", **env: str) -> tuple[str, list[str]]:
    """Start and finish a run in a fresh interpreter with only `env` set; its id and its tracehouse lines."""
    result = run_python(_START.format(mode=mode), env={"TRACEHOUSE_DIR": str(tmp_path / "data"), **env}, clean=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), _lines(result.stderr)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    served = Collector(tmp_path_factory.mktemp("served") / "data", free_port())
    served.start()
    yield served
    served.stop()


def test_one_line_with_name_id_project_and_the_command_to_look(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    run = th.init(project="demo", name="bright-river-3")
    captured = capsys.readouterr()
    run.finish()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("tracehouse: ")
    assert f"run bright-river-3 (id {run.id}) in project 'demo'" in captured.err
    assert f"tracehouse run {run.id} --project demo --data-dir {th_env.data_dir}" in captured.err
    assert capsys.readouterr().err == ""  # finish() says nothing


def test_resumed_run_says_resumed(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    th.init(project="demo", id="banner-1", name="first").finish()
    capsys.readouterr()
    th.init(project="demo", id="banner-1", resume="must").finish()
    (line,) = _lines(capsys.readouterr().err)
    assert line.startswith("tracehouse: resumed run first (id banner-1) in project 'demo' · ")


def test_offline_run_says_offline_and_how_to_upload(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    run = th.init(project="demo", mode="offline")
    (line,) = _lines(capsys.readouterr().err)
    run.finish()
    assert line.startswith(f"tracehouse: offline run {run.name} (id {run.id}) in project 'demo' · ")
    assert "tracehouse sync" in line


def test_nothing_for_disabled_runs_or_when_silent(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    th.init(project="demo", mode="disabled").finish()
    assert capsys.readouterr().err == ""
    reconfigure(th_env, disabled=True)
    th.init(project="demo").finish()
    assert capsys.readouterr().err == ""
    assert reconfigure(th_env, silent=True).silent is True
    th.init(project="demo").finish()
    th.init(project="demo", mode="offline").finish()
    assert capsys.readouterr().err == ""


def test_each_sweep_trial_prints_its_line(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_id = th.sweep({"method": "grid", "parameters": {"lr": {"values": [0.1, 0.01]}}}, project="demo")
    started: list[str] = []

    def train() -> None:
        with th.init() as run:
            started.append(run.id)
            run.log({"loss": run.config.lr})

    capsys.readouterr()
    assert th.agent(sweep_id, function=train, project="demo") == 2
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 2
    for run_id, line in zip(started, lines, strict=True):
        assert f"(id {run_id}) in project 'demo', sweep {sweep_id} · " in line


def test_silenced_by_the_environment(tmp_path: Path) -> None:
    run_id, lines = _child(tmp_path)
    assert len(lines) == 1 and f"run bright-river-3 (id {run_id}) in project 'demo'" in lines[0]
    assert lines[0].endswith(f"view it with: tracehouse run {run_id} --project demo, or in a browser: tracehouse ui")
    assert _child(tmp_path, TRACEHOUSE_SILENT="1")[1] == []
    assert _child(tmp_path, WANDB_SILENT="true")[1] == []
    assert _child(tmp_path, mode="offline", WANDB_SILENT="True")[1] == []
    assert len(_child(tmp_path, TRACEHOUSE_SILENT="false", WANDB_SILENT="true")[1]) == 1  # ours wins
    # W&B's variable is not ours: a value we cannot read neither silences nor disables tracehouse
    run_id, lines = _child(tmp_path, WANDB_SILENT="sometimes")
    assert len(lines) == 1 and f"(id {run_id})" in lines[0]


def _page(url: str, text: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body: str = answer.read().decode()
            if text in body:
                return body
        except urllib.error.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {text!r}")
        time.sleep(0.3)


def test_the_ui_url_of_a_configured_endpoint(tmp_path: Path, collector: Collector) -> None:
    run_id, lines = _child(tmp_path, TRACEHOUSE_ENDPOINT=collector.url + "/")
    url = f"{collector.url}/runs/{run_id}?project=demo"
    assert len(lines) == 1 and lines[0].endswith(f"(id {run_id}) in project 'demo' · {url}")
    assert "bright-river-3" in _page(url, "bright-river-3")


def test_the_ui_url_of_a_collector_serving_the_same_data_dir(collector: Collector) -> None:
    result = run_python(_START.format(mode="online"), env={"TRACEHOUSE_DIR": str(collector.data_dir)}, clean=True)
    assert result.returncode == 0, result.stderr
    run_id, lines = result.stdout.strip(), _lines(result.stderr)
    url = f"{collector.url}/runs/{run_id}?project=demo"
    assert len(lines) == 1 and lines[0].endswith(f" · {url}")
    assert "bright-river-3" in _page(url, "bright-river-3")


def test_a_missing_or_closed_stderr_never_breaks_init(
    th_env: th.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = (tmp_path / "stderr.txt").open("w")
    closed.close()
    for stream in (None, closed):  # pythonw has no stderr; a daemon may have closed it
        monkeypatch.setattr("sys.stderr", stream)
        th.init(project="demo").finish()


def test_silent_setting_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracehouse.spans.config import resolve_settings

    assert resolve_settings().silent is False
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert resolve_settings().silent is True
    monkeypatch.setenv("TRACEHOUSE_SILENT", "0")
    assert resolve_settings().silent is False  # ours over W&B's
    assert resolve_settings(silent=True).silent is True  # the argument over both
    monkeypatch.setenv("TRACEHOUSE_SILENT", "maybe")
    with pytest.raises(th.ConfigError) as raised:
        resolve_settings()
    assert raised.value.option == "TRACEHOUSE_SILENT"
    monkeypatch.delenv("TRACEHOUSE_SILENT")
    monkeypatch.setenv("WANDB_SILENT", "maybe")  # W&B's to judge, not ours: ignored
    assert resolve_settings().silent is False
