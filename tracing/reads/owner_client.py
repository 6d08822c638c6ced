"""Working through the process that owns the embedded store (see `collector/_ownership`).

`OwnerAccess` has the methods of `collector._access.StoreAccess`, each a `POST /api/v1/owner` to the
owner with its secret. Before a read it flushes this process's spool and, unless the owner follows
this very spool (a collector on the same data dir does), ships the spool's frames to the owner's
`/api/v1/records` exactly once per range, as a sender does for a collector.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

import orjson

from tracehouse._errors import ConfigError, ConflictError, NotFoundError, StoreError
from tracehouse.collector.store.windows import EPOCH, UNSET
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    import pandas as pd

    from tracehouse.collector.ingest.spool_ingest import IngestReport
    from tracehouse.collector.owner.access import CatchUpReport
    from tracehouse.collector.owner.ownership import Advertisement
    from tracehouse.exporters._sender import CollectorClient


class OwnerGone(StoreError):
    """The owner did not answer (it exited, or is exiting): look for the store's owner again."""


def wire_since(since: Any) -> Any:
    """A time window as text the owner parses: durations, ISO times and None pass as they are."""
    if isinstance(since, timedelta):
        return f"{since.total_seconds()}s"
    if isinstance(since, datetime):
        return since.isoformat()
    return since


def wire_window(since: Any, start: Any, end: Any) -> dict[str, Any]:
    """A read's window arguments as the owner and the REST API take them (only those given; all time,
    `since=None`, as a start at the epoch)."""
    window = {"since": wire_since(since)} if since is not UNSET and since is not None else {}
    if since is None and start is None:
        start = EPOCH
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            window[name] = value.isoformat() if isinstance(value, datetime) else value
    return window


def error_from(status: int, reason: str, answer: Optional[Mapping[str, Any]] = None) -> Exception:
    """The tracehouse error for an error answer of an owner or a collector."""
    if status == 400:
        if answer and isinstance(answer.get("option"), str):
            return ConfigError(answer["option"], str(answer.get("problem", "")))
        option, _, problem = reason.partition(": ")
        return ConfigError(option, problem) if problem and " " not in option else ConfigError("request", reason)
    if status == 404:
        return NotFoundError(reason)
    if status == 409:
        return ConflictError(reason)
    return StoreError(reason)


class OwnerAccess:
    """The store's operations, run by its owner for this process."""

    def __init__(self, advertisement: Advertisement, database: str) -> None:
        from tracehouse.exporters._sender import CollectorClient

        self.advertisement = advertisement
        self.database = database
        self.client: CollectorClient = CollectorClient(advertisement.url, advertisement.secret, timeout=330.0)

    # --- the wire -----------------------------------------------------------------------------
    def _call(self, op: str, **args: Any) -> Any:
        from tracehouse.collector.owner.access import decode_result
        from tracehouse.exporters._sender import SendError

        body = orjson.dumps({"op": op, "database": self.database, "args": args}, default=str)
        try:
            answer = self.client.request("POST", "/api/v1/owner", body)
        except SendError as error:
            if error.status == 0:
                raise OwnerGone(f"the store's owner (pid {self.advertisement.pid}) did not answer: {error}") from None
            raise error_from(error.status, error.reason, error.answer) from None
        return decode_result(answer)

    def ping(self) -> bool:
        """Whether the owner answers."""
        try:
            return isinstance(self._call("ping"), dict)
        except StoreError:
            return False

    def release(self) -> Any:
        """Ask an SDK owner to close the store (a collector is taking it over)."""
        return self._call("release")

    def _prepare(self) -> None:
        runtime.flush()
        settings = runtime.settings
        follows_mine = self.advertisement.kind == "collector" and self.advertisement.spool_dir == str(
            settings.spool_dir
        )
        if not follows_mine:
            self.ingest_dir(settings.spool_dir)

    def ingest_dir(self, spool_dir: Path) -> IngestReport:
        """Ship a spool directory's records to the owner (exactly once per range)."""
        from tracehouse.collector.ingest.spool_ingest import SpoolIngester
        from tracehouse.exporters._sender import CollectorDestination

        destination = CollectorDestination(self.client, extra_headers={"X-Tracehouse-Database": self.database})
        return SpoolIngester(destination, max_bytes_per_insert=8 * 1024**2).ingest(spool_dir)

    # --- the operations -------------------------------------------------------------------------
    def catch_up(self) -> CatchUpReport:
        """Deliver this process's records, then have the owner ingest what is pending."""
        self._prepare()
        report: CatchUpReport = self._call("catch_up")
        return report

    def query(self, sql: str, parameters: Optional[Mapping[str, Any]] = None, **limits: Any) -> pd.DataFrame:
        self._prepare()
        frame: pd.DataFrame = self._call("query", sql=sql, parameters=dict(parameters or {}), **limits)
        return frame

    def read(self, name: str, project: str, parameters: Mapping[str, Any]) -> pd.DataFrame:
        self._prepare()
        frame: pd.DataFrame = self._call("read", name=name, project=project, parameters=dict(parameters))
        return frame

    def traces(self, project: str, limit: int = 20, since: Any = UNSET, name: Optional[str] = None,
               status: Optional[str] = None, start: Any = None, end: Any = None) -> pd.DataFrame:  # fmt: skip
        self._prepare()
        frame: pd.DataFrame = self._call("traces", project=project, limit=limit, name=name, status=status,
                                         **wire_window(since, start, end))  # fmt: skip
        return frame

    def trace_tree(self, project: str, trace_id: str) -> dict[str, Any]:
        self._prepare()
        tree: dict[str, Any] = self._call("trace_tree", project=project, trace_id=trace_id)
        return restore_times(tree)

    def latency(self, project: str, by: str = "name", since: Any = UNSET, start: Any = None,
                end: Any = None) -> pd.DataFrame:  # fmt: skip
        self._prepare()
        frame: pd.DataFrame = self._call("latency", project=project, by=by, **wire_window(since, start, end))
        return frame

    def sweep(self, method: str, args: list[Any]) -> Any:
        self._prepare()
        return self._call("sweep", method=method, args=args)

    def keys(self, action: str, args: Mapping[str, Any]) -> Any:
        return self._call("keys", action=action, args=dict(args))

    def reports(self, action: str, args: Mapping[str, Any]) -> Any:
        return self._call("reports", action=action, args=dict(args))


def restore_times(node: dict[str, Any]) -> dict[str, Any]:
    """A trace tree from JSON with its start and end times as datetimes again."""
    for key in ("start_time", "end_time"):
        value = node.get(key)
        if isinstance(value, str):
            try:
                node[key] = datetime.fromisoformat(value)
            except ValueError:
                pass
    for child in node.get("children") or []:
        restore_times(child)
    return node
