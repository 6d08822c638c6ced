"""Connecting to ClickHouse, and the rules of chDB's in-process engine.

chDB serves one data directory per process for the process's whole life, one process at a time
(a second process gets "Cannot lock file .../status"), and its engine does not survive `fork`:
the child inherits the engine's memory but not its threads, so closing or using it there (even
at the child's exit) waits forever. So:

- `connect` turns the one-directory and lock rules into clear errors (`StoreLockedError` when
  another process holds the directory; callers route through that process instead);
- every embedded client is remembered, and a forked child neuters them all: their finalizers are
  detached, their native handles kept alive so nothing closes them, the child refuses to open the
  engine again (`inherited_engine()`), and its C-level exit skips the engine's static destructors
  (glibc `on_exit(_exit)`, which runs before handlers registered earlier). The child works through
  its spool and through the store's owner, usually its parent.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from tracehouse._errors import StoreError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger("tracehouse")
_embedded_path: Optional[str] = None  # chDB serves one data directory per process, for its whole life
_embedded_lock = threading.Lock()
_clients: weakref.WeakSet[Any] = weakref.WeakSet()
_inherited = False  # this process is a fork of one that had the engine open
_kept_alive: list[Any] = []  # a forked child's inherited native handles, never released


class StoreLockedError(StoreError):
    """Another process holds the embedded store's directory."""


def _get_client(url: str, database: Optional[str], settings: Optional[dict[str, Any]] = None) -> Client:
    import clickhouse_connect

    options: dict[str, Any] = {"dsn": url}
    if database:
        options["database"] = database
    if settings:
        options["settings"] = settings
    return clickhouse_connect.get_client(**options)


def redact_url(url: str) -> str:
    """A URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def inherited_engine() -> bool:
    """True in a forked child of a process that had the embedded engine open: it must not use it."""
    return _inherited


def connect(url: str, database: Optional[str] = None, settings: Optional[dict[str, Any]] = None) -> Client:
    """A client for `url`; chDB's one-directory-per-process and lock rules become clear StoreErrors."""
    global _embedded_path
    if not url.startswith("chdb://"):
        try:
            return _get_client(url, database, settings)
        except Exception as error:
            raise StoreError(f"cannot connect to ClickHouse at {redact_url(url)}: {error}") from error
    path = url[len("chdb://") :]
    if _inherited:
        raise StoreError(
            "this process was forked from one that had the embedded store open; chDB cannot be used after fork, "
            "so reads here go through the store's owner (start the child with the 'spawn' method to open it)"
        )
    with _embedded_lock:
        if _embedded_path is not None and _embedded_path != path:
            raise StoreError(
                f"this process already opened the embedded store at {_embedded_path!r}; chDB serves one data "
                f"directory per process, so {path!r} cannot be opened too"
            )
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = _get_client(url, database, settings)
        except Exception as error:
            if "lock" in str(error).lower():
                raise StoreLockedError(f"the embedded store at {path!r} is held by another process") from error
            raise StoreError(f"cannot open the embedded store at {path!r}: {error}") from error
        _embedded_path = path
        _clients.add(client)
        return client


def _neuter(client: Any) -> None:
    """Make an inherited client inert: nothing may close (or use) the parent's engine in a child."""
    backend = getattr(client, "_backend", None)
    if backend is None:
        return
    release = getattr(backend, "_release", None)
    if release is not None:
        release.detach()
    handle = getattr(backend, "_handle", None)
    connection = getattr(handle, "conn", None)
    if handle is not None and connection is not None:
        for native in (getattr(connection, "_conn", None), getattr(connection, "_cursor", None)):
            if native is not None:
                _kept_alive.append(native)
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(native))  # never deallocated, never closed
        connection._conn = connection._cursor = None
        handle.conn = None
    backend._closed = True


def _skip_engine_teardown_at_exit() -> None:
    """glibc runs on_exit handlers newest first: `_exit(status)` now runs before the engine's destructors."""
    try:
        libc = ctypes.CDLL(None)
        on_exit = libc.on_exit
    except (OSError, AttributeError):
        return
    on_exit.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    on_exit(ctypes.cast(libc._exit, ctypes.c_void_p), None)


def _after_fork_in_child() -> None:
    global _embedded_lock, _inherited
    _embedded_lock = threading.Lock()  # a lock held by another thread at fork time would never be released
    if _embedded_path is None:
        return
    _inherited = True
    for client in list(_clients):
        try:
            _neuter(client)
        except Exception:  # never let fork handling fail the child
            logger.debug("tracehouse: could not neuter an inherited client", exc_info=True)
    _skip_engine_teardown_at_exit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = ["StoreLockedError", "connect", "inherited_engine", "redact_url"]
