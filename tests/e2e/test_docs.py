"""Docs that cannot drift: the README's Python runs, its quickstart commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_python

README = (REPO / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_each_readme_python_block_runs_on_its_own(index: int, tmp_path: Path) -> None:
    """Pasted alone into a fresh interpreter on a fresh data dir, every block runs."""
    code = _blocks("python")[index]
    result = run_python(code, env={"TRACEHOUSE_DIR": str(tmp_path / "data")}, clean=True)
    assert result.returncode == 0, f"README python block {index + 1} failed alone:\n{code}\n{result.stderr}"
    if "@th.trace" in code and "retrieve" in code:
        assert "['retrieve', 'generate']" in result.stdout  # the tree printed by the first example


def test_the_readme_sweep_yaml_is_a_valid_sweep(tmp_path: Path) -> None:
    from tracehouse.collector.sweeps.config import parse_config
    from tracehouse.sweeps.sweep import load_config

    (yaml_block,) = [block for block in _blocks("yaml") if "method:" in block]  # the others are not sweeps
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml_block)
    config = parse_config(load_config(path))
    assert config.method == "bayes" and config.metric_name == "loss" and config.program == "train.py"


def _readme_command_lines() -> dict[str, list[str]]:
    """README lines of fenced shell blocks that run `tracehouse ...`, by command path."""
    from tracehouse.cli.main import build_parser
    from tracehouse.cli.parsing import command_options

    paths = sorted(command_options(build_parser()), key=len, reverse=True)
    found: dict[str, list[str]] = {}
    shell = [body for language, body in re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
             if language in ("", "bash")]  # fmt: skip
    for block in shell:
        for line in block.splitlines():
            words = re.sub(r"^(?:[A-Z_]+=\S+\s+)*", "", line.strip()).split("#")[0]
            if not words.startswith("tracehouse "):
                continue
            rest = words[len("tracehouse ") :]
            path = next((p for p in paths if rest == p or rest.startswith(p + " ")), None)
            if path is not None:
                found.setdefault(path, []).append(words)
    return found


def test_the_readme_lists_every_command_and_option_the_parser_has_and_nothing_else() -> None:
    from tracehouse.cli.main import build_parser
    from tracehouse.cli.parsing import command_options

    commands = {path: options for path, options in command_options(build_parser()).items() if options}
    lines = _readme_command_lines()
    for path, options in commands.items():
        assert path in lines, f"the README shows no `tracehouse {path}` line"
        shown = " ".join(lines[path])
        for option in options:
            assert re.search(rf"{option}(?![\w-])", shown), f"the README's `tracehouse {path}` lines miss {option}"
    for path, shown_lines in lines.items():
        for option in re.findall(r"--[a-z][a-z-]*", " ".join(shown_lines)):
            assert option in commands.get(path, []), (
                f"the README shows `tracehouse {path} {option}`, which the parser lacks"
            )


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
    assert "Latency by name (this run):" in out and "Latency by model (this run):" in out
    table = out.split("The newest trace:")[0]
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.split()[:1]}
    for name in ("answer", "generate", "retrieve", "embed"):
        assert rows[name][1] == "20", f"{name} should have been called 20 times"
    assert rows["gpt-4o-mini"][1] == "10" and rows["gpt-4.1-nano"][1] == "10"
    assert f"Store (chDB, ClickHouse SQL): chdb://{(tmp_path / 'data' / 'db').resolve()}" in out
    assert f"Spool (write-ahead log): {tmp_path / 'data' / 'spool'}" in out
    assert "└─ generate [llm]" in out
    hint = next(line for line in out.splitlines() if line.startswith("Query it: "))
    command = hint[len("Query it: ") :].split(" query ", 1)[0]
    assert command == "tracehouse" or Path(REPO, command).resolve() == (Path(sys.executable).parent / "tracehouse")


def test_a_second_demo_run_counts_only_its_own_calls_and_names_a_command_that_works(tmp_path: Path) -> None:
    env = {**os.environ, "TRACEHOUSE_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}  # the venv not active
    env.pop("TRACEHOUSE_CLICKHOUSE_URL", None)
    demo = [sys.executable, str(REPO / "examples" / "rag_demo.py")]
    subprocess.run(demo, env=env, capture_output=True, text=True, timeout=180, check=True)
    second = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    rows = {line.split()[0]: line.split() for line in second.stdout.split("The newest trace:")[0].splitlines() if line}
    assert rows["answer"][1] == "20", "the tables must count this run's 20 calls, not the earlier run's too"
    hint = next(line for line in second.stdout.splitlines() if line.startswith("Query it: "))
    command = hint[len("Query it: ") :].split(" query ", 1)[0]
    ran = subprocess.run([*command.split(), "query", "SELECT count() AS n FROM spans WHERE name = 'answer'"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "40" in ran.stdout
