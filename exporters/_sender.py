"""Sending spool records to a collector over HTTP (`TRACEHOUSE_ENDPOINT`).

`CollectorDestination` is an ingest destination: the spool ingester hands it the records of a
spool range with that range's token, it POSTs them to the collector's `/api/v1/records`, and the
range is acknowledged (trimmed from the spool) only after the collector answered 200, which it
does only once the store holds the rows. The token travels as `X-Tracehouse-Batch`, so a resend
after a lost answer is dropped by ClickHouse instead of duplicated.

`SpoolShipper` runs that in a background thread of a traced process: every second, with
exponential backoff while the collector is unreachable; records wait in the spool meanwhile.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import orjson

from tracehouse._errors import TracehouseError

logger = logging.getLogger("tracehouse")


class SendError(TracehouseError):
    """The collector did not take a batch; it stays in the spool. `retryable` says whether to try again."""

    def __init__(
        self, message: str, retryable: bool = True, retry_after: Optional[float] = None, status: int = 0
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status  # the HTTP status, 0 when the collector was not reached
        self.reason = message


class CollectorClient:
    """A small keep-alive HTTP client for one collector (stdlib only: the SDK stays light)."""

    def __init__(self, endpoint: str, api_key: Optional[str] = None, timeout: float = 30.0) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SendError(f"bad collector endpoint {endpoint!r}", retryable=False)
        self.endpoint = endpoint
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None
        self._lock = threading.Lock()

    def request(
        self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None
    ) -> Any:
        """Send a request and return the decoded JSON answer; SendError on any failure."""
        all_headers = {**self._headers, **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        with self._lock:
            for attempt in (1, 2):  # a kept-alive connection the server closed is retried once, fresh
                conn = self._connection()
                try:
                    conn.request(method, self._base + path, body=body, headers=all_headers)
                    response = conn.getresponse()
                    data = response.read()
                    break
                except (OSError, http.client.HTTPException) as error:
                    self._close()
                    if attempt == 2:
                        raise SendError(f"collector {self.endpoint} unreachable: {error}") from error
        return self._decode(response, data)

    def _decode(self, response: http.client.HTTPResponse, data: bytes) -> Any:
        try:
            decoded = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            decoded = {"error": data[:200].decode("utf-8", "replace")}
        if response.status == 200:
            return decoded
        reason = decoded.get("error", decoded) if isinstance(decoded, dict) else decoded
        error = SendError(
            f"collector answered {response.status}: {reason}",
            retryable=response.status in (408, 429, 500, 502, 503, 504),
            retry_after=float(response.getheader("Retry-After") or 0) or None,
            status=response.status,
        )
        error.reason = str(reason)
        raise error

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def set_timeout(self, timeout: float) -> None:
        """Use `timeout` seconds per request from now on (a fresh connection picks it up)."""
        with self._lock:
            self._timeout = timeout
            self._close()

    def close(self) -> None:
        """Close the kept-alive connection."""
        with self._lock:
            self._close()


class CollectorDestination:
    """An ingest destination that is a collector: exactly once per spool range, via its token."""

    def __init__(self, client: CollectorClient) -> None:
        self.client = client

    def write(self, records: list[dict[str, Any]], token: str) -> Any:
        """POST the records; return the collector's WriteResult-like answer, or raise SendError."""
        from tracehouse.collector._writer import WriteResult

        answer = self.client.request("POST", "/api/v1/records", orjson.dumps(records), {"X-Tracehouse-Batch": token})
        count = int(answer.get("rejected", 0))
        errors = [str(e) for e in answer.get("errors", [])]
        return WriteResult(
            rows=int(answer.get("accepted", 0)),
            rejected=(errors + ["rejected by the collector"] * count)[:count],
            unknown_types=int(answer.get("unknown_types", 0)),
        )


class SpoolShipper(threading.Thread):
    """Ships a spool directory to a collector every `interval` seconds, backing off on failures."""

    def __init__(
        self, spool_dir: Path, client: CollectorClient, before_pass: Callable[[], Any], interval: float = 1.0
    ) -> None:
        super().__init__(name="tracehouse-shipper", daemon=True)
        self.spool_dir = spool_dir
        self.client = client
        self.before_pass = before_pass
        self.interval = interval
        self.shipped = 0
        self._wake = threading.Event()
        self._stopped = False
        self._backoff = 0.0
        self._lock = threading.Lock()

    def ship_once(self) -> int:
        """One pass: flush, then send every complete spool range; returns rows the collector took."""
        from ._ingest import SpoolIngester

        with self._lock:
            self.before_pass()
            report = SpoolIngester(CollectorDestination(self.client), max_bytes_per_insert=8 * 1024 * 1024).ingest(
                self.spool_dir
            )
            self.shipped += report.rows
            return report.rows

    def run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval + self._backoff)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self.ship_once()
                self._backoff = 0.0
            except SendError as error:
                first = self._backoff == 0.0
                self._backoff = (
                    min(max(self._backoff * 2, 1.0), 30.0) if error.retry_after is None else error.retry_after
                )
                if first:
                    logger.warning("tracehouse: %s; spans wait in the spool, retrying", error)
            except Exception:
                self._backoff = min(max(self._backoff * 2, 1.0), 30.0)
                logger.exception("tracehouse shipper error; spans wait in the spool")

    def stop(self, timeout: float) -> None:
        """A last pass bounded by `timeout`, then stop; what is not sent stays for `tracehouse sync`."""
        deadline = time.monotonic() + timeout
        self._stopped = True
        self._wake.set()
        self.join(timeout)
        remaining = deadline - time.monotonic()
        if remaining > 0 and self._lock.acquire(timeout=remaining):
            self._lock.release()
            self.client.set_timeout(max(0.5, deadline - time.monotonic()))
            try:
                self.ship_once()
            except Exception as error:
                logger.warning("tracehouse: could not send the last spans (%s); `tracehouse sync` will", error)
        self.client.close()
