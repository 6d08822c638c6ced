"""The same schema and queries on a ClickHouse server (runs only with TRACEHOUSE_TEST_CLICKHOUSE_URL set)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

import tracehouse as th
from tracehouse.collector import Store
from tracehouse.exporters import SpoolIngester

SERVER_URL = os.environ.get("TRACEHOUSE_TEST_CLICKHOUSE_URL")
pytestmark = pytest.mark.skipif(not SERVER_URL, reason="set TRACEHOUSE_TEST_CLICKHOUSE_URL=http://user:pw@host:8123")


def test_spans_reach_a_server_store_and_read_back(tmp_path: Path) -> None:
    assert SERVER_URL is not None
    database = f"tracehouse_test_{uuid.uuid4().hex[:8]}"
    th.configure(project="server", data_dir=str(tmp_path / "data"), clickhouse_url=SERVER_URL, database=database)
    store = Store(SERVER_URL, database)
    try:

        @th.trace(kind="llm")
        def generate(prompt: str) -> str:
            th.current_span().set_usage(model="gpt-4o", input_tokens=10, output_tokens=20)
            return prompt.upper()

        generate("hello")
        th.flush()
        report = SpoolIngester(store).ingest(th.get_settings().spool_dir)
        assert report.rows == 1
        latency = th.latency(by="model")
        assert latency["count"].tolist() == [1]
        assert store.migrate() == []
    finally:
        store.client.command(f"DROP DATABASE IF EXISTS `{database}`")
