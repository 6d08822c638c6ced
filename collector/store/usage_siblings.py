"""The usage-once rule for sibling spans: one call reported by two spans that share a parent.

`usage.py` covers nesting (a span whose child reports usage is not counted). Some stacks report
one call twice side by side instead: on a langgraph agent the OpenAI span lands under the graph
node, beside LangChain's model span, not inside it; OpenInference's LangChain and OpenAI
instrumentors do the same. The rule for those: **a span's usage is not counted when a sibling
span (same parent) reports the same number of tokens and runs within its time** — the inner
one, the provider call, is counted. Equal times keep the span with the greater id.

Every span reporting tokens under a parent is kept in `usage_calls` (a materialized view); after
each write, `shadow_new_siblings` finds the pairs among the batch's traces (or, where only the
store saw the rows, the traces written since the last pass) and records the outer span in
`usage_shadows`, the table `COUNTED` already excludes. Reads stay one NOT IN; the pairing costs
one statement per written batch, over its traces only.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
_TOKENS = "ifNull(total_tokens, ifNull(input_tokens, 0) + ifNull(output_tokens, 0))"
_SLACK_S = 5  # rows another writer was inserting while the last pass ran are looked at again

_PAIRS = """
INSERT INTO {db}.usage_shadows (project, trace_id, span_id, by_span_id)
SELECT s.project, s.trace_id, s.span_id, p.span_id
FROM (SELECT * FROM {db}.usage_calls WHERE {scope}) AS s
INNER JOIN (SELECT * FROM {db}.usage_calls WHERE {scope}) AS p
    ON s.project = p.project AND s.trace_id = p.trace_id AND s.parent_span_id = p.parent_span_id
   AND s.tokens = p.tokens
WHERE s.span_id != p.span_id AND p.start_time >= s.start_time AND p.end_time <= s.end_time
  AND (p.start_time > s.start_time OR p.end_time < s.end_time OR p.span_id > s.span_id)
"""
_RECENT = (
    "(project, trace_id) IN (SELECT project, trace_id FROM {db}.usage_calls "
    "WHERE inserted_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC'))"
)

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0013_usage_calls",
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.usage_calls (
                project LowCardinality(String),
                trace_id String,
                parent_span_id String,
                span_id String,
                start_time DateTime64(9, 'UTC'),
                end_time DateTime64(9, 'UTC'),
                tokens UInt64,
                inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, trace_id, span_id)
            """,
            f"""
            CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.usage_calls_mv TO {{db}}.usage_calls AS
            SELECT project, trace_id, parent_span_id, span_id, start_time, end_time, toUInt64({_TOKENS}) AS tokens
            FROM {{db}}.spans WHERE parent_span_id != '' AND {_TOKENS} > 0
            """,
            f"""
            INSERT INTO {{db}}.usage_calls (project, trace_id, parent_span_id, span_id, start_time, end_time, tokens)
            SELECT project, trace_id, parent_span_id, span_id, start_time, end_time, toUInt64({_TOKENS})
            FROM {{db}}.spans WHERE parent_span_id != '' AND {_TOKENS} > 0
            """,
            _PAIRS.replace("{scope}", "1"),
        ],
    ),
]


_BATCH = "project IN {projects:Array(String)} AND trace_id IN {traces:Array(String)}"


class SiblingPass:
    """Remembers, per store, from when a pass without trace ids looks (server time, µs)."""

    def __init__(self) -> None:
        self._since: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def run(self, store: Store, traces: Optional[tuple[list[str], list[str]]] = None) -> None:
        """Record the sibling pairs among `traces` ((projects, trace ids) just written), or, without them,
        among the traces written since the last such pass (never raises)."""
        db = f"`{store.database}`"
        try:
            if traces is not None:
                sql = _PAIRS.replace("{scope}", _BATCH).replace("{db}", db)
                store.command(sql, {"projects": traces[0], "traces": traces[1]})
                return
            key = (store.url, store.database)
            with self._lock:
                _, rows = store.query_rows("SELECT toUnixTimestamp64Micro(now64(6))")
                now = int(rows[0][0])
                since = self._since.get(key, now - 3600 * 10**6) - _SLACK_S * 10**6
                store.command(_PAIRS.replace("{scope}", _RECENT).replace("{db}", db), {"since": since})
                self._since[key] = now
        except Exception as error:  # the counts stay as they were until a later write of the trace pairs them
            logger.warning("tracehouse: pairing sibling usage spans failed: %s", error)


sibling_pass = SiblingPass()


def shadow_new_siblings(store: Store, columns: Optional[dict[str, list[Any]]] = None) -> None:
    """After spans were written (`columns`, or None when only the store saw them): pair the new sibling
    reports among their traces; nothing to do when no written span has a parent and tokens."""
    if columns is None:
        sibling_pass.run(store)
        return
    traces = _traces_with_calls(columns)
    if traces[1]:
        sibling_pass.run(store, traces)


def _traces_with_calls(columns: dict[str, list[Any]]) -> tuple[list[str], list[str]]:
    """(projects, trace ids) of the written spans that have a parent and report tokens."""
    parents = columns.get("parent_span_id") or []
    tokens = [columns.get(name) or [None] * len(parents) for name in ("total_tokens", "input_tokens", "output_tokens")]
    chosen = [i for i, parent in enumerate(parents) if parent and any(t[i] for t in tokens)]
    projects = sorted({str(columns["project"][i]) for i in chosen})
    return projects, sorted({str(columns["trace_id"][i]) for i in chosen})


__all__ = ["MIGRATIONS", "SiblingPass", "shadow_new_siblings", "sibling_pass"]
