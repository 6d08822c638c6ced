"""The `tracehouse` command: query, traces, trace, latency, sync; tables and JSON; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, reconfigure

import tracehouse as th
from tracehouse.cli.main import build_parser, main


@pytest.fixture
def traced(th_env: th.Settings) -> str:
    @th.trace(kind="llm")
    def generate(prompt: str) -> str:
        th.current_span().set_usage(model="gpt-4o-mini", input_tokens=100, output_tokens=50)
        return "an answer"

    @th.trace(kind="chain")
    def answer(question: str) -> str:
        return generate(f"Q: {question}")

    for _ in range(3):
        answer("why?")
    return str(th.traces(limit=1).trace_id[0])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_latency_table_and_json(traced: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "latency", "--by", "model")
    assert code == 0
    header, rule, row = out.strip().splitlines()
    assert header.split()[:6] == ["model", "count", "p50_ms", "p95_ms", "p99_ms", "error_rate"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split()[:2] == ["gpt-4o-mini", "3"]
    code, out, _ = run_cli(capsys, "latency", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["generate"]["count"] == 3
    assert rows["generate"]["input_tokens"] == 300
    assert rows["generate"]["cost_usd"] == pytest.approx(3 * (100 * 0.15 + 50 * 0.6) / 1e6)
    assert rows["answer"]["cost_usd"] is None


def test_traces_and_trace_tree(traced: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "traces", "--json", "--limit", "2")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 2
    assert listed[0]["trace_id"] == traced
    assert listed[0]["root_name"] == "answer" and listed[0]["spans"] == 2
    code, out, _ = run_cli(capsys, "trace", traced)
    lines = out.splitlines()
    assert lines[0].startswith("answer [chain]")
    assert lines[1].startswith("└─ generate [llm]") and "model=gpt-4o-mini" in lines[1] and "tokens=150" in lines[1]
    code, out, _ = run_cli(capsys, "trace", traced, "--json")
    tree = json.loads(out)
    assert tree["name"] == "answer" and [c["name"] for c in tree["children"]] == ["generate"]


def test_query_with_parameters(traced: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT name, count() AS n FROM spans WHERE kind = {k:String} GROUP BY name"
    code, out, _ = run_cli(capsys, "query", sql, "--param", "k=llm", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": "generate", "n": 3}]


def test_errors_are_one_line_and_exit_1(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "trace", "not-an-id")
    assert code == 1 and out == ""
    assert err.strip() == "tracehouse: trace_id: expected 32 lowercase hex digits, got 'not-an-id'"
    code, _, err = run_cli(capsys, "query", "SELECT nope FROM spans")
    assert code == 1 and err.startswith("tracehouse: sql: ") and "nope" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "latency", "--since", "yesterday")
    assert code == 1 and "since:" in err


def test_empty_results_say_so(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "traces")
    assert code == 1 and err.strip() == "tracehouse: no project 'test' in the store; the store holds no projects yet"
    with th.span("long ago", kind="tool"):
        pass
    code, out, _ = run_cli(capsys, "traces", "--since", "2000-01-01", "--name", "not this")
    assert code == 0 and out.strip() == "(no rows)"  # a known project, nothing matching: an empty answer
    code, _, err = run_cli(capsys, "traces", "--data-dir", str(th_env.data_dir / "typo"))
    assert code == 1 and "is not a directory" in err and not (th_env.data_dir / "typo").exists()


def test_sync_reports_what_it_ingested(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    @th.trace
    def step() -> int:
        return 1

    for _ in range(5):
        step()
    reconfigure(th_env)  # closes the segment, so sync can trim it
    code, out, _ = run_cli(capsys, "sync", "--json")
    assert code == 0
    expected = {"rows": 5, "segments": 1, "rejected": 0, "requeued": 0, "damaged_bytes": 0, "set_aside": 0}
    assert json.loads(out) == {**expected, "problems": []}


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    for command in subparsers.choices:  # type: ignore[union-attr]
        assert f"tracehouse {command}" in readme, f"`tracehouse {command}` is not in the README"


def test_console_script_runs_in_its_own_process(tmp_path: Path) -> None:
    env = {**os.environ, "TRACEHOUSE_DIR": str(tmp_path / "data")}
    env.pop("TRACEHOUSE_CLICKHOUSE_URL", None)
    script = Path(sys.executable).with_name("tracehouse")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tracehouse"]
    result = subprocess.run([*command, "latency", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == "tracehouse: no project 'default' in the store; the store holds no projects yet\n"
    result = subprocess.run([*command, "query", "SELECT 41 + 1 AS n", "--json"], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 42}]
