"""Named reads of run and artifact data: the SQL behind `th.runs`, `th.history`, artifacts and files.

Each read is bound to one project (`{p:String}`, set by the caller: the SDK's settings locally,
the key's project at the collector), so a project key may run them through `POST /api/v1/read`
while free SQL (`/api/v1/query`) stays admin-only. Same SQL in both places.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from tracehouse._errors import ConfigError, StoreError

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.store.store import Store

READS: dict[str, str] = {
    "runs": (
        "SELECT run_id, name, if(state = 'running' AND (heartbeat_at < now64(6) - toIntervalMillisecond({c:UInt64})"
        " OR (host = {h:String} AND has({dead:Array(String)}, toString(pid)))), 'crashed', state) AS state,"
        " tags, `group`, job_type, notes, entity, sweep_id, created_at, updated_at, heartbeat_at,"
        " config,"
        " summary FROM runs FINAL WHERE project = {p:String} ORDER BY created_at DESC"
    ),
    "run_projects": "SELECT DISTINCT project FROM runs FINAL WHERE run_id = {r:String} ORDER BY project",
    "run": (
        "SELECT name, state, config, summary, toUnixTimestamp64Nano(created_at) AS created_ns FROM runs FINAL "
        "WHERE project = {p:String} AND run_id = {r:String}"
    ),
    "run_last_step": (
        "SELECT max(step) AS last, count() AS n FROM (SELECT step FROM metrics WHERE project = {p:String} AND "
        "run_id = {r:String} UNION ALL SELECT step FROM run_values WHERE project = {p:String} AND run_id = {r:String})"
    ),
    "history": (
        "SELECT step, key, value, timestamp FROM metrics FINAL WHERE project = {p:String} AND run_id = {r:String} "
        "ORDER BY step"
    ),
    "history_page": (  # a step range of the numeric history; `keys` empty: every key
        "SELECT step, key, value, timestamp FROM metrics FINAL WHERE project = {p:String} AND run_id = {r:String} "
        "AND step >= {lo:Int64} AND step < {hi:Int64} "
        "AND (empty({keys:Array(String)}) OR has({keys:Array(String)}, key)) ORDER BY step"
    ),
    "values_page": (  # the same range of the other logged values (tables, media, text, ...)
        "SELECT step, key, value, timestamp FROM run_values FINAL WHERE project = {p:String} AND run_id = {r:String} "
        "AND step >= {lo:Int64} AND step < {hi:Int64} AND NOT startsWith(key, '_define_metric/') "
        "AND (empty({keys:Array(String)}) OR has({keys:Array(String)}, key)) ORDER BY step"
    ),
    "history_keys": (
        "SELECT step, key, value, timestamp FROM metrics FINAL WHERE project = {p:String} AND run_id = {r:String} "
        "AND key IN {keys:Array(String)} ORDER BY step"
    ),
    "run_files": (
        "SELECT path, blob, size, updated_at FROM run_files FINAL WHERE project = {p:String} AND run_id = {r:String} "
        "ORDER BY path"
    ),
    "run_artifacts": (
        "SELECT direction, concat(name, ':v', toString(version)) AS artifact FROM artifact_usage FINAL "
        "WHERE project = {p:String} AND run_id = {r:String} ORDER BY direction, artifact"
    ),
    "artifact_alias": (
        "SELECT version FROM artifact_aliases FINAL WHERE project = {p:String} AND name = {n:String} "
        "AND alias = {a:String}"
    ),
    "artifact_version": (
        "SELECT version, type, digest, description, metadata, run_id FROM artifacts FINAL "
        "WHERE project = {p:String} AND name = {n:String} AND version = {v:UInt32}"
    ),
    "artifact_by_digest": (
        "SELECT version FROM artifacts FINAL WHERE project = {p:String} AND name = {n:String} AND digest = {d:String}"
    ),
    "artifact_files": (
        "SELECT path, digest, size, ref FROM artifact_files FINAL WHERE project = {p:String} "
        "AND artifact_digest = {d:String} ORDER BY path"
    ),
    "artifact_version_aliases": (
        "SELECT alias FROM artifact_aliases FINAL WHERE project = {p:String} AND name = {n:String} "
        "AND version = {v:UInt32} ORDER BY alias"
    ),
    "artifact_summary": (
        "SELECT count() AS n, max(version) AS last, (SELECT groupArray(alias) FROM (SELECT DISTINCT alias FROM "
        "artifact_aliases FINAL WHERE project = {p:String} AND name = {n:String} ORDER BY alias)) AS aliases "
        "FROM artifacts FINAL WHERE project = {p:String} AND name = {n:String}"
    ),
    "artifact_lineage": (
        "SELECT direction, run_id, at FROM artifact_usage FINAL WHERE project = {p:String} AND name = {n:String} "
        "AND version = {v:UInt32} ORDER BY at"
    ),
    "artifacts": (
        "SELECT name, type, concat('v', toString(version)) AS version, file_count AS files, size, run_id, "
        "created_at, arrayStringConcat(arraySort(groupArray(alias)), ',') AS aliases FROM artifacts FINAL "
        "LEFT JOIN (SELECT name, alias, version FROM artifact_aliases FINAL WHERE project = {p:String}) AS a "
        "USING (name, version) WHERE project = {p:String} GROUP BY name, type, version, file_count, size, "
        "run_id, created_at ORDER BY name, version"
    ),
    "dataset_by_digest": (
        "SELECT version FROM datasets FINAL WHERE project = {p:String} AND name = {n:String} AND digest = {d:String}"
    ),
    "dataset_latest": (
        "SELECT version, digest FROM datasets FINAL WHERE project = {p:String} AND name = {n:String} "
        "ORDER BY version DESC LIMIT 1"
    ),
    "dataset_version": (
        "SELECT version, digest FROM datasets FINAL WHERE project = {p:String} AND name = {n:String} "
        "AND version = {v:UInt32}"
    ),
    "dataset_versions": (
        "SELECT version FROM datasets FINAL WHERE project = {p:String} AND name = {n:String} ORDER BY version"
    ),
    "dataset_rows": (
        "SELECT row FROM dataset_rows FINAL WHERE project = {p:String} AND digest = {d:String} ORDER BY row_index"
    ),
    "eval_scores": (
        "SELECT example, name, value, string_value, error FROM scores FINAL WHERE project = {p:String} "
        "AND run_id = {r:String} AND source = 'eval' ORDER BY example, name"
    ),
}


def flat_values(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Nested config and summary values as dotted columns; a logged object (a dict with `_type`:
    a table, histogram or image) stays one cell."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "_type" not in value and value:
            out.update(flat_values(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_sql(name: str) -> str:
    """The SQL of a named read; ConfigError naming the known ones otherwise."""
    try:
        return READS[name]
    except (KeyError, TypeError):
        raise ConfigError("read", f"unknown read {name!r}; known: {', '.join(sorted(READS))}") from None


_PLACEHOLDER_RE = re.compile(r"\{(\w+):([^}]+)\}")
_ADMIN_READS = frozenset({"run_projects"})  # reads across projects: admin keys (and local processes) only


def check_parameters(name: str, sql: str, parameters: Mapping[str, Any]) -> None:
    """ConfigError naming a parameter the read needs and did not get, or got as the wrong kind."""
    for key, type_name in dict(_PLACEHOLDER_RE.findall(sql)).items():
        if key == "p":
            continue
        if key not in parameters:
            raise ConfigError("parameters", f"read {name!r} needs {key!r} ({type_name})")
        value = parameters[key]
        if type_name.startswith("Array"):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif type_name.startswith(("UInt", "Int")):
            ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 or type_name[0] == "I")
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError("parameters", f"read {name!r}: {key!r} must be a {type_name}, got {value!r}")


def is_admin_read(name: str) -> bool:
    """Whether a read looks across projects (only admin keys may run it through a collector)."""
    return name in _ADMIN_READS


_RUNNING_HERE = (
    "SELECT DISTINCT pid FROM runs FINAL WHERE project = {p:String} AND state = 'running' AND host = {h:String}"
)


def dead_processes(store: Store, project: str) -> dict[str, Any]:
    """The `runs` read's `h` (this host) and `dead` (pids of this host's running runs that are gone)."""
    from tracehouse.collector.store.processes import dead_pids, this_host

    host = this_host()
    frame = store.query_df(_RUNNING_HERE, {"p": project, "h": host})
    return {"h": host, "dead": dead_pids(frame["pid"]) if not frame.empty else []}


def run_read(store: Store, name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """Run a named read for `project` (a `p` in `parameters` is overridden).

    An empty list of runs or artifacts for a project the store knows nothing of is a NotFoundError
    naming it, not an empty answer."""
    if not isinstance(parameters, Mapping):
        raise ConfigError("parameters", f"expected an object, got {parameters!r}")
    sql = read_sql(name)
    if name == "runs":
        parameters = {**parameters, **dead_processes(store, project)}
    check_parameters(name, sql, parameters)
    bound = {k: v for k, v in parameters.items() if k != "filters"}
    filters = parameters.get("filters")
    if name == "runs" and filters:
        from tracehouse.collector.store.run_filters import compile_filters

        condition, values = compile_filters(filters)
        sql, bound = f"SELECT * FROM ({sql}) WHERE {condition} ORDER BY created_at DESC", {**bound, **values}
    try:
        frame = store.query_df(sql, {**bound, "p": project})
    except StoreError as error:
        if filters and ("CANNOT_COMPILE_REGEXP" in str(error) or "Code: 427" in str(error)):
            raise ConfigError("filters", f"$regex is not an RE2 pattern: {error}") from None
        raise
    if frame.empty and name in ("runs", "artifacts"):
        from tracehouse.collector.store.queries import ensure_project

        ensure_project(store, project)
    return frame
