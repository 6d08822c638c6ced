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
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import orjson

from tracehouse._errors import TracehouseError
from tracehouse._retry import MAX_RETRY_AFTER, jittered, parse_retry_after

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
        self.answer: Optional[dict[str, Any]] = None  # the decoded error answer, when there was one

    @property
    def refused_for_good(self) -> bool:
        """The collector refuses the batch itself (malformed, too large even split): resending it the
        same way never succeeds, so the spool sets it aside (see SpoolIngester) instead of wedging."""
        return self.status in SET_ASIDE_STATUSES


RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})
SET_ASIDE_STATUSES = frozenset({400, 413, 415, 422})  # the batch itself is refused: it never goes through


class _NoDelayHTTPConnection(http.client.HTTPConnection):
    """http.client sends headers and body in two writes: without TCP_NODELAY, Nagle's algorithm and
    the peer's delayed ACK stall each small request ~40 ms."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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
        self._idle: list[http.client.HTTPConnection] = []  # kept-alive connections; one per request in flight
        self._lock = threading.Lock()

    def request(
        self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None
    ) -> Any:
        """Send a request and return the decoded JSON answer; SendError on any failure. Thread-safe."""
        all_headers = {**self._headers, **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once, fresh
            conn = self._checkout(fresh=attempt == 2)
            try:
                conn.request(method, self._base + path, body=body, headers=all_headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                if attempt == 2:
                    raise SendError(f"collector {self.endpoint} unreachable: {error}") from error
                continue
            self._checkin(conn)
            return self._decode(response, data)
        raise AssertionError("unreachable")

    def _decode(self, response: http.client.HTTPResponse, data: bytes) -> Any:
        try:
            decoded = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            decoded = {"error": data[:200].decode("utf-8", "replace")}
        if 200 <= response.status < 300:  # 201 Created from the reports API
            return decoded
        reason = decoded.get("error", decoded) if isinstance(decoded, dict) else decoded
        error = SendError(
            f"collector answered {response.status}: {reason}",
            retryable=response.status in RETRYABLE_STATUSES,
            retry_after=parse_retry_after(response.getheader("Retry-After")),
            status=response.status,
        )
        error.reason = str(reason)
        error.answer = decoded if isinstance(decoded, dict) else None
        raise error

    def _checkout(self, fresh: bool) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle and not fresh:
                return self._idle.pop()
            timeout = self._timeout
        cls = _NoDelayHTTPSConnection if self._https else _NoDelayHTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if conn.timeout == self._timeout and len(self._idle) < 4:
                self._idle.append(conn)
                return
        conn.close()

    def _close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def set_timeout(self, timeout: float) -> None:
        """Use `timeout` seconds per request from now on (connections made before it are not reused)."""
        with self._lock:
            self._timeout = timeout
        self._close_idle()

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._close_idle()


class CollectorDestination:
    """An ingest destination that is a collector: exactly once per spool range, via its token."""

    def __init__(self, client: CollectorClient, extra_headers: Optional[dict[str, str]] = None) -> None:
        self.client = client
        self.extra_headers = dict(extra_headers or {})

    def _headers(self, token: str) -> dict[str, str]:
        return {**self.extra_headers, "X-Tracehouse-Batch": token}

    def write(self, records: list[dict[str, Any]], token: str) -> Any:
        """POST the records; return the collector's WriteResult-like answer, or raise SendError.

        A body over the collector's limit (413) is sent in halves under tokens derived from this
        one (a redo splits the same way); a single record over it is sent shortened."""
        try:
            answer = self.client.request("POST", "/api/v1/records", orjson.dumps(records), self._headers(token))
        except SendError as error:
            if error.status != 413:
                raise
            return self._split_records(records, token, error)
        return self._result(answer)

    def write_raw(self, payloads: list[bytes], token: str, rows: Optional[int] = None) -> Any:
        """POST spool frame payloads (JSON arrays) as one array, without decoding them (`rows` is
        not needed here: the collector counts them).

        None when a payload is not a JSON array or the collector found the body malformed (400):
        the ingester then decodes the frames one by one and sends what is valid. Over the
        collector's body limit (413), the frames go in halves (see `write`).
        """
        from tracehouse.collector.ingest.spool import join_json_arrays

        joined = join_json_arrays(payloads)
        if joined is None:
            return None
        try:
            answer = self.client.request("POST", "/api/v1/records", bytes(joined), self._headers(token))
        except SendError as error:
            if error.status == 400:
                logger.warning("tracehouse: the collector refused a spool batch (%s); resending it frame by frame",
                               error.reason)  # fmt: skip
                return None
            if error.status != 413:
                raise
            if len(payloads) == 1:
                return self._split_records(_records_of(payloads[0]), token, error)
            middle = len(payloads) // 2
            parts = (payloads[:middle], payloads[middle:])
            return _merged([self._raw_or_decoded(part, f"{token}/{i}") for i, part in enumerate(parts)])
        return self._result(answer)

    def _raw_or_decoded(self, payloads: list[bytes], token: str) -> Any:
        result = self.write_raw(payloads, token)
        if result is not None:
            return result
        records = [r for p in payloads for r in _records_of(p)]
        return self.write(records, token)

    def _split_records(self, records: list[dict[str, Any]], token: str, error: SendError) -> Any:
        if len(records) > 1:
            middle = len(records) // 2
            halves = (records[:middle], records[middle:])
            return _merged([self.write(part, f"{token}/{i}") for i, part in enumerate(halves)])
        from tracehouse.collector.ingest.frames import shrink_record
        from tracehouse.collector.ingest.writer import WriteResult

        size = len(orjson.dumps(records[0])) if records else 0
        if size <= 4096:
            logger.warning("tracehouse: the collector refuses even a %d-byte record (%s); it waits in the spool's "
                           "quarantine/ for `tracehouse sync --quarantine`", size, error.reason)  # fmt: skip
            return WriteResult(set_aside=list(records))
        shortened = orjson.loads(shrink_record(records[0], size // 2))
        logger.warning("tracehouse: a %d-byte record is over the collector's body limit; sending it shortened", size)
        return self.write([shortened], f"{token}/cut")

    @staticmethod
    def _result(answer: Any) -> Any:
        from tracehouse.collector.ingest.writer import WriteResult

        count = int(answer.get("rejected", 0))
        errors = [str(e) for e in answer.get("errors", [])]
        return WriteResult(
            rows=int(answer.get("accepted", 0)),
            rejected=(errors + ["rejected by the collector"] * count)[:count],
            unknown_types=int(answer.get("unknown_types", 0)),
        )


def _records_of(payload: bytes) -> list[dict[str, Any]]:
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    return [r for r in decoded if isinstance(r, dict)] if isinstance(decoded, list) else []


def _merged(results: list[Any]) -> Any:
    from tracehouse.collector.ingest.writer import WriteResult

    merged = WriteResult()
    for result in results:
        merged.rows += result.rows
        merged.rejected.extend(result.rejected)
        merged.unknown_types += result.unknown_types
        merged.set_aside.extend(result.set_aside)
    return merged


class SpoolShipper(threading.Thread):
    """Ships a spool directory to a collector every `interval` seconds, backing off on failures."""

    def __init__(
        self,
        spool_dir: Path,
        client: CollectorClient,
        before_pass: Callable[[], Any],
        interval: float = 1.0,
        wake_rows: int = 4096,
    ) -> None:
        super().__init__(name="tracehouse-shipper", daemon=True)
        self.spool_dir = spool_dir
        self.client = client
        self.before_pass = before_pass
        self.interval = interval
        self.wake_rows = wake_rows
        self.shipped = 0
        self._unsent = 0  # records written to the spool since the last pass began
        self._wake = threading.Event()
        self._stopped = False
        self._backoff = 0.0  # the wait before the next pass, while the collector fails
        self._failures = 0  # passes failed in a row (the exponent of the backoff)
        self._lock = threading.Lock()

    def notify_written(self, rows: int) -> None:
        """The spool grew by `rows` records: ship at once when a batch's worth waits (not while backing off)."""
        self._unsent += rows
        if self._unsent >= self.wake_rows and not self._backoff:
            self._wake.set()

    def wake(self) -> None:
        """Start a pass now (after a flush), unless the collector is being given time to recover."""
        if not self._backoff:
            self._wake.set()

    def ship_once(self, flush: bool = True) -> int:
        """One pass: flush (unless told not to), then send every complete spool range; returns rows taken."""
        from tracehouse.collector.ingest.spool_ingest import SpoolIngester

        with self._lock:
            if flush:
                self.before_pass()
            self._unsent = 0
            ingester = SpoolIngester(
                CollectorDestination(self.client), max_bytes_per_insert=8 * 1024 * 1024, max_inflight=2
            )  # two batches in flight: the collector decodes one while it stores the other
            report = ingester.ingest(self.spool_dir)
            self.shipped += report.rows
            return report.rows

    def run(self) -> None:
        while not self._stopped:
            woken = self._wake.wait(self.interval + self._backoff)
            self._wake.clear()
            if self._stopped:
                return
            try:
                # A pass woken by volume skips the flush: the spans are in the spool already, and
                # flushing would wait on a queue that a busy process keeps refilling.
                self.ship_once(flush=not woken)
                self._backoff, self._failures = 0.0, 0
            except SendError as error:
                first = self._backoff == 0.0
                self._backoff = self._next_backoff(error)
                if first:
                    again = "retrying" if error.retryable else f"trying again in {self._backoff:.0f} s"
                    logger.warning("tracehouse: %s; spans wait in the spool, %s", error, again)
            except Exception:
                self._backoff = self._exponential()
                logger.exception("tracehouse shipper error; spans wait in the spool")

    def _next_backoff(self, error: SendError) -> float:
        """How long to wait after a failed pass: what the collector asked for, else exponential with
        jitter; a refusal that retrying does not change (a revoked key) waits minutes, not seconds."""
        if error.retry_after is not None:  # never sooner than asked; spread a little later
            return error.retry_after * random.uniform(1.0, 1.25)
        if not error.retryable:
            return jittered(MAX_RETRY_AFTER)
        return self._exponential()

    def _exponential(self) -> float:
        self._failures += 1
        return jittered(min(2.0 ** (self._failures - 1), 30.0))

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
