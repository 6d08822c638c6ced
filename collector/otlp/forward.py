"""`tracehouse serve --forward-otlp URL`: what the collector received, teed to another OTLP/HTTP endpoint.

A request is offered to the forwarder only once it is durable here, and `offer` never blocks: it
puts the request as received (body, content type, content encoding) on a bounded queue, and one
thread POSTs it to `URL/v1/traces`, `/v1/logs` or `/v1/metrics`. A full queue drops the request
and counts it (`tracehouse_forward_dropped_total` in /metrics); the store has it all the same.
A send that fails (the other end down or answering 5xx/429) is retried a few times with backoff,
then counted as failed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urlsplit

from tracehouse._errors import ConfigError

logger = logging.getLogger("tracehouse")
_SIGNALS = ("traces", "logs", "metrics")
_RETRIES = 3


def check_forward_url(url: str) -> str:
    """An http(s) base URL (its /v1/<signal> paths are added), or ConfigError naming it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "forward-otlp", f"expected an http(s) OTLP/HTTP endpoint such as http://host:4318, got {url!r}"
        )
    return url.rstrip("/")


class OtlpForwarder:
    """A bounded queue of received OTLP requests and a thread that sends them on."""

    def __init__(self, url: str, max_queued: int = 1000, timeout: float = 10.0) -> None:
        self.url = check_forward_url(url)
        self.timeout = timeout
        self._queue: queue.Queue[Optional[tuple[str, bytes, str, Optional[str]]]] = queue.Queue(max_queued)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="tracehouse-forwarder", daemon=True)
        self._thread.start()

    def offer(self, signal: str, body: bytes, content_type: str, content_encoding: Optional[str]) -> bool:
        """Queue a request to send on; False (and counted as dropped) when the queue is full."""
        if signal not in _SIGNALS:
            raise ValueError(f"unknown OTLP signal {signal!r}")
        try:
            self._queue.put_nowait((signal, bytes(body), content_type, content_encoding))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    @property
    def queued(self) -> int:
        """Requests waiting to be sent."""
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._send(*item):
                self.sent += 1
            else:
                self.failed += 1

    def _send(self, signal: str, body: bytes, content_type: str, content_encoding: Optional[str]) -> bool:
        headers = {"Content-Type": content_type or "application/x-protobuf"}
        if content_encoding:
            headers["Content-Encoding"] = content_encoding
        for attempt in range(_RETRIES):
            request = urllib.request.Request(f"{self.url}/v1/{signal}", data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return True
            except urllib.error.HTTPError as error:
                if error.code != 429 and error.code < 500:
                    logger.warning("tracehouse collector: %s refused forwarded %s: %s", self.url, signal, error)
                    return False
                problem: Exception = error
            except OSError as error:
                problem = error
            if attempt + 1 < _RETRIES:
                time.sleep(0.5 * 2**attempt)
        logger.warning("tracehouse collector: forwarding %s to %s failed: %s", signal, self.url, problem)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (for at most `timeout` seconds), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


__all__ = ["OtlpForwarder", "check_forward_url"]
