"""Reads through a collector's REST API, used when an endpoint is configured."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional
from urllib.parse import quote, urlencode

import orjson

from tracehouse._errors import StoreError
from tracehouse.collector.store.windows import UNSET
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.ingest.spool_ingest import IngestReport
    from tracehouse.collector.owner.access import CatchUpReport
    from tracehouse.exporters._sender import CollectorClient

logger = logging.getLogger("tracehouse")
_clients: dict[tuple[str, Optional[str]], CollectorClient] = {}
_lock = threading.Lock()


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
    from tracehouse.reads.owner_client import error_from

    try:
        return client().request(method, path, body)
    except SendError as error:
        if error.status in (400, 404, 409):
            raise error_from(error.status, error.reason, error.answer) from None
        raise StoreError(str(error)) from None


def call_json(method: str, path: str, payload: Optional[Mapping[str, Any]] = None) -> Any:
    """A JSON request to the collector, errors mapped as for reads."""
    return _call(method, path, orjson.dumps(payload) if payload is not None else None)


def _frame(answer: Mapping[str, Any]) -> pd.DataFrame:
    from tracehouse.collector.owner.access import decode_frame

    return decode_frame(answer)


def _get(path: str, **params: Any) -> Any:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return _call("GET", f"{path}?{query}" if query else path)


def query(sql: str, parameters: Optional[Mapping[str, Any]], **limits: Any) -> pd.DataFrame:
    """SQL through the collector (read-only there, within the collector's limits)."""
    wanted = {k: v for k, v in limits.items() if v is not None}
    body = orjson.dumps({"sql": sql, "parameters": dict(parameters or {}), **wanted}, default=str)
    return _frame(_call("POST", "/api/v1/query", body))


def read(name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """A named read through the collector (a key of `project` is enough)."""
    body = orjson.dumps({"name": name, "project": project, "parameters": dict(parameters)}, default=str)
    return _frame(_call("POST", "/api/v1/read", body))


def traces(project: str, limit: int, since: Any, name: Optional[str], status: Optional[str], start: Any = None,
           end: Any = None) -> pd.DataFrame:  # fmt: skip
    """Recent traces through the collector."""
    from tracehouse.reads.owner_client import wire_window

    window = wire_window(since, start, end)
    return _frame(_get("/api/v1/traces", project=project, limit=limit, name=name, status=status, **window))


def trace_tree(project: str, trace_id: str) -> dict[str, Any]:
    """One trace's tree through the collector."""
    from tracehouse.reads.owner_client import restore_times

    tree: dict[str, Any] = _get(f"/api/v1/traces/{quote(trace_id)}", project=project)
    return restore_times(tree)


def latency(project: str, by: str, since: Any, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Latency per group through the collector."""
    from tracehouse.reads.owner_client import wire_window

    return _frame(_get("/api/v1/latency", project=project, by=by, **wire_window(since, start, end)))


class RemoteAccess:
    """The store's operations through the collector at the configured endpoint (its REST API)."""

    def ingest_dir(self, spool_dir: Path) -> IngestReport:
        """Send a spool directory's records to the collector (exactly once per range)."""
        from tracehouse.collector.ingest.spool_ingest import SpoolIngester
        from tracehouse.exporters._sender import CollectorDestination

        return SpoolIngester(CollectorDestination(client()), max_bytes_per_insert=8 * 1024 * 1024).ingest(spool_dir)

    def catch_up(self) -> CatchUpReport:
        """Flush and send this process's spool; what was sent."""
        from tracehouse.collector.owner.access import CatchUpReport

        runtime.flush()
        report = self.ingest_dir(runtime.settings.spool_dir)
        return CatchUpReport(report.rows, report.segments_done, report.rejected, report.problems, report.damaged_bytes,
                         report.set_aside)  # fmt: skip

    def _before_read(self) -> None:
        """Send what this process recorded, so the read sees it; a collector refusing that (or a
        batch of it) is a warning here, not a failed read: the records wait in the spool."""
        from tracehouse.exporters._sender import SendError

        try:
            self.catch_up()
        except SendError as error:
            logger.warning("tracehouse: reading without this process's latest records (%s)", error)

    def query(self, sql: str, parameters: Optional[Mapping[str, Any]] = None, **limits: Any) -> pd.DataFrame:
        self._before_read()
        return query(sql, parameters, **limits)

    def read(self, name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
        self._before_read()
        return read(name, project, parameters)

    def traces(self, project: str, limit: int = 20, since: Any = UNSET, name: Optional[str] = None,
               status: Optional[str] = None, start: Any = None, end: Any = None) -> pd.DataFrame:  # fmt: skip
        self._before_read()
        return traces(project, limit, since, name, status, start, end)

    def trace_tree(self, project: str, trace_id: str) -> dict[str, Any]:
        self._before_read()
        return trace_tree(project, trace_id)

    def latency(self, project: str, by: str = "name", since: Any = UNSET, start: Any = None,
                end: Any = None) -> pd.DataFrame:  # fmt: skip
        self._before_read()
        return latency(project, by, since, start, end)

    def keys(self, action: str, args: Mapping[str, Any]) -> Any:
        if action == "create":
            body = {"admin": True} if not args.get("project") else {"project": args["project"]}
            return call_json("POST", "/api/v1/keys", {**body, "name": args.get("name") or ""})
        if action == "list":
            return call_json("GET", "/api/v1/keys")
        return call_json("DELETE", f"/api/v1/keys/{quote(str(args.get('key_id') or ''))}")

    def reports(self, action: str, args: Mapping[str, Any]) -> Any:
        """The collector's /api/v1/reports endpoints (a key of the report's project)."""
        project, report_id = str(args.get("project") or ""), quote(str(args.get("report_id") or ""), safe="")
        if action == "list":
            return _get("/api/v1/reports", project=project)["reports"]
        if action == "create":
            return call_json("POST", "/api/v1/reports", {**dict(args.get("body") or {}), "project": project})
        if action == "get":
            version = args.get("version")
            path = f"/api/v1/reports/{report_id}" + ("" if version is None else f"?version={int(version)}")
            return call_json("GET", path)
        if action == "update":
            body = {**dict(args.get("body") or {}), "base_version": args.get("base_version")}
            return call_json("PUT", f"/api/v1/reports/{report_id}", {k: v for k, v in body.items() if v is not None})
        if action == "delete":
            return call_json("DELETE", f"/api/v1/reports/{report_id}")
        return call_json("GET", f"/api/v1/reports/{report_id}/versions")["versions"]
