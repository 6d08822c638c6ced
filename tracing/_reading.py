"""Reading: SQL and the common questions (recent traces, one trace's tree, latency by group).

Every read first writes this process's finished spans to the spool and ingests pending spool
segments (from every process) into the store, so what was traced is what is read.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Mapping, Optional, cast

from tracehouse.collector import _queries as q
from tracehouse.collector._queries import Since, build_tree

from ._errors import ConfigError
from ._runtime import runtime

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector._store import Store
    from tracehouse.exporters._ingest import IngestReport

__all__ = ["build_tree", "get_store", "latency", "query", "sync", "trace_tree", "traces"]

_store: Optional[Store] = None
_store_key: Optional[tuple[str, str]] = None
_store_lock = threading.Lock()


def get_store() -> Store:
    """The store for the current settings (opened, and migrated, on first use)."""
    global _store, _store_key
    settings = runtime.settings
    if runtime.config_error is not None:  # tracing went quiet on a bad variable; reads say why
        raise runtime.config_error
    key = (settings.store_url, settings.database)
    with _store_lock:
        if _store is None or _store_key != key:
            from tracehouse.collector._store import Store

            if _store is not None:
                _store.close()
                _store = None
            _store, _store_key = Store(settings.store_url, settings.database), key
        return _store


def _destination_ingester() -> Any:
    from tracehouse.exporters._ingest import SpoolIngester

    if runtime.settings.endpoint:
        from tracehouse.exporters._sender import CollectorDestination

        from . import _remote

        return SpoolIngester(CollectorDestination(_remote.client()), max_bytes_per_insert=8 * 1024 * 1024)
    return SpoolIngester(get_store())


def catch_up() -> IngestReport:
    """Flush this process's records and deliver every pending spool segment (not offline runs'): to
    the collector when an endpoint is set, else into the store. Every read does this first."""
    runtime.flush()
    return cast("IngestReport", _destination_ingester().ingest(runtime.settings.spool_dir))


def sync() -> IngestReport:
    """`tracehouse sync`: deliver everything left in the spool, and the records of offline runs."""
    report = catch_up()
    offline = runtime.settings.offline_spool_dir
    if offline.is_dir() and any(offline.iterdir()):
        settings = runtime.settings
        if settings.endpoint and not settings.blob_url:  # offline runs kept their blobs here
            from ._blobs import blob_store, push_local_blobs

            push_local_blobs(blob_store())
        report.merge(_destination_ingester().ingest(offline))
    return report


def _remote_reads() -> bool:
    return bool(runtime.settings.endpoint)


def _project(project: Optional[str]) -> str:
    return runtime.settings.project if project is None else q.check_project(project)


def query(sql: str, parameters: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
    """Run SQL against the store and return a DataFrame.

    Bind values with ClickHouse parameters: ``th.query("SELECT * FROM spans WHERE name = {n:String}",
    {"n": "generate"})``. Tables: spans, runs, metrics, scores, otel_traces.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigError("sql", "expected a SQL statement")
    catch_up()
    if _remote_reads():
        from . import _remote

        return _remote.query(sql, parameters)
    return get_store().query_df(sql, parameters)


def read(name: str, parameters: Mapping[str, Any], project: Optional[str] = None) -> pd.DataFrame:
    """A named read (see collector/_reads.py) bound to `project`: the SQL behind runs, history,
    artifacts and files. Through the collector it needs only a key of that project."""
    from tracehouse.collector._reads import read_sql, run_read

    read_sql(name)  # an unknown name fails before any I/O
    bound = _project(project)
    catch_up()
    if _remote_reads():
        from . import _remote

        return _remote.read(name, bound, parameters)
    return run_read(get_store(), name, bound, parameters)


def traces(
    limit: int = 20,
    since: Since = "24h",
    project: Optional[str] = None,
    name: Optional[str] = None,
    status: Optional[str] = None,
) -> pd.DataFrame:
    """Recent traces, newest first: root name, duration, span count, status, tokens, cost, previews."""
    project = _project(project)
    q.since_start(since)  # bad arguments fail before any I/O
    catch_up()
    if _remote_reads():
        from . import _remote

        return _remote.traces(project, limit, since, name, status)
    return q.traces(get_store(), project, limit=limit, since=since, name=name, status=status)


def trace_tree(trace_id: str, project: Optional[str] = None) -> dict[str, Any]:
    """The spans of one trace as a nested dict: each span's fields plus `children`, in start order.

    A trace whose root span is missing (still running, or from another service) has a synthetic
    root named "(trace)" holding the spans whose parent is not in the store.
    """
    project = _project(project)
    if not isinstance(trace_id, str) or not q.TRACE_ID_RE.match(trace_id):
        raise ConfigError("trace_id", f"expected 32 lowercase hex digits, got {trace_id!r}")
    catch_up()
    if _remote_reads():
        from . import _remote

        return _remote.trace_tree(project, trace_id)
    return q.trace_tree(get_store(), project, trace_id)


def latency(by: str = "name", since: Since = "1h", project: Optional[str] = None) -> pd.DataFrame:
    """Per group: count, p50/p95/p99 latency (ms), error rate, tokens and cost, slowest p95 first."""
    project = _project(project)
    if by not in q.LATENCY_GROUPS:
        raise ConfigError("by", f"expected one of {', '.join(q.LATENCY_GROUPS)}, got {by!r}")
    q.since_start(since)
    catch_up()
    if _remote_reads():
        from . import _remote

        return _remote.latency(project, by, since)
    return q.latency(get_store(), project, by=by, since=since)


def runs(
    project: Optional[str] = None, filters: Optional[Mapping[str, Any]] = None, crashed_after: float = 120.0
) -> pd.DataFrame:
    """The project's runs, newest first: id, name, state, tags, group, job type, times, and one
    `config.<key>` / `summary.<key>` column per key. A `running` run whose heartbeat (every 30 s)
    is older than `crashed_after` seconds shows as `crashed`: its process died without finishing.

    `filters` takes W&B's MongoDB-style filters: `{"state": "finished", "config.lr": {"$lt": 0.01},
    "summary.loss": {"$lte": 0.2}, "tags": {"$in": ["baseline"]}, "$or": [...]}`.
    """
    import json

    import pandas as pd

    from tracehouse.collector._reads import flat_values

    from ._run_filters import apply_filters, check_filters

    if filters is not None:
        check_filters(filters)

    frame = read("runs", {"c": int(max(0.0, crashed_after) * 1000)}, project)
    if frame.empty:
        return cast("pd.DataFrame", frame.drop(columns=[c for c in ("config", "summary") if c in frame.columns]))
    parts = [frame.drop(columns=["config", "summary"])]
    for column in ("config", "summary"):
        flat = [flat_values(json.loads(text or "{}"), f"{column}.") for text in frame[column]]
        parts.append(pd.DataFrame(flat, index=frame.index))
    table = cast("pd.DataFrame", pd.concat(parts, axis=1))
    return apply_filters(table, filters) if filters else table


def history(run_id: str, keys: Optional[list[str]] = None, project: Optional[str] = None) -> pd.DataFrame:
    """A run's logged metrics, one row per step (`_step`, `_timestamp`, then one column per key)."""
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError("run_id", f"expected a run id, got {run_id!r}")
    if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str) for k in keys)):
        raise ConfigError("keys", f"expected a list of metric names, got {keys!r}")
    frame = (
        read("history_keys", {"r": run_id, "keys": list(keys)}, project)
        if keys
        else read("history", {"r": run_id}, project)
    )
    if frame.empty:
        import pandas as pd

        return cast("pd.DataFrame", pd.DataFrame({"_step": pd.Series([], dtype="int64")}))
    wide = frame.pivot_table(index="step", columns="key", values="value", aggfunc="last")
    times = frame.groupby("step")["timestamp"].max()
    wide.insert(0, "_timestamp", times)
    wide = wide.reset_index().rename(columns={"step": "_step"})
    wide.columns.name = None
    return cast("pd.DataFrame", wide)


def _reset_after_fork() -> None:
    global _store, _store_key, _store_lock
    _store, _store_key, _store_lock = None, None, threading.Lock()  # the parent's engine is not the child's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
