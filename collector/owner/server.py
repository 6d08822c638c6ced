"""The small loopback server an SDK process runs while it owns the embedded store (standard library only).

It answers the processes of the same data dir, and nothing else: requests need the owner secret
(`Authorization: Bearer <secret>`), a loopback `Host` naming its port, and no `Origin` (a browser
never gets here); bodies are bounded and must arrive within `body_timeout` seconds. Two routes:

- `POST /api/v1/owner`: an operation of `collector/owner/access.py dispatch` (reads, SQL, sweeps, keys, catch-up);
- `POST /api/v1/records`: spool frames from a process whose spool is elsewhere (the collector's
  contract: a JSON array, `X-Tracehouse-Batch` as the deduplication token).

`release` (handing the store to a collector that is starting) is the one operation only an SDK
owner has; the SDK passes a callback for it.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, ContextManager, Optional

from tracehouse._errors import ConfigError, NotFoundError, StoreError
from tracehouse.collector.owner.access import MAX_OWNER_BODY, StoreAccess, dispatch, dumps, parse_request

logger = logging.getLogger("tracehouse")
MAX_RECORDS_BODY = 64 * 1024 * 1024
AccessFor = Callable[[str], StoreAccess]  # database -> access (ConfigError for one it does not serve)
RecordsWriter = Callable[[str, bytes, Optional[str]], dict[str, Any]]  # (database, body, token) -> answer
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 64


class OwnerServer:
    """Serves `access_for(database)` on 127.0.0.1 (an ephemeral port) to holders of `secret`."""

    def __init__(
        self,
        secret: str,
        access_for: AccessFor,
        write_records: RecordsWriter,
        info: dict[str, Any],
        release: Optional[Callable[[], dict[str, Any]]] = None,
        body_timeout: float = 30.0,
        guard: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.secret = secret
        owner = self

        class Handler(_Handler):
            server_owner = owner
            timeout = body_timeout  # the request line, headers and body must keep arriving

        self._access_for, self._write_records, self._release = access_for, write_records, release
        self.info, self.body_timeout, self.guard = info, body_timeout, guard
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="tracehouse-owner", daemon=True)

    def start(self) -> OwnerServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (from any thread but a request's own)."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def abandon(self) -> None:
        """In a forked child: close the inherited socket without touching the parent's serving thread."""
        try:
            self._httpd.socket.close()
        except OSError:
            pass

    def authorized(self, header: str) -> bool:
        presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return bool(presented) and hmac.compare_digest(presented.encode(), self.secret.encode())

    def handle(self, path: str, body: bytes, headers: Any) -> tuple[int, bytes]:
        """Answer one authorized request: (status, JSON body)."""
        with self.guard():
            return self._handle(path, body, headers)

    def _handle(self, path: str, body: bytes, headers: Any) -> tuple[int, bytes]:
        if path == "/api/v1/records":
            database = headers.get("X-Tracehouse-Database") or ""
            return self._records(database, body, headers.get("X-Tracehouse-Batch"))
        op, database, args = parse_request(body)
        if op == "release":
            if self._release is None:
                return 409, dumps({"error": "this owner does not hand the store over"})
            return 200, dumps({"value": self._release()})
        return dispatch(self._access_for(database), op, args, self.info)

    def _records(self, database: str, body: bytes, token: Optional[str]) -> tuple[int, bytes]:
        try:
            return 200, dumps(self._write_records(database, body, token))
        except ValueError as error:
            return 400, dumps({"error": str(error)})


class _Handler(BaseHTTPRequestHandler):
    server_owner: OwnerServer
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one write (flushed after each request)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("tracehouse owner: " + format, *args)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        self._answer(status, dumps({"error": message}))

    def do_GET(self) -> None:
        self._refuse(405, "POST only")

    def do_POST(self) -> None:
        owner = self.server_owner
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in {f"{name}:{owner.port}" for name in LOOPBACK_NAMES}:
            return self._refuse(403, f"Host {host!r} is not this owner's address")
        if self.headers.get("Origin") is not None or self.headers.get("Sec-Fetch-Site") not in (None, "none"):
            return self._refuse(403, "browsers may not call the store's owner")
        if not owner.authorized(self.headers.get("Authorization") or ""):
            return self._refuse(401, "the owner secret is required")
        if self.path not in ("/api/v1/owner", "/api/v1/records"):
            return self._refuse(404, f"no route {self.path}")
        body = self._body(MAX_RECORDS_BODY if self.path == "/api/v1/records" else MAX_OWNER_BODY)
        if body is None:
            return None
        try:
            status, answer = owner.handle(self.path, body, self.headers)
        except ConfigError as error:
            status, answer = 400, dumps({"error": str(error), "option": error.option, "problem": error.problem})
        except NotFoundError as error:
            status, answer = 404, dumps({"error": str(error)})
        except StoreError as error:
            status, answer = 503, dumps({"error": str(error)})
        except Exception as error:  # a bug: say so once, keep serving
            logger.exception("tracehouse owner: %s failed", self.path)
            status, answer = 500, dumps({"error": f"internal error: {type(error).__name__}"})
        self._answer(status, answer)
        return None

    def _body(self, limit: int) -> Optional[bytes]:
        declared = self.headers.get("Content-Length")
        if declared is None or not declared.isdigit():
            self._refuse(411, "a Content-Length is required")
            return None
        size = int(declared)
        if size > limit:
            self._refuse(413, f"body of {size} bytes is over the limit of {limit}")
            return None
        try:
            body = self.rfile.read(size)
        except TimeoutError:
            self._refuse(408, f"the body did not arrive within {self.server_owner.body_timeout:g} s")
            return None
        if len(body) < size:
            self.close_connection = True
            return None
        return body


__all__ = ["LOOPBACK_NAMES", "OwnerServer"]
