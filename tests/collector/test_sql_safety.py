"""SQL is read-only everywhere (th.query, the CLI, /api/v1/query): each attack here once reached the host."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import SESSION_STORE_URL, collector_client

import tracehouse as th
from tracehouse.cli.main import main
from tracehouse.collector.store.sql_guard import check_readonly_sql, tokens

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

ATTACKS = [
    "DROP TABLE spans",
    "TRUNCATE TABLE spans",
    "INSERT INTO spans (project) VALUES ('x')",
    "SELECT 1; DROP TABLE spans",
    "SELECT 1; SELECT 2",
    "SET max_execution_time = 0",
    "SELECT count() FROM spans SETTINGS max_execution_time = 0, max_result_rows = 0",
    "SELECT file('/proc/self/environ')",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "DESCRIBE file('/etc/passwd', 'LineAsString')",
    "SELECT 1 INTO OUTFILE '/tmp/tracehouse-pwned.txt'",
    "INSERT INTO FUNCTION file('pwn.pth', 'CSV') SELECT 'import os'",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM executable('id', 'TSV', 'x String')",
    "SELECT * FROM python(th)",
    "SELECT * FROM merge(currentDatabase(), '^api')",
    "SELECT * FROM api_keys",
    "SELECT secret_hash FROM `tracehouse`.`api_keys`",
    "SELECT * FROM {t:Identifier}",
    "KILL QUERY WHERE 1",
    "SYSTEM SHUTDOWN",
    "SELECT 1 /* ; */ ; SELECT file('/etc/passwd')",
    "SELECT `\\x61pi_keys` FROM system.one",
    "SELECT $$a$$",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_the_guard_refuses(sql: str) -> None:
    with pytest.raises(th.ConfigError, match=r"^sql: "):
        check_readonly_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name, count() FROM spans GROUP BY name",
        "  with x AS (SELECT 1 AS a) SELECT a FROM x;",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SHOW TABLES",
        "DESCRIBE TABLE spans",
        "EXPLAIN SELECT 1",
        "SELECT replace(name, 'a', 'b'), format('{}', 1) FROM spans -- a comment; DROP\n",
        "SELECT 'DROP TABLE spans; SETTINGS' AS s, `weird``name` FROM system.one",
        "SELECT * FROM numbers(3) /* nested /* comments */ stay comments */",
        "SELECT * FROM system.tables WHERE name = 'api_keys_not_a_table'",
        "SELECT {p:String} AS p",
    ],
)
def test_the_guard_lets_reads_through(sql: str) -> None:
    assert check_readonly_sql(sql) == sql


def test_comments_and_strings_are_never_longer_than_clickhouse_thinks() -> None:
    assert [t.text for t in tokens("SELECT 1 # x ; y\nFROM t")] == ["select", "1", "from", "t"]
    assert [t.text for t in tokens("SELECT 1 -- x\r; y")] == ["select", "1", ";", "y"]
    assert [t.kind for t in tokens("SELECT 'a\\'b' ''")][1:] == ["string", "string"]
    with pytest.raises(th.ConfigError, match="not closed"):
        tokens("SELECT /* /* */ 1")
    with pytest.raises(th.ConfigError, match="not closed"):
        tokens("SELECT 'open")


def _spans_survive() -> None:
    th.flush()
    assert int(th.query("SELECT count() AS n FROM spans")["n"][0]) >= 1


@pytest.fixture
def traced(th_env: th.Settings) -> th.Settings:
    with th.span("kept"):
        pass
    th.flush()
    return th_env


@pytest.mark.parametrize("sql", ATTACKS)
def test_th_query_refuses_and_the_store_survives(traced: th.Settings, sql: str) -> None:
    with pytest.raises(th.ConfigError, match=r"^sql: "):
        th.query(sql)
    _spans_survive()
    assert not Path("/tmp/tracehouse-pwned.txt").exists()


def test_limits_stop_runaway_queries_with_a_clear_error(traced: th.Settings) -> None:
    with pytest.raises(th.ConfigError, match=r"more than 1,000 rows"):
        th.query("SELECT number FROM system.numbers", max_rows=1000)
    with pytest.raises(th.ConfigError, match=r"1 s limit"):
        th.query("SELECT count() FROM system.numbers", timeout=1)
    with pytest.raises(th.ConfigError, match=r"memory"):
        th.query("SELECT groupArray(toString(number)) FROM numbers(100000000)", max_memory_bytes=64 * 1024**2)
    assert th.query("SELECT 42 AS answer")["answer"][0] == 42  # the session is fine afterwards
    with pytest.raises(th.ConfigError, match="max_rows"):
        th.query("SELECT 1", max_rows=0)


def test_sql_errors_read_as_one_clean_line(traced: th.Settings) -> None:
    with pytest.raises(th.ConfigError) as info:
        th.query("SELECT nope FROM spans")
    message = str(info.value)
    assert message.startswith("sql: ") and "nope" in message
    assert "\n" not in message and "(version" not in message and "DB::Exception" not in message


def test_cli_query_refuses_in_one_line_and_exits_1(traced: th.Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "DROP TABLE spans"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tracehouse: sql: ")
    assert main(["query", "SELECT number FROM system.numbers", "--max-rows", "10"]) == 1
    assert "more than 10 rows" in capsys.readouterr().err
    assert main(["query", "SELECT count() AS n FROM spans"]) == 0
    assert capsys.readouterr().out.split()[0] == "n"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[TestClient]:
    from tracehouse.collector.server import ServeOptions, build

    parts = build(ServeOptions(store_url=SESSION_STORE_URL, database=f"sqlsafe_{os.getpid()}_{time.monotonic_ns()}",
                               default_project="p", spool_dir=tmp_path / "wal"))  # fmt: skip
    with collector_client(parts.app) as client:
        client.post("/api/v1/records", json=[_span_record()])
        yield client
    parts.close()


def _span_record() -> dict[str, object]:
    now = time.time_ns()
    return {
        "type": "span", "project": "p", "name": "kept", "trace_id": "b" * 32, "span_id": "1" * 16,
        "parent_span_id": "", "start_ns": now - 1000, "end_ns": now, "status": "ok", "status_message": "",
        "attributes": {}, "events": [], "span_kind": "INTERNAL", "scope": "t", "resource": {},
    }  # fmt: skip


@pytest.mark.parametrize("sql", ATTACKS)
def test_the_collector_refuses_with_400_and_keeps_working(collector: TestClient, sql: str) -> None:
    client = collector
    answer = client.post("/api/v1/query", json={"sql": sql})
    assert answer.status_code == 400 and answer.json()["error"].startswith("sql: ")
    after = client.post("/api/v1/query", json={"sql": "SELECT count() FROM spans"})
    assert after.status_code == 200 and after.json()["rows"] == [[1]]


def test_the_collector_limits_rows_and_a_refused_set_does_not_stick(collector: TestClient) -> None:
    client = collector
    many = client.post("/api/v1/query", json={"sql": "SELECT number FROM system.numbers"})
    assert many.status_code == 400 and "more than 10,000 rows" in many.json()["error"]
    client.post("/api/v1/query", json={"sql": "SET readonly = 0"})
    setting = client.post("/api/v1/query", json={"sql": "SELECT getSetting('readonly') AS r"})
    assert setting.json()["rows"] == [[1]]
