"""Docs that cannot drift: the README's Python runs, its quickstart commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_python

README = (REPO / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run(tmp_path: Path) -> None:
    code = "\n".join(_blocks("python"))
    assert "@th.trace" in code
    result = run_python(code, env={"TRACEHOUSE_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert "retrieve" in result.stdout and "generate" in result.stdout
    assert "['retrieve', 'generate']" in result.stdout  # the tree printed by the example


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)]
    assert len(commands) == 2
    demo, tests = commands
    assert "examples/rag_demo.py" in demo
    assert "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_quickstart_demo_prints_a_latency_table_and_where_the_data_is(tmp_path: Path) -> None:
    env = {**os.environ, "TRACEHOUSE_DIR": str(tmp_path / "data")}
    env.pop("TRACEHOUSE_CLICKHOUSE_URL", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "rag_demo.py")], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Latency by name (last hour):" in out and "Latency by model (last hour):" in out
    table = out.split("The newest trace:")[0]
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.split()[:1]}
    for name in ("answer", "generate", "retrieve", "embed"):
        assert rows[name][1] == "20", f"{name} should have been called 20 times"
    assert rows["gpt-4o-mini"][1] == "10" and rows["gpt-4.1-nano"][1] == "10"
    assert f"Store (chDB, ClickHouse SQL): chdb://{(tmp_path / 'data' / 'db').resolve()}" in out
    assert f"Spool (write-ahead log): {tmp_path / 'data' / 'spool'}" in out
    assert "└─ generate [llm]" in out
