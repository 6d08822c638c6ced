"""The Grafana dashboard (ClickHouse data source) runs its queries against the `otel_traces` view."""

from __future__ import annotations

import json
import re
from pathlib import Path

import tracehouse as th
from tracehouse.reads.reading import get_store

DASHBOARD = Path(th.__file__).parent.parent / "collector" / "grafana" / "latency.json"


def _expand(sql: str, project: str) -> str:
    """The ClickHouse plugin's macros, as it expands them for the last hour in 60 s steps."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now64(9) - INTERVAL 1 HOUR AND \1 <= now64(9)", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 60 second)", sql)
    return sql.replace("${project}", project)


def test_every_panel_query_runs_on_the_otel_traces_view(th_env: th.Settings) -> None:
    @th.trace(kind="llm")
    def call(i: int) -> int:
        th.current_span().set_usage(model="gpt-4o", input_tokens=1, output_tokens=1)
        return i

    for i in range(5):
        call(i)
    th.flush()
    th.sync()
    dashboard = json.loads(DASHBOARD.read_text())
    assert {p["title"] for p in dashboard["panels"]} >= {"Latency p50 / p95 / p99", "Error rate", "By model"}
    for panel in dashboard["panels"]:
        sql = panel["targets"][0]["rawSql"]
        assert "FROM otel_traces" in sql
        _, rows = get_store().query_rows(_expand(sql, th_env.project))
        assert rows, panel["title"]
    _, rows = get_store().query_rows(_expand(dashboard["panels"][4]["targets"][0]["rawSql"], th_env.project))
    assert rows[0][0] == "gpt-4o" and rows[0][1] == 5
