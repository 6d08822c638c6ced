"""`tracehouse serve --forward-otlp URL`: what the collector received, teed to another OTLP/HTTP endpoint.

A request is offered to the forwarder only once it is durable here, and `offer` never waits on the
other end: it appends the request as received (body, content type, content encoding) to a queue on
disk (forward_queue.py), and one thread POSTs it to `URL/v1/traces`, `/v1/logs` or `/v1/metrics`, in
order. While the other end is down or answers 429/5xx, the thread retries the same request with
jittered backoff (up to 30 s apart, or what `Retry-After` asks, up to 300 s): nothing queued is given up, and what is
queued at a stop is sent after the next start. A 4xx other than 429 refuses that request for good: it
is counted as failed and the next one goes. Past the queue's bound in bytes (`max_bytes`), or when
the disk refuses the write, new requests are counted as dropped (`tracehouse_forward_dropped_total`
in /metrics) and warned about once a minute; the store has them all the same.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from tracehouse._errors import ConfigError
from tracehouse._retry import jittered, parse_retry_after
from tracehouse.collector.otlp.forward_queue import DiskQueue, Queued

logger = logging.getLogger("tracehouse")
_SIGNALS = ("traces", "logs", "metrics")
_MAX_BACKOFF = 30.0
_WARN_EVERY = 60.0


def check_forward_url(url: str) -> str:
    """An http(s) base URL (its /v1/<signal> paths are added), or ConfigError naming it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "forward-otlp", f"expected an http(s) OTLP/HTTP endpoint such as http://host:4318, got {url!r}"
        )
    return url.rstrip("/")


class OtlpForwarder:
    """A queue on disk of received OTLP requests and a thread that sends them on, in order."""

    def __init__(self, url: str, directory: Path, max_bytes: int = 1024**3, timeout: float = 10.0) -> None:
        self.url = check_forward_url(url)
        self.timeout = timeout
        self._queue = DiskQueue(directory, max_bytes)
        self.sent = 0  # requests the other end took
        self.failed = 0  # requests it refused for good (a 4xx other than 429)
        self.dropped = 0  # requests never queued: the queue was full or the disk refused them
        self.retries = 0  # sends that failed for now (the other end down, 429 or 5xx) and were tried again
        self._warned_at: dict[str, float] = {}  # what was warned about -> when (each once a minute)
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracehouse-forwarder", daemon=True)
        self._thread.start()

    def offer(self, signal: str, body: bytes, content_type: str, content_encoding: Optional[str]) -> bool:
        """Queue a request to send on; False (and counted as dropped) when the queue cannot take it."""
        if signal not in _SIGNALS:
            raise ValueError(f"unknown OTLP signal {signal!r}")
        try:
            queued = self._queue.put(signal, bytes(body), content_type, content_encoding)
            why = f"the forward queue is full ({self._queue.max_bytes:,} bytes on disk)"
        except OSError as error:
            queued, why = False, f"the forward queue could not be written: {error}"
        if not queued:
            with self._count_lock:  # offers come from the ingest threads and the gRPC workers at once
                self.dropped += 1
            if self._due("drop"):
                logger.warning("tracehouse collector: not forwarding to %s: %s; %d request(s) dropped so far "
                               "(they are stored here)", self.url, why, self.dropped)  # fmt: skip
        return queued

    @property
    def queued(self) -> int:
        """Requests waiting to be sent (those a previous run left included)."""
        return self._queue.queued

    @property
    def skipped(self) -> int:
        """Queued requests found damaged on disk and skipped (warned about as they are met)."""
        return self._queue.skipped

    @property
    def queued_bytes(self) -> int:
        """Bytes on disk of the requests waiting to be sent."""
        return self._queue.queued_bytes

    def _due(self, warning: str) -> bool:
        """Whether `warning` is due (once a minute each), noting that it is given now."""
        now = time.monotonic()
        if now - self._warned_at.get(warning, -_WARN_EVERY) < _WARN_EVERY:
            return False
        self._warned_at[warning] = now
        return True

    def _run(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                retry_after = self._pass()
            except Exception as error:  # a full disk, a damaged file: the thread must outlive it and retry
                if self._due("error"):
                    logger.warning("tracehouse collector: the forwarder failed (%s); retrying", error, exc_info=True)
                retry_after = 0.0
            if retry_after is None:
                backoff = 0.0
                continue
            self.retries += 1
            backoff = min(_MAX_BACKOFF, max(0.5, backoff * 2))
            self._stopping.wait(max(retry_after, jittered(backoff)))

    def _pass(self) -> Optional[float]:
        """Send the oldest request; None when it left the queue (or none came), else seconds to wait first."""
        item = self._queue.next(wait=1.0)
        if item is None:
            return None
        outcome, retry_after = self._send(item)
        if outcome == "retry":
            return retry_after or 0.0
        if outcome == "sent":
            self.sent += 1
        else:
            self.failed += 1
        self._queue.done(item)
        return None

    def _send(self, item: Queued) -> tuple[str, Optional[float]]:
        """One attempt: ("sent" | "refused" | "retry", seconds the other end asked to wait)."""
        headers = {"Content-Type": item.content_type or "application/x-protobuf"}
        if item.content_encoding:
            headers["Content-Encoding"] = item.content_encoding
        url = f"{self.url}/v1/{item.signal}"
        request = urllib.request.Request(url, data=item.body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
            return "sent", None
        except urllib.error.HTTPError as error:
            if error.code not in (408, 429) and error.code < 500:
                logger.warning("tracehouse collector: %s refused a forwarded %s request: %s", url, item.signal, error)
                return "refused", None
            problem: Exception = error
            retry_after = parse_retry_after(error.headers.get("Retry-After"))  # at most 300 s
        except (OSError, http.client.HTTPException) as error:  # refused, reset, cut short, not HTTP at all
            problem, retry_after = error, None
        if self._due("retry"):
            logger.warning("tracehouse collector: forwarding to %s failed for now (%s); %d request(s) wait on disk, "
                           "retrying", url, problem, self.queued)  # fmt: skip
        return "retry", retry_after

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued for at most `timeout` seconds, then stop; the rest stays on disk for the next start."""
        deadline = time.monotonic() + timeout
        while self._queue.queued and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stopping.set()
        self._queue.wake()
        self._thread.join(self.timeout)  # a request in flight ends within its own timeout
        self._queue.close()


__all__ = ["OtlpForwarder", "check_forward_url"]
