"""`tracehouse serve` as the owner of an embedded store: take it over, advertise, withdraw.

Before it opens the store, the collector looks at the store's advertisement: another collector
there is an error naming its URL (one owner per data dir); an SDK process that opened the store
to read is asked to hand it over (`release`), after which the collector waits for chDB's lock to
be free. Once uvicorn listens, the collector advertises its URL and secret, so every other
process on the data dir reads and writes through it; on exit it withdraws the advertisement.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import orjson

from tracehouse._errors import ConfigError
from tracehouse.collector.owner.ownership import (
    Advertisement,
    advertise,
    chdb_path,
    read_advertisement,
    store_locked,
    withdraw,
)

logger = logging.getLogger("tracehouse")


def take_over(store_url: str, wait: float = 30.0) -> None:
    """Make the embedded store at `store_url` free for this collector (nothing to do for a server)."""
    path = chdb_path(store_url)
    if path is None:
        return
    found = read_advertisement(path)
    if found is not None and found.pid != os.getpid():
        if found.kind == "collector":
            raise ConfigError("serve", f"a tracehouse collector (pid {found.pid}) already serves this data dir at "
                                       f"{found.url}; open that one, or stop it first")  # fmt: skip
        _ask_release(found)
    deadline = time.monotonic() + wait
    while store_locked(path):
        if time.monotonic() > deadline:
            holder = f"process {found.pid}" if found is not None else "another process"
            raise ConfigError("serve", f"the embedded store at {str(path)!r} is held by {holder}, which did not "
                                       f"let go within {wait:g} s; stop it and start again")  # fmt: skip
        time.sleep(0.1)


def _ask_release(found: Advertisement) -> None:
    request = urllib.request.Request(
        f"{found.url}/api/v1/owner", data=orjson.dumps({"op": "release"}), method="POST",
        headers={"Authorization": f"Bearer {found.secret}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
        logger.warning("tracehouse collector: process %d handed the store over; it now reads through this collector",
                       found.pid)  # fmt: skip
    except (urllib.error.URLError, OSError) as error:
        logger.warning("tracehouse collector: process %d did not hand the store over (%s); waiting for it", found.pid,
                       error)  # fmt: skip


def advertised_url(host: str, port: int) -> str:
    """Where local processes reach a collector bound to `host`:`port`."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Advertiser:
    """Advertises the collector once its server listens; `withdraw()` takes it back."""

    def __init__(self, store_url: str, host: str, secret: str, spool_dir: Optional[Path]) -> None:
        self.path = chdb_path(store_url)
        self.host, self.secret, self.spool_dir = host, secret, spool_dir
        self.url: Optional[str] = None

    def start(self, server: Any) -> None:
        """Wait (in a thread) for uvicorn's `started`, then write the advertisement."""
        if self.path is None:
            return
        threading.Thread(target=self._when_started, args=(server,), name="tracehouse-advertise", daemon=True).start()

    def _when_started(self, server: Any) -> None:
        while not getattr(server, "started", False):
            if getattr(server, "should_exit", False):
                return
            time.sleep(0.05)
        try:
            port = int(server.servers[0].sockets[0].getsockname()[1])
        except (AttributeError, IndexError, OSError):
            port = int(server.config.port)
        assert self.path is not None
        self.url = advertised_url(self.host, port)
        advertise(self.path, Advertisement(self.url, os.getpid(), self.secret, "collector", str(self.spool_dir or "")))

    def withdraw(self) -> None:
        """Remove the advertisement (if it is still this collector's)."""
        if self.path is not None:
            withdraw(self.path, self.secret)


__all__ = ["Advertiser", "advertised_url", "take_over"]
