"""Reading: SQL and the common questions (recent traces, one trace's tree, latency by group).

Every read first writes this process's finished spans to the spool and ingests pending spool
segments (from every process) into the store, so what was traced is what is read. The reads run
where the store is: here when this process owns it, at its owner when another process does (see
`tracing/reads/owner.py`), at the collector when an endpoint is set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, TypeVar, Union, cast

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.queries import UNSET, Instant, Since, Unset, build_tree
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.ingest.spool_ingest import IngestReport
    from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")
__all__ = ["build_tree", "get_store", "latency", "query", "sync", "trace_tree", "traces"]
T = TypeVar("T")
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MEMORY = 4 * 1024**3


def get_store() -> Store:
    """This process's store for the current settings (opened, and migrated, on first use).

    StoreError when another process holds the embedded store: reads go through that process then.
    """
    from tracehouse.reads.owner import local_store

    if runtime.config_error is not None:  # tracing went quiet on a bad variable; reads say why
        raise runtime.config_error
    return local_store(runtime.settings)


def _run(operation: Callable[[Any], T]) -> T:
    """`operation(access)` against the collector when an endpoint is set, else the store or its owner."""
    if runtime.config_error is not None:
        raise runtime.config_error
    if runtime.settings.endpoint:
        from tracehouse.reads.remote import RemoteAccess

        return operation(RemoteAccess())
    from tracehouse.reads.owner import with_access

    return with_access(operation)


def on_store(operation: Callable[[Any], T]) -> T:
    """Run `operation(access)` where the store is: the collector (an endpoint is set), this process's store
    or its owner; `access` has the operations of `collector/owner/access.StoreAccess`."""
    return _run(operation)


def catch_up() -> IngestReport:
    """Flush this process's records and deliver every pending spool segment (not offline runs'): to
    the collector when an endpoint is set, else into the store (here or at its owner)."""
    from tracehouse.collector.ingest.spool_ingest import IngestReport

    done = _run(lambda access: access.catch_up())
    return IngestReport(done.rows, done.segments_done, done.rejected, list(done.problems or []),
                        damaged_bytes=done.damaged_bytes, set_aside=done.set_aside)  # fmt: skip


def sync(quarantine: bool = False) -> IngestReport:
    """`tracehouse sync`: deliver everything left in the spool, and the records of offline runs.

    With `quarantine`, segments set aside in the spool's `quarantine/` (damaged, or refused by the
    collector) are read again first: what they hold that was not stored yet is delivered, damage
    skipped; `report.requeued` counts them."""
    requeued = _requeue_quarantine() if quarantine else 0
    report = catch_up()
    report.requeued += requeued
    offline = runtime.settings.offline_spool_dir
    if offline.is_dir() and any(offline.iterdir()):
        settings = runtime.settings
        if settings.endpoint and not settings.blob_url:  # offline runs kept their blobs here
            from tracehouse.tracking.blobs import blob_store, push_local_blobs

            push_local_blobs(blob_store())
        report.merge(_run(lambda access: _ingest_dir(access, offline)))
    return report


def sync_dir(directory: Path, quarantine: bool = False) -> IngestReport:
    """`tracehouse sync DIR`: deliver another data dir's spool and offline runs (with their blobs), or
    a spool directory's segments, to this process's store or collector."""
    from tracehouse.collector.ingest.quarantine import requeue_quarantine
    from tracehouse.collector.ingest.spool_ingest import IngestReport

    settings = runtime.settings
    if directory.resolve() == settings.data_dir.resolve():
        return sync(quarantine=quarantine)
    data_dir = (directory / "spool").is_dir() or (directory / "offline-spool").is_dir()
    if data_dir and (directory / "blobs").is_dir() and not settings.blob_url:
        from tracehouse.tracking.blobs import blob_store, push_local_blobs

        push_local_blobs(blob_store(), directory)
    report = IngestReport()
    for spool_dir in (directory / "spool", directory / "offline-spool") if data_dir else (directory,):
        if not spool_dir.is_dir():
            continue
        if quarantine:
            report.requeued += len(requeue_quarantine(spool_dir).requeued)
        report.merge(_run(_ingester(spool_dir)))
    return report


def _ingester(spool_dir: Path) -> Callable[[Any], IngestReport]:
    return lambda access: _ingest_dir(access, spool_dir)


def _requeue_quarantine() -> int:
    from tracehouse.collector.ingest.quarantine import requeue_quarantine

    settings = runtime.settings
    count = 0
    for spool_dir in (settings.spool_dir, settings.offline_spool_dir):
        done = requeue_quarantine(spool_dir)
        count += len(done.requeued)
        for name in done.kept:
            logger.info("tracehouse: %s/quarantine/%s is read to its end already; kept for inspection", spool_dir, name)
    return count


def _ingest_dir(access: Any, spool_dir: Any) -> IngestReport:
    if hasattr(access, "ingest_dir"):
        return cast("IngestReport", access.ingest_dir(spool_dir))
    from tracehouse.collector.ingest.spool_ingest import SpoolIngester

    return SpoolIngester(access.store).ingest(spool_dir)


def _project(project: Optional[str]) -> str:
    return runtime.settings.project if project is None else q.check_project(project)


def query(
    sql: str,
    parameters: Optional[Mapping[str, Any]] = None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout: float = DEFAULT_TIMEOUT,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY,
) -> pd.DataFrame:
    """Run one read-only SQL statement against the store and return a DataFrame.

    Bind values with ClickHouse parameters: ``th.query("SELECT * FROM spans WHERE name = {n:String}",
    {"n": "generate"})``. Tables: spans, runs, metrics, scores, otel_traces, ... One SELECT, WITH,
    SHOW, DESCRIBE or EXPLAIN; nothing that writes, changes settings or reaches files, the network
    or processes. A result over `max_rows` rows, a query past `timeout` seconds or over
    `max_memory_bytes` raises ConfigError saying which limit it hit.
    """
    from tracehouse.collector.store.readonly import QueryLimits
    from tracehouse.collector.store.sql_guard import check_readonly_sql

    if parameters is not None and not isinstance(parameters, Mapping):
        raise ConfigError("parameters", f"expected a dict of parameter values, got {type(parameters).__name__}")
    check_readonly_sql(sql)  # refused before any I/O
    limits = QueryLimits(max_rows=max_rows, timeout=timeout, max_memory_bytes=max_memory_bytes).checked()
    bounds = {"max_rows": limits.max_rows, "timeout": limits.timeout, "max_memory_bytes": limits.max_memory_bytes}
    return cast("pd.DataFrame", _run(lambda access: access.query(sql, dict(parameters or {}), **bounds)))


def read(name: str, parameters: Mapping[str, Any], project: Optional[str] = None) -> pd.DataFrame:
    """A named read (see collector/store/reads.py) bound to `project`: the SQL behind runs, history,
    artifacts and files. Through the collector it needs only a key of that project."""
    from tracehouse.collector.store.reads import read_sql

    read_sql(name)  # an unknown name fails before any I/O
    bound = _project(project)
    return cast("pd.DataFrame", _run(lambda access: access.read(name, bound, dict(parameters))))


def traces(
    limit: int = 20,
    since: Union[Since, Unset] = UNSET,
    project: Optional[str] = None,
    name: Optional[str] = None,
    status: Optional[str] = None,
    start: Optional[Instant] = None,
    end: Optional[Instant] = None,
) -> pd.DataFrame:
    """Recent traces, newest first: root name, duration, span count, status, tokens, cost, previews.

    The window is `since` (a duration such as '15m', '1h', '7d', a timedelta or a time; default the
    last 24h; None: all time) or `start` / `end` (datetimes, ISO 8601 times or epoch milliseconds;
    no `end`: up to now)."""
    project = _project(project)
    window = q.resolve(since, start, end, default_since="24h")  # bad arguments fail before any I/O
    q.check_traces_args(limit, status)
    return cast(
        "pd.DataFrame",
        _run(
            lambda access: access.traces(project, limit, name=name, status=status, start=window.start, end=window.end)
        ),
    )


def trace_tree(trace_id: str, project: Optional[str] = None) -> dict[str, Any]:
    """The spans of one trace as a nested dict: each span's fields plus `children`, in start order.

    A trace whose root span is missing (still running, or from another service) has a synthetic
    root named "(trace)" holding the spans whose parent is not in the store.
    """
    project = _project(project)
    if not isinstance(trace_id, str) or not q.TRACE_ID_RE.match(trace_id):
        raise ConfigError("trace_id", f"expected 32 lowercase hex digits, got {trace_id!r}")
    return _run(lambda access: access.trace_tree(project, trace_id))


def latency(
    by: str = "name",
    since: Union[Since, Unset] = UNSET,
    project: Optional[str] = None,
    start: Optional[Instant] = None,
    end: Optional[Instant] = None,
) -> pd.DataFrame:
    """Per group: count, p50/p95/p99 latency (ms), error rate, tokens and cost, slowest p95 first.

    The window is `since` (default the last hour; None: all time) or `start` / `end`, as for `traces`."""
    project = _project(project)
    if by not in q.LATENCY_GROUPS:
        raise ConfigError("by", f"expected one of {', '.join(q.LATENCY_GROUPS)}, got {by!r}")
    window = q.resolve(since, start, end, default_since="1h")
    return cast("pd.DataFrame", _run(lambda access: access.latency(project, by, start=window.start, end=window.end)))


def api_keys(action: str, **args: Any) -> Any:
    """API keys where the store is (`tracehouse keys`): create, list, revoke."""
    return _run(lambda access: access.keys(action, args))


def sweep_call(method: str, args: list[Any]) -> Any:
    """A call on the sweep controller of the store (here or at its owner)."""
    from tracehouse.reads.owner import with_access

    return with_access(lambda access: access.sweep(method, args))


def runs(
    project: Optional[str] = None, filters: Optional[Mapping[str, Any]] = None, crashed_after: float = 120.0
) -> pd.DataFrame:
    """The project's runs, newest first: id, name, state, tags, group, job type, times, and one
    `config.<key>` / `summary.<key>` column per key, each value as it was logged (an int stays an int
    when another run lacks the key or holds a float; a run without the key has None). A `running`
    run whose heartbeat (every 30 s) is older than `crashed_after` seconds shows as `crashed`: its
    process died without finishing.

    `filters` takes W&B's MongoDB-style filters: `{"state": "finished", "config.lr": {"$lt": 0.01},
    "summary.loss": {"$lte": 0.2}, "tags": {"$in": ["baseline"]}, "$or": [...]}`, run by the store
    (`$regex` is RE2; see collector/store/run_filters.py).
    """
    import json

    import pandas as pd

    from tracehouse.collector.store.reads import flat_values
    from tracehouse.collector.store.run_filters import check_filters

    parameters: dict[str, Any] = {"c": int(max(0.0, crashed_after) * 1000)}
    if filters is not None:
        check_filters(filters)  # before any I/O
        parameters["filters"] = dict(filters)
    frame = read("runs", parameters, project)
    if frame.empty:
        return cast("pd.DataFrame", frame.drop(columns=[c for c in ("config", "summary") if c in frame.columns]))
    parts = [frame.drop(columns=["config", "summary"])]
    for column in ("config", "summary"):
        flat = [flat_values(json.loads(text or "{}"), f"{column}.") for text in frame[column]]
        parts.append(_value_columns(flat, frame.index))
    return cast("pd.DataFrame", pd.concat(parts, axis=1).reset_index(drop=True))


_NATIVE = (int, float, bool, str)  # what a column of one kind, in every run, keeps as its pandas dtype


def _value_columns(rows: list[dict[str, Any]], index: Any) -> pd.DataFrame:
    """One column per dotted key of the runs' values (`rows`, one dict per run), each value as it was
    logged. A key every run has, with values of one type (all int, all float, all bool or all str),
    keeps that type's dtype; any other key is an object column of the logged values with None where a
    run lacks it: pandas alone would read `2` back as `2.0` (and a missing key as NaN) as soon as
    one run lacks the key or holds a float there."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for key in dict.fromkeys(k for row in rows for k in row):  # first-seen order, as the runs hold them
        cells = [row.get(key) for row in rows]
        kinds = {type(cell) for cell in cells}
        native = len(kinds) == 1 and kinds <= set(_NATIVE)  # a run without the key adds NoneType
        columns[key] = pd.Series(cells, index=index, dtype=None if native else object)
    return cast("pd.DataFrame", pd.DataFrame(columns, index=index))


def run_project(run_id: str, project: Optional[str] = None) -> str:
    """The project of run `run_id`: `project` (or this process's) when the run is there, else the one
    project that has a run of that id. NotFoundError naming the id when no project has it; ConfigError
    when several do (then pass `project=`)."""
    bound = _project(project)
    if not read("run", {"r": run_id}, bound).empty:
        return bound
    if project is not None:
        raise NotFoundError(f"no run {run_id!r} in project {bound!r}")
    from tracehouse._errors import StoreError

    try:
        projects = read("run_projects", {"r": run_id}, bound)
        found = [str(p) for p in projects["project"]] if "project" in projects.columns else []
    except StoreError:  # a collector key of one project may not look across projects
        found = []
    if len(found) > 1:
        raise ConfigError("project", f"run {run_id!r} is in projects {', '.join(found)}: pass project=")
    if not found:
        raise NotFoundError(f"no run {run_id!r} in project {bound!r} or any other")
    return found[0]


def history(run_id: str, keys: Optional[list[str]] = None, project: Optional[str] = None) -> pd.DataFrame:
    """A run's logged metrics, one row per step (`_step`, `_timestamp`, then one column per key).

    Without `project`, a run of another project is found by its id (when only one project has it);
    an id no project has is a NotFoundError."""
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError("run_id", f"expected a run id, got {run_id!r}")
    if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str) for k in keys)):
        raise ConfigError("keys", f"expected a list of metric names, got {keys!r}")

    def logged(where: Optional[str]) -> pd.DataFrame:
        if keys:
            return read("history_keys", {"r": run_id, "keys": list(keys)}, where)
        return read("history", {"r": run_id}, where)

    frame = logged(project)
    if frame.empty:
        found = run_project(run_id, project)
        if found != _project(project):
            frame = logged(found)
    if frame.empty:
        import pandas as pd

        return cast("pd.DataFrame", pd.DataFrame({"_step": pd.Series([], dtype="int64")}))
    wide = frame.pivot_table(index="step", columns="key", values="value", aggfunc="last")
    times = frame.groupby("step")["timestamp"].max()
    wide.insert(0, "_timestamp", times)
    wide = wide.reset_index().rename(columns={"step": "_step"})
    wide.columns.name = None
    return cast("pd.DataFrame", wide)
