"""The usage-once rule: every LLM call's tokens and cost are counted once, however many spans report them.

Instrumentations nest: tracehouse's LangChain hook and its OpenAI hook, OpenInference's LangChain
and OpenAI instrumentors, a `@trace(kind="llm")` wrapper around a client call: each level reports
the same call's usage. The rule: **a span's usage is not counted when one of its child spans
reports usage** (tokens or cost); the innermost report, the provider call itself, is the one
counted. It holds whichever span arrives first: a materialized view writes, for every span that
reports usage, its parent into `usage_shadows`; a read counts a span unless it is there.

Sums, latency tables and dashboards use `COUNTED` (tokens and cost of shadowed spans are left
out; by model, shadowed spans are not calls at all); the trace view still shows every span with
what it reported. SQL users sum over the `llm_usage` view, which holds the counted spans only.
"""

from __future__ import annotations

# A span's usage is counted: it is not the parent of a span that reports usage. Needs {project:String}.
COUNTED = "(trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM usage_shadows WHERE project = {project:String})"

_REPORTS_USAGE = (
    "(input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR total_tokens IS NOT NULL OR cost_usd IS NOT NULL)"
)

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0012_usage_shadows",
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.usage_shadows (
                project LowCardinality(String),
                trace_id String,
                span_id String,
                by_span_id String
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, trace_id, span_id, by_span_id)
            """,
            f"""
            CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.usage_shadows_mv TO {{db}}.usage_shadows AS
            SELECT project, trace_id, parent_span_id AS span_id, span_id AS by_span_id
            FROM {{db}}.spans WHERE parent_span_id != '' AND {_REPORTS_USAGE}
            """,
            f"""
            INSERT INTO {{db}}.usage_shadows (project, trace_id, span_id, by_span_id)
            SELECT project, trace_id, parent_span_id, span_id
            FROM {{db}}.spans WHERE parent_span_id != '' AND {_REPORTS_USAGE}
            """,
            f"""
            CREATE VIEW IF NOT EXISTS {{db}}.llm_usage AS
            SELECT project, trace_id, span_id, parent_span_id, name, kind, model, provider, start_time, duration_ms,
                   status, input_tokens, output_tokens, total_tokens, cost_usd, run_id, session_id, user_id
            FROM {{db}}.spans
            WHERE {_REPORTS_USAGE} AND (project, trace_id, span_id) NOT IN
                (SELECT project, trace_id, span_id FROM {{db}}.usage_shadows)
            """,
        ],
    ),
]


def counted_sum(column: str) -> str:
    """`sumOrNull` of `column` over the spans whose usage counts (NULL when none reported it)."""
    return f"sumOrNullIf({column}, {COUNTED})"


__all__ = ["COUNTED", "MIGRATIONS", "counted_sum"]
