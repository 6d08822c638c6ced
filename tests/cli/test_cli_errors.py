"""The command line a newcomer can trust: one-line errors with the closest match, a version, ports
checked before anything starts, options that would do nothing refused, numbers shown as what they are."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port

import tracehouse as th
from tracehouse.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_mistyped_option_names_the_subcommand_and_the_closest_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "traces", "--limt", "3")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "tracehouse traces: error: unrecognized arguments: --limt 3 (did you mean --limit?); "
        "see `tracehouse traces --help`"
    ]


def test_a_mistyped_command_or_action_gets_the_closest_match(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "trcaes")
    assert code == 2 and "invalid choice: 'trcaes'" in err and "(did you mean traces?)" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "keys", "creat", "--admin")
    assert code == 2 and "(did you mean create?)" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from tracehouse._version import VERSION

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip() == f"tracehouse {VERSION}"


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "http"])
def test_a_port_outside_the_range_is_refused_before_anything_starts(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("serve", "ui"):
        code, _, err = _run(capsys, command, "--port", port)
        assert code == 2 and "expected a port number (0-65535; 0 for any free one)" in err


@pytest.mark.parametrize(("argv", "reason"), [
    (["query", "SELECT 1", "--project", "p"], "SQL reads every project"),
    (["sync", "--project", "p"], "sync delivers every project's records"),
])  # fmt: skip
def test_options_that_would_do_nothing_are_refused(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "--project does not apply here" in err and reason in err


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_port_in_use_is_one_line_and_exit_1_with_no_address_announced(command: str, tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
        result = subprocess.run(
            [sys.executable, "-m", "tracehouse", command, "--port", str(port), "--data-dir", str(tmp_path / "data"),
             *(["--no-browser"] if command == "ui" else [])],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"tracehouse: port: 127.0.0.1:{port} is in use (another `tracehouse serve` or `ui`?); "
        "choose another with --port"
    ]
    assert "listening" not in result.stdout + result.stderr and "UI at" not in result.stdout


def test_sql_errors_are_one_line_without_the_engines_trailers(
    th_env: th.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with th.span("one"):
        pass
    code, _, err = _run(capsys, "query", "SELECT name,\n       nosuch FROM spans")
    assert code == 1 and err.startswith("tracehouse: sql: ") and "nosuch" in err
    assert len(err.strip().splitlines()) == 1
    assert "(Native)" not in err and "line 2, col" not in err and "(version" not in err


def test_unknown_token_counts_are_blank_not_zero(th_env: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with th.span("plain"):  # no usage reported: tokens unknown
        pass
    with th.span("call", kind="llm") as span:
        span.set_usage(model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    code, out, _ = _run(capsys, "latency", "--json")
    assert code == 0
    import json

    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["plain"]["input_tokens"] is None and rows["plain"]["output_tokens"] is None
    assert rows["call"]["input_tokens"] == 10 and rows["call"]["cost_usd"] > 0
    code, out, _ = _run(capsys, "traces", "--json")
    traces = {row["root_name"]: row for row in json.loads(out)}
    assert traces["plain"]["total_tokens"] is None and traces["call"]["total_tokens"] == 15
    frame = th.latency(by="name", since="1h")
    plain = frame[frame["name"] == "plain"].iloc[0]
    assert th.query("SELECT 1 AS one")["one"][0] == 1 and str(plain["input_tokens"]) in ("None", "nan", "<NA>")


def test_costs_keep_their_significant_digits_and_unknowns_are_a_dash() -> None:
    from tracehouse import _numbers

    assert _numbers.cost(0.000256) == "$0.000256" and _numbers.cost(0.00010241) == "$0.000102"
    assert _numbers.cost(12.3456) == "$12.35" and _numbers.cost(0) == "$0"
    assert _numbers.cost(None) == "—" and _numbers.count(None) == "—" and _numbers.count(1234) == "1,234"
    assert _numbers.cost(float("nan")) == "—"


def test_serve_on_port_0_announces_the_port_it_was_given(tmp_path: Path) -> None:
    import re
    import signal
    import urllib.request

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOUSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tracehouse", "serve", "--port", "0", "--grpc-port", "0", "--data-dir",
         str(tmp_path / "data")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.match(r"tracehouse collector listening on (http://127\.0\.0\.1:(\d+)) \(store chdb://", line)
        assert match is not None and int(match.group(2)) > 0, line
        with urllib.request.urlopen(match.group(1) + "/readyz", timeout=30) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0
