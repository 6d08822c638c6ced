"""Sessions and users: traces grouped by the `session_id` / `user_id` columns of `spans`.

Those columns hold OpenInference's `session.id` / `user.id` and Langfuse's `langfuse.session.id` /
`langfuse.user.id` (store/rows/spans.py maps them, from tracehouse's spans and OTLP alike). A trace
belongs to a session (a user) when any of its spans names it, often only the root; its totals count
every span of the trace.

The lists page by a keyset cursor on (last activity, id), `<last time ns>_<id>`: `after` the page
that follows a row (older), `before` the one that precedes it (newer), so any number of sessions can
be walked without OFFSET.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store.trace_sort import usage_sum
from tracehouse.collector.ui import queries as uq

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

GROUPS = {"session": "session_id", "user": "user_id"}
MAX_GROUPS, MAX_TRACES = 500, 1000
PAGE_SIZE = 100

_TRACES_SQL = """
SELECT trace_id, anyIf({column}, {column} != '') AS member, min(start_time) AS started, max(end_time) AS ended,
       count() AS spans, countIf(status = 'error') AS errors, {tokens} AS tokens,
       {cost} AS cost, anyIf(user_id, user_id != '') AS trace_user,
       anyIf(session_id, session_id != '') AS trace_session
       {text}
FROM spans
WHERE {window} {member}
GROUP BY trace_id
HAVING member != ''
"""

_GROUPS_SQL = """
SELECT member AS id, count() AS traces, min(started) AS first_time, max(ended) AS last_time, sum(spans) AS spans,
       sumOrNull(tokens) AS tokens, sumOrNull(cost) AS cost_usd, countIf(errors > 0) AS errors,
       groupUniqArrayIf(trace_user, trace_user != '') AS users, toUnixTimestamp64Nano(max(ended)) AS last_ns
FROM ({traces})
GROUP BY member
HAVING 1 {cursor}
ORDER BY last_ns {newest}, id {oldest}
LIMIT {limit:UInt32}
"""

_ROOT = "(parent_span_id != '', start_time)"
_TEXT = f""", argMin(name, {_ROOT}) AS root_name, substring(argMin(input, {_ROOT}), 1, 4000) AS input,
       substring(argMin(output, {_ROOT}), 1, 4000) AS output,
       (max(toUnixTimestamp64Nano(end_time)) - min(toUnixTimestamp64Nano(start_time))) / 1e6 AS duration_ms"""


def _traces_sql(group: str, member: str, text: str) -> str:
    column = GROUPS[group]
    return _TRACES_SQL.replace("{member}", member).replace("{column}", column).replace("{text}", text) \
        .replace("{window}", uq.WINDOW).replace("{tokens}", usage_sum("total_tokens")) \
        .replace("{cost}", usage_sum("cost_usd"))  # fmt: skip


def parse_cursor(option: str, cursor: Optional[str]) -> Optional[tuple[int, str]]:
    """(last time in ns, id) of a list cursor; ConfigError naming the option when it is not one."""
    if cursor is None:
        return None
    nanos, _, member_id = cursor.partition("_")
    if not nanos.isdigit() or not member_id or int(nanos) >= 2**63:
        raise ConfigError(option, f"expected a cursor from a sessions or users page (<ns>_<id>), got {cursor!r}")
    return int(nanos), member_id


def page_limit(raw: Optional[str]) -> int:
    """The page size asked for (default 100); ConfigError outside 1..500."""
    raw = raw or str(PAGE_SIZE)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_GROUPS:
        raise ConfigError("limit", f"expected a page size from 1 to {MAX_GROUPS}, got {raw!r}")
    return int(raw)


def _cursor_of(row: dict[str, Any]) -> str:
    return f"{row['last_ns']}_{row['id']}"


def groups(store: Store, project: str, window: uq.TimeRange, group: str, limit: int = PAGE_SIZE,
           after: Optional[str] = None, before: Optional[str] = None) -> dict[str, Any]:  # fmt: skip
    """A page of the sessions (or users) with traces in the window, most recently active first: traces,
    first and last time, spans, tokens, cost, traces with an error; `next` / `prev` cursors (None at
    either end)."""
    if after and before:
        raise ConfigError("before", "ask for the page after a cursor or the page before one, not both")
    backwards = before is not None
    cursor = parse_cursor("before" if backwards else "after", before if backwards else after)
    params: dict[str, Any] = {**uq.bounds(project, window), "limit": limit + 1}
    condition = ""
    if cursor is not None:
        params["cursor_ns"], params["cursor_id"] = cursor
        # the list runs newest first, ids ascending among equal times; "before" walks it the other way
        newer, older = "(last_ns > {cursor_ns:Int64} OR (last_ns = {cursor_ns:Int64} AND id < {cursor_id:String}))", \
            "(last_ns < {cursor_ns:Int64} OR (last_ns = {cursor_ns:Int64} AND id > {cursor_id:String}))"  # fmt: skip
        condition = f"AND {newer if backwards else older}"
    sql = _GROUPS_SQL.replace("{traces}", _traces_sql(group, "", ""))  # one pass: every trace of the window
    sql = sql.replace("{cursor}", condition).replace("{newest}", "ASC" if backwards else "DESC")
    sql = sql.replace("{oldest}", "DESC" if backwards else "ASC")
    columns, rows = store.query_rows(sql, params)
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    if not found:
        following = preceding = None
    elif backwards:  # came back from a later page: there is one after; one before only if more were found
        following, preceding = _cursor_of(found[-1]), (_cursor_of(found[0]) if more else None)
    else:
        following, preceding = (_cursor_of(found[-1]) if more else None), (_cursor_of(found[0]) if cursor else None)
    for row in found:
        row.pop("last_ns", None)
    return {"project": project, "group": group, "range": window.label, "start": window.start.isoformat(),
            "end": window.end.isoformat(), "items": found, "next": following, "prev": preceding}  # fmt: skip


def member(store: Store, project: str, window: uq.TimeRange, group: str, member_id: str) -> dict[str, Any]:
    """One session's (user's) traces in the window in time order, with the root's input and output;
    NotFoundError naming the id when it has none."""
    chosen = "AND trace_id IN (SELECT DISTINCT trace_id FROM spans WHERE {window} AND {column} = {member:String})"
    sql = _traces_sql(group, chosen, _TEXT) + "ORDER BY started, trace_id LIMIT {limit:UInt32}"
    columns, rows = store.query_rows(sql, {**uq.bounds(project, window), "member": member_id,
                                           "limit": MAX_TRACES + 1})  # fmt: skip
    traces = [dict(zip(columns, row, strict=True)) for row in rows]
    if not traces:
        raise NotFoundError(
            f"no {group} {member_id!r} in project {project!r} from {window.start:%Y-%m-%d %H:%M} to "
            f"{window.end:%Y-%m-%d %H:%M} UTC"
        )
    shown = traces[:MAX_TRACES]
    known_tokens = [t["tokens"] for t in shown if t["tokens"] is not None]
    known_cost = [t["cost"] for t in shown if t["cost"] is not None]
    totals = {"traces": len(shown), "spans": sum(t["spans"] for t in shown),
              "errors": sum(1 for t in shown if t["errors"]), "tokens": sum(known_tokens) if known_tokens else None,
              "cost_usd": sum(known_cost) if known_cost else None, "first_time": shown[0]["started"],
              "last_time": max(t["ended"] for t in shown)}  # fmt: skip
    other = "user" if group == "session" else "session"
    related = sorted({t[f"trace_{other}"] for t in shown if t[f"trace_{other}"]})
    return {"project": project, "group": group, "id": member_id, "range": window.label, "traces": shown,
            "truncated": len(traces) > MAX_TRACES, "totals": totals, "related": related}  # fmt: skip


__all__ = ["GROUPS", "PAGE_SIZE", "groups", "member", "page_limit", "parse_cursor"]
