"""The usage-once rule for sibling spans: one call reported by two spans that share a parent.

`usage.py` covers nesting (a span whose child reports usage is not counted). Some stacks report
one call twice side by side instead: on a langgraph agent the OpenAI span lands under the graph
node, beside LangChain's model span, not inside it; OpenInference's LangChain and OpenAI
instrumentors do the same. The rule for those: **a span's usage is not counted when a sibling
span (same parent) reports the same number of tokens and runs within its time** — the inner
one, the provider call, is counted. Equal times keep the span with the greater id.

Every span reporting tokens under a parent is kept in `usage_calls` (a materialized view); after
each write, `shadow_new_siblings` finds the pairs among the traces written since just before it
(the store's clock, so rows of concurrent writers are looked at too) and records the outer span in
`usage_shadows`, the table `COUNTED` already excludes. Reads stay one NOT IN; the pairing costs
one small grouped read per written batch (a minmax index on `inserted_at` skips old parts), and
a join only over the rare traces that hold a candidate pair.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
# the tokens a span reports for its call (the parts' sum when no total): what pairs two reports of one call
CALL_TOKENS = "ifNull(total_tokens, ifNull(input_tokens, 0) + ifNull(output_tokens, 0))"

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
            SELECT project, trace_id, parent_span_id, span_id, start_time, end_time, toUInt64({CALL_TOKENS}) AS tokens
            FROM {{db}}.spans WHERE parent_span_id != '' AND {CALL_TOKENS} > 0
            """,
            f"""
            INSERT INTO {{db}}.usage_calls (project, trace_id, parent_span_id, span_id, start_time, end_time, tokens)
            SELECT project, trace_id, parent_span_id, span_id, start_time, end_time, toUInt64({CALL_TOKENS})
            FROM {{db}}.spans WHERE parent_span_id != '' AND {CALL_TOKENS} > 0
            """,
            _PAIRS.replace("{scope}", "1"),
        ],
    ),
    (  # a pass looks at the rows written since just before its write: old parts are skipped by range
        "0014_usage_calls_inserted_at_index",
        [
            "ALTER TABLE {db}.usage_calls ADD INDEX IF NOT EXISTS inserted_at_range inserted_at TYPE minmax "
            "GRANULARITY 1",
            "ALTER TABLE {db}.usage_calls MATERIALIZE INDEX inserted_at_range",
        ],
    ),
]


_BATCH = "project IN {projects:Array(String)} AND trace_id IN {traces:Array(String)}"
# Step one of a pass, over the traces written since a moment: the (project, trace) of every parent key that
# holds two calls of the same size. Almost always none, so step two (the join above) rarely runs, and then
# only over those traces. Both steps name no span ids: a batch's ids as a parameter cost more than the insert.
_CANDIDATES = (
    "SELECT project, trace_id FROM {db}.usage_calls WHERE trace_id IN (SELECT trace_id FROM {db}.usage_calls "
    "WHERE inserted_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')) "
    "GROUP BY project, trace_id, parent_span_id, tokens HAVING count() > 1"
)


def server_now(store: Store) -> int:
    """The store's clock (µs since the epoch), the clock `usage_calls.inserted_at` is stamped with; taken
    before a write, it is where that write's pass starts looking (concurrent writers' rows included)."""
    _, rows = store.query_rows("SELECT toUnixTimestamp64Micro(now64(6))")
    return int(rows[0][0])


def shadow_new_siblings(store: Store, since: int) -> None:
    """After spans were written: record the sibling pairs among the traces written from `since`
    (`server_now` before the write); never raises."""
    db = f"`{store.database}`"
    try:
        _, rows = store.query_rows(_CANDIDATES.replace("{db}", db), {"since": since})
        if rows:
            projects, traces = sorted({str(r[0]) for r in rows}), sorted({str(r[1]) for r in rows})
            store.command(_PAIRS.replace("{scope}", _BATCH).replace("{db}", db),
                          {"projects": projects, "traces": traces})  # fmt: skip
    except Exception as error:  # the counts stay as they were until a later write of the trace pairs them
        logger.warning("tracehouse: pairing sibling usage spans failed: %s", error)


def has_calls(columns: dict[str, list[Any]]) -> bool:
    """Whether any span about to be written reports tokens (only those can pair, as siblings or as roots)."""
    reported = [columns.get(name) or () for name in ("total_tokens", "input_tokens", "output_tokens")]
    return any(any(value for value in column) for column in reported)


__all__ = ["CALL_TOKENS", "MIGRATIONS", "has_calls", "server_now", "shadow_new_siblings"]
