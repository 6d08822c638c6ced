"""What the owner of a store does for the other processes on it: one table of operations, two doors.

The owner (`tracehouse serve` / `ui`, or an SDK process that opened the embedded store) answers
`POST /api/v1/owner` `{"op": ..., "database": ..., "args": {...}}` for the processes of its data dir,
authenticated by the per-start secret of its advertisement (see `collector/owner/ownership.py`). The collector's
FastAPI app and the SDK's small standard-library server (`collector/owner/server.py`) both hand the request to
`dispatch`, so an operation behaves the same whoever owns the store; the SDK calls the same
`StoreAccess` methods in-process when it owns the store itself.

DataFrames travel as `{"columns", "dtypes", "rows"}` (`encode_frame` / `decode_frame`), so a
datetime or an integer column reads back as what it was.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import orjson

from tracehouse._errors import ConfigError, ConflictError, NotFoundError, StoreError, TracehouseError
from tracehouse.collector.store import queries as q
from tracehouse.collector.store.readonly import DEFAULT_LIMITS, QueryLimits
from tracehouse.collector.store.reads import run_read

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.store.keys import KeyStore
    from tracehouse.collector.store.store import Store
    from tracehouse.collector.sweeps.controller import SweepController

SWEEP_METHODS = ("create", "next_trial", "heartbeat", "control", "status")
KEY_ACTIONS = ("create", "list", "revoke")
MAX_OWNER_BODY = 8 * 1024 * 1024  # an operation's JSON (records travel through /api/v1/records)


@dataclass
class CatchUpReport:
    """What a catch-up with the spool did (an IngestReport's counts, JSON-able)."""

    rows: int = 0
    segments_done: int = 0
    rejected: int = 0
    problems: Optional[list[str]] = None
    damaged_bytes: int = 0  # unreadable spool bytes skipped
    set_aside: int = 0  # ranges refused for good, moved to quarantine/


_REPORT_FIELDS = frozenset(f.name for f in fields(CatchUpReport))  # an owner of another version may send more


class StoreAccess:
    """The operations on one store that an owner runs for itself and for the processes it serves.

    `catch_up` ingests what is pending (the owner's spool) before a read; `sweeps` and `keys` give
    the store's one sweep controller and key store.
    """

    def __init__(
        self,
        store: Store,
        catch_up: Callable[[], CatchUpReport],
        sweeps: Callable[[], SweepController],
        keys: Callable[[], KeyStore],
        default_limits: QueryLimits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self._catch_up = catch_up
        self._sweeps = sweeps
        self._keys = keys
        self.default_limits = default_limits
        self._sweep_lock = threading.Lock()  # an agent's heartbeat thread and its loop take turns

    def catch_up(self) -> CatchUpReport:
        """Ingest what is pending; what it did."""
        return self._catch_up()

    def query(self, sql: str, parameters: Optional[Mapping[str, Any]] = None, **limits: Any) -> pd.DataFrame:
        """Untrusted SQL, read-only and bounded (see `collector/store/readonly.py`)."""
        chosen = QueryLimits(**{**asdict(self.default_limits), **{k: v for k, v in limits.items() if v is not None}})
        self._catch_up()
        return self.store.query_readonly_df(sql, parameters, chosen)

    def read(self, name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
        """A named read bound to `project`."""
        self._catch_up()
        return run_read(self.store, name, q.check_project(project), parameters)

    def traces(self, project: str, limit: int = 20, since: Any = q.UNSET, name: Optional[str] = None,
               status: Optional[str] = None, start: Any = None, end: Any = None) -> pd.DataFrame:  # fmt: skip
        """Recent traces in a window: `since` (default 24h) or `start` / `end`."""
        self._catch_up()
        return q.traces(self.store, project, limit=limit, since=since, name=name, status=status, start=start, end=end)

    def trace_tree(self, project: str, trace_id: str) -> dict[str, Any]:
        """One trace's tree."""
        self._catch_up()
        return q.trace_tree(self.store, project, trace_id)

    def latency(self, project: str, by: str = "name", since: Any = q.UNSET, start: Any = None,
                end: Any = None) -> pd.DataFrame:  # fmt: skip
        """Latency per group in a window: `since` (default 1h) or `start` / `end`."""
        self._catch_up()
        return q.latency(self.store, project, by=by, since=since, start=start, end=end)

    def sweep(self, method: str, args: list[Any]) -> Any:
        """A call on the store's sweep controller (`create`, `next_trial`, `heartbeat`, `control`, `status`)."""
        if method not in SWEEP_METHODS or not isinstance(args, list):
            raise ConfigError("method", f"expected one of {', '.join(SWEEP_METHODS)} with a list of arguments")
        with self._sweep_lock:
            self._catch_up()  # finished trials' runs and metrics count
            return getattr(self._sweeps(), method)(*args)

    def keys(self, action: str, args: Mapping[str, Any]) -> Any:
        """API keys: `create` {project, name}, `list`, `revoke` {key_id}."""
        keys = self._keys()
        if action == "create":
            project = args.get("project")
            key_id, key = keys.create(project if project else None, str(args.get("name") or ""))
            return {"key_id": key_id, "key": key, "project": project or None, "admin": not project}
        if action == "list":
            return {"keys": keys.list()}
        if action == "revoke":
            key_id = str(args.get("key_id") or "")
            if not keys.revoke(key_id):
                raise NotFoundError(f"no key {key_id!r}")
            return {"revoked": key_id}
        raise ConfigError("action", f"expected one of {', '.join(KEY_ACTIONS)}, got {action!r}")

    def reports(self, action: str, args: Mapping[str, Any]) -> Any:
        """Reports (collector/ui/reports_store.py): `list` {project}, `get` {project, report_id, version},
        `create` {project, body, author}, `update` {project, report_id, body, author, base_version},
        `delete` {project, report_id, author}, `versions` {project, report_id}."""
        from tracehouse.collector.ui import reports_store as rs

        project = q.check_project(str(args.get("project") or ""))
        report_id, author = str(args.get("report_id") or ""), str(args.get("author") or "python")
        if action == "list":
            return rs.listing(self.store, project)
        if action == "create":
            return rs.create(self.store, project, args.get("body"), author)
        if action not in REPORT_ACTIONS:
            raise ConfigError("action", f"expected one of {', '.join(REPORT_ACTIONS)}, got {action!r}")
        rs.get(self.store, report_id, project)  # NotFoundError naming it, before anything else
        if action == "get":
            version = args.get("version")
            return rs.get(self.store, report_id, project, None if version is None else int(version))
        if action == "update":
            return rs.update(self.store, project, report_id, args.get("body"), author, args.get("base_version"))
        if action == "delete":
            return rs.delete(self.store, project, report_id, author)
        return rs.versions(self.store, project, report_id)


REPORT_ACTIONS = ("list", "get", "create", "update", "delete", "versions")


def json_default(value: Any) -> Any:
    """orjson's fallback: datetimes as ISO text, numpy values as Python ones, the rest as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(value)


def dumps(value: Any) -> bytes:
    """JSON bytes for an answer (NaN as null, numpy and datetimes handled)."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as {"columns", "dtypes", "rows"} with NULLs as null."""
    records = frame.astype(object).where(frame.notna(), None)
    return {
        "columns": [str(c) for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "rows": records.values.tolist(),
    }


_TIME_COLUMNS = ("start_time", "end_time", "timestamp", "created_at", "updated_at", "heartbeat_at", "at")


def decode_frame(answer: Mapping[str, Any]) -> pd.DataFrame:
    """The DataFrame `encode_frame` sent, its column types restored (time columns by name for an
    answer without dtypes)."""
    import pandas as pd

    columns = list(answer.get("columns") or [])
    frame: pd.DataFrame = pd.DataFrame(answer.get("rows") or [], columns=columns)
    dtypes = answer.get("dtypes")
    if not isinstance(dtypes, list) or len(dtypes) != len(columns):
        dtypes = ["datetime64[ns, UTC]" if c in _TIME_COLUMNS else "" for c in columns]
    for column, dtype in zip(columns, dtypes, strict=True):
        frame[column] = _restore(frame[column], str(dtype))
    return frame


def _restore(series: Any, dtype: str) -> Any:
    import pandas as pd

    if not dtype or dtype == "object":
        return series
    try:
        if dtype.startswith("datetime64"):
            parsed = pd.to_datetime(series, utc=True, format="ISO8601")
            return parsed.astype(dtype) if "UTC" in dtype or "," in dtype else parsed.dt.tz_localize(None)
        return series.astype(dtype)
    except (ValueError, TypeError, OverflowError):
        return series  # NULLs in an integer column, say: keep what came


def encode_result(value: Any) -> Any:
    """An operation's result as JSON-able data (frames encoded)."""
    if hasattr(value, "to_dict") and hasattr(value, "dtypes"):
        return {"frame": encode_frame(value)}
    if isinstance(value, CatchUpReport):
        return {"report": asdict(value)}
    return {"value": value}


def decode_result(answer: Mapping[str, Any]) -> Any:
    """The value `encode_result` sent."""
    if "frame" in answer:
        return decode_frame(answer["frame"])
    if "report" in answer:
        return CatchUpReport(**{k: v for k, v in answer["report"].items() if k in _REPORT_FIELDS})
    return answer.get("value")


OPERATIONS = ("ping", "query", "read", "traces", "trace_tree", "latency", "sweep", "keys", "reports", "catch_up")


def parse_request(body: bytes) -> tuple[str, str, dict[str, Any]]:
    """(op, database, args) of an owner request; ConfigError for anything else."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ConfigError("body", 'expected JSON: {"op": "...", "database": "...", "args": {...}}') from None
    if not isinstance(payload, dict) or not isinstance(payload.get("op"), str):
        raise ConfigError("body", 'expected {"op": "...", "database": "...", "args": {...}}')
    args = payload.get("args") or {}
    database = payload.get("database") or ""
    if not isinstance(args, dict) or not isinstance(database, str):
        raise ConfigError("body", "args must be an object and database a string")
    return payload["op"], database, args


def dispatch(access: StoreAccess, op: str, args: dict[str, Any], info: Mapping[str, Any]) -> tuple[int, bytes]:
    """Run one operation; (HTTP status, JSON body). Errors map as at every edge: 400 bad input, 404
    unknown ids, 503 store trouble."""
    try:
        if op == "ping":
            result: Any = dict(info)
        elif op in OPERATIONS:
            result = getattr(access, op)(**args)
        else:
            raise ConfigError("op", f"expected one of {', '.join(OPERATIONS)}, got {op!r}")
        return 200, dumps(encode_result(result))
    except TypeError as error:  # missing or unexpected arguments
        return 400, dumps({"error": f"args: {error}"})
    except ConfigError as error:
        return 400, dumps({"error": str(error), "option": error.option, "problem": error.problem})
    except NotFoundError as error:
        return 404, dumps({"error": str(error)})
    except StoreError as error:
        return 503, dumps({"error": str(error)})
    except ConflictError as error:
        return 409, dumps({"error": str(error)})
    except TracehouseError as error:
        return 400, dumps({"error": str(error)})


__all__ = [
    "CatchUpReport", "StoreAccess", "decode_frame", "decode_result", "dispatch", "dumps", "encode_frame",
    "encode_result", "parse_request",
]  # fmt: skip
