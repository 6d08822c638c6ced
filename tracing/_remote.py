"""Reads through a collector's REST API, used when an endpoint is configured."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Mapping, Optional
from urllib.parse import quote, urlencode

import orjson

from ._errors import ConfigError, NotFoundError, StoreError
from ._runtime import runtime

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.exporters._sender import CollectorClient

_clients: dict[tuple[str, Optional[str]], CollectorClient] = {}
_lock = threading.Lock()
_TIME_COLUMNS = ("start_time", "end_time", "timestamp", "created_at", "updated_at")


def client() -> CollectorClient:
    """The client for the configured endpoint and key."""
    from tracehouse.exporters._sender import CollectorClient

    settings = runtime.settings
    assert settings.endpoint is not None
    key = (settings.endpoint, settings.api_key)
    with _lock:
        if key not in _clients:
            _clients[key] = CollectorClient(settings.endpoint, settings.api_key)
        return _clients[key]


def _call(method: str, path: str, body: Optional[bytes] = None) -> Any:
    from tracehouse.exporters._sender import SendError

    try:
        return client().request(method, path, body)
    except SendError as error:
        if error.status == 400:
            option, _, problem = error.reason.partition(": ")
            raise (
                ConfigError(option, problem) if problem and " " not in option else StoreError(error.reason)
            ) from None
        if error.status == 404:
            raise NotFoundError(error.reason) from None
        raise StoreError(str(error)) from None


def call_json(method: str, path: str, payload: Optional[Mapping[str, Any]] = None) -> Any:
    """A JSON request to the collector, errors mapped as for reads."""
    return _call(method, path, orjson.dumps(payload) if payload is not None else None)


def _frame(answer: Mapping[str, Any]) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(answer["rows"], columns=answer["columns"])
    for column in _TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column])
    return frame


def _since(since: Any) -> Any:
    if isinstance(since, timedelta):
        return f"{since.total_seconds()}s"
    if isinstance(since, datetime):
        return since.isoformat()
    return since


def _get(path: str, **params: Any) -> Any:
    params["since"] = _since(params.get("since"))
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return _call("GET", f"{path}?{query}" if query else path)


def query(sql: str, parameters: Optional[Mapping[str, Any]]) -> pd.DataFrame:
    """SQL through the collector (read-only there)."""
    body = orjson.dumps({"sql": sql, "parameters": dict(parameters or {})}, default=str)
    return _frame(_call("POST", "/api/v1/query", body))


def read(name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """A named read through the collector (a key of `project` is enough)."""
    body = orjson.dumps({"name": name, "project": project, "parameters": dict(parameters)}, default=str)
    return _frame(_call("POST", "/api/v1/read", body))


def traces(project: str, limit: int, since: Any, name: Optional[str], status: Optional[str]) -> pd.DataFrame:
    """Recent traces through the collector."""
    return _frame(_get("/api/v1/traces", project=project, limit=limit, since=since, name=name, status=status))


def trace_tree(project: str, trace_id: str) -> dict[str, Any]:
    """One trace's tree through the collector."""
    tree: dict[str, Any] = _get(f"/api/v1/traces/{quote(trace_id)}", project=project)
    return tree


def latency(project: str, by: str, since: Any) -> pd.DataFrame:
    """Latency per group through the collector."""
    return _frame(_get("/api/v1/latency", project=project, by=by, since=since))
