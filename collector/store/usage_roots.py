"""The usage-once rule for root spans: one call reported by two traces.

OpenInference's LangChain and OpenAI instrumentors, with no span of the app around the call, report
one `ChatOpenAI.invoke` as two root spans in two traces: LangChain's model span and, inside its time,
the OpenAI call (the LangChain instrumentor does not make its span the current one). Neither nesting
(`usage.py`) nor siblings (`usage_siblings.py`) can pair them. The rule for those: **a root span's usage
is not counted when a root span of another instrumentation scope, in the same project and service,
reports the same input and output tokens and runs within its time**, starting at most 10 s after it —
the inner one, the provider call, is counted. Two calls of one scope (two OpenAI calls with equal
counts, one inside the other) both count, and so does a framework span whose provider call reported
other counts.

Every root span that reports tokens is kept in `usage_roots` (a materialized view, ordered by project and
tokens); after each write `shadow_new_roots` pairs the calls written since just before it (the store's
clock) with the root calls of equal counts and records the outer span in `usage_shadows`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tracehouse.collector.store.usage_siblings import CALL_TOKENS, shadow_new_siblings

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
_SELECT = f"""
SELECT project, trace_id, span_id, scope_name AS scope, service_name AS service, start_time, end_time,
       toUInt64({CALL_TOKENS}) AS tokens, toInt64(ifNull(input_tokens, -1)) AS input_count,
       toInt64(ifNull(output_tokens, -1)) AS output_count
FROM {{db}}.spans WHERE parent_span_id = '' AND {CALL_TOKENS} > 0
"""
# The join is on equal counts and on the 10-second bucket of the outer span's start, the inner one's bucket or
# the one before it: one call's two reports start milliseconds apart, and roots of equal counts (thousands at a
# time in a busy project) are then paired only with their neighbours in time, never all with all.
_BUCKET = "intDiv(toUnixTimestamp(start_time), 10)"
_ROOTS = f"(SELECT *, {_BUCKET} AS bucket FROM {{db}}.usage_roots WHERE {{scope}})"
_INNER = f"(SELECT *, arrayJoin([{_BUCKET}, {_BUCKET} - 1]) AS bucket FROM {{db}}.usage_roots WHERE {{scope}})"
_PAIRS = f"""
INSERT INTO {{db}}.usage_shadows (project, trace_id, span_id, by_span_id)
SELECT s.project, s.trace_id, s.span_id, p.span_id
FROM {_ROOTS} AS s INNER JOIN {_INNER} AS p
    ON s.project = p.project AND s.tokens = p.tokens AND s.input_count = p.input_count
   AND s.output_count = p.output_count AND s.service = p.service AND s.bucket = p.bucket
WHERE s.scope != p.scope AND s.trace_id != p.trace_id AND p.start_time >= s.start_time AND p.end_time <= s.end_time
  AND (p.start_time > s.start_time OR p.end_time < s.end_time OR p.span_id > s.span_id)
"""
# Both sides of a pass: the roots near the calls written since a moment (their counts, the key's prefix, and
# their times, so only those granules are read) whose group holds two instrumentation scopes; a busy project's
# many roots of one scope never reach the join.
_NEW = "FROM {db}.usage_roots WHERE inserted_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')"
_SCOPES = f"SELECT uniqExact(scope) FROM {{db}}.usage_roots WHERE project IN (SELECT project {_NEW})"
_TWO_SCOPES = (
    "(project, tokens, input_count, output_count, service) IN (SELECT project, tokens, input_count, output_count, "
    "service FROM {db}.usage_roots WHERE {near} "
    "GROUP BY project, tokens, input_count, output_count, service HAVING uniqExact(scope) > 1)"
)
_SINCE = _TWO_SCOPES.replace(
    "{near}",
    f"(project, tokens) IN (SELECT project, tokens {_NEW}) "
    f"AND start_time >= (SELECT min(start_time) - INTERVAL 10 SECOND {_NEW}) "
    f"AND start_time <= (SELECT max(start_time) + INTERVAL 10 SECOND {_NEW})",
)

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0016_usage_roots",
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.usage_roots (
                project LowCardinality(String),
                trace_id String,
                span_id String,
                scope LowCardinality(String),
                service LowCardinality(String),
                start_time DateTime64(9, 'UTC'),
                end_time DateTime64(9, 'UTC'),
                tokens UInt64,
                input_count Int64,  -- input_tokens, -1 when not reported
                output_count Int64,
                inserted_at DateTime64(6, 'UTC') DEFAULT now64(6),
                INDEX inserted_at_range inserted_at TYPE minmax GRANULARITY 1
            ) ENGINE = ReplacingMergeTree
            ORDER BY (project, tokens, start_time, trace_id, span_id)
            """,
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.usage_roots_mv TO {{db}}.usage_roots AS {_SELECT}",
            "INSERT INTO {db}.usage_roots (project, trace_id, span_id, scope, service, start_time, end_time, tokens, "
            f"input_count, output_count) {_SELECT}",
            _PAIRS.replace("{scope}", _TWO_SCOPES.replace("{near}", "1")),
        ],
    ),
]


def shadow_new_roots(store: Store, since: int) -> None:
    """After spans were written: pair the root calls written from `since` (`server_now` before the write)
    with the root calls of equal counts; never raises."""
    db = f"`{store.database}`"
    try:  # reads first: a project whose root calls all come from one scope has nothing to pair (the usual case)
        _, scopes = store.query_rows(_SCOPES.replace("{db}", db), {"since": since})
        if int(scopes[0][0]) < 2:
            return
        _, rows = store.query_rows(f"SELECT 1 FROM {{db}}.usage_roots WHERE {_SINCE} LIMIT 1".replace("{db}", db),
                                   {"since": since})  # fmt: skip
        if rows:
            store.command(_PAIRS.replace("{scope}", _SINCE).replace("{db}", db), {"since": since})
    except Exception as error:  # the counts stay as they were until a later write pairs them
        logger.warning("tracehouse: pairing root usage spans failed: %s", error)


def shadow_new_pairs(store: Store, since: int) -> None:
    """After spans were written from `since` on: the sibling pairs (usage_siblings.py) and the root pairs."""
    shadow_new_siblings(store, since)
    shadow_new_roots(store, since)


__all__ = ["MIGRATIONS", "shadow_new_pairs", "shadow_new_roots"]
