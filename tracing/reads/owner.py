"""This process and the embedded store: own it and serve the others, or work through its owner.

chDB lets one process hold a data directory. The first process that needs the store opens it and
becomes its owner: it serves the other processes of the data dir on a loopback port
(`collector/_owner_server`) and advertises itself in the store's directory (`collector/_ownership`).
Every other process (a second script, the CLI, an agent, a forked worker) finds that advertisement
and works through the owner: the same operations (`collector/_access.StoreAccess`), answered by
the owner. With no live owner, a process opens the store itself; while one is starting, it waits
for it (up to `OWNER_WAIT` seconds). A collector (`tracehouse serve` / `ui`) that starts on a data
dir an SDK process holds asks that process to hand the store over (`release`).

`with_access(fn)` runs `fn` against this process's own store or its owner, and looks the owner up
again once if the owner went away meanwhile.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar, Union

from tracehouse._errors import StoreError
from tracehouse.spans.runtime import runtime

if TYPE_CHECKING:
    from tracehouse.collector.owner.access import CatchUpReport, StoreAccess
    from tracehouse.collector.owner.server import OwnerServer
    from tracehouse.collector.store.store import Store
    from tracehouse.reads.owner_client import OwnerAccess
    from tracehouse.spans.config import Settings

logger = logging.getLogger("tracehouse")
T = TypeVar("T")
Access = Union["StoreAccess", "OwnerAccess"]
OWNER_WAIT = 30.0  # seconds to wait for an owner that is starting (or handing over)
MAX_OPEN_DATABASES = 8  # stores (databases) kept open at once in one process; the oldest are closed


@dataclass
class _Owned:
    """This process holds the embedded store at `path` and serves it."""

    path: Path
    secret: str
    server: OwnerServer


_lock = threading.RLock()
_idle = threading.Condition(_lock)
_in_use = 0  # local operations running: a hand-over waits for them before it closes the stores
_stores: OrderedDict[tuple[str, str], Store] = OrderedDict()
_accesses: dict[tuple[str, str], StoreAccess] = {}
_owned: Optional[_Owned] = None
_owner_clients: dict[tuple[str, str], OwnerAccess] = {}
_exit_hook = False
_kept_after_fork: list[Any] = []  # a forked child's inherited stores: never closed, never collected


@contextmanager
def _using() -> Iterator[None]:
    """Mark a local operation as running (a hand-over waits until none is)."""
    global _in_use
    with _idle:
        _in_use += 1
    try:
        yield
    finally:
        with _idle:
            _in_use -= 1
            _idle.notify_all()


def local_store(settings: Settings) -> Store:
    """This process's store for `settings`, opened (and for chDB advertised to the others) on first use.

    StoreLockedError when another process holds the embedded store (use `access()` to go through it).
    """
    from tracehouse.collector.owner.ownership import chdb_path
    from tracehouse.collector.store.store import Store

    key = (settings.store_url, settings.database)
    with _lock:
        store = _stores.get(key)
        if store is not None:
            _stores.move_to_end(key)
            return store
        store = _stores[key] = Store(settings.store_url, settings.database)
        path = chdb_path(settings.store_url)
        if path is not None and _owned is None:
            _become_owner(path, settings)
        while len(_stores) > MAX_OPEN_DATABASES:  # the newest stays open, so the engine never stops here
            old_key, old = _stores.popitem(last=False)
            _accesses.pop(old_key, None)
            old.close()
        return store


def _become_owner(path: Path, settings: Settings) -> None:
    global _owned, _exit_hook
    from tracehouse.collector.owner.ownership import Advertisement, advertise, new_secret
    from tracehouse.collector.owner.server import OwnerServer

    secret = new_secret()
    info = {"pid": os.getpid(), "kind": "sdk", "store": str(path)}
    try:
        server = OwnerServer(secret, _served_access, _served_records, info, release=_release, guard=_using).start()
        advertise(path, Advertisement(server.url, os.getpid(), secret, "sdk", str(settings.spool_dir)))
    except OSError as error:  # no loopback socket or a read-only dir: this process still works alone
        logger.warning("tracehouse: cannot serve the store to other processes (%s); they will wait for it", error)
        return
    _owned = _Owned(path, secret, server)
    if not _exit_hook:
        atexit.register(_withdraw_at_exit)
        _exit_hook = True


def _served_access(database: str) -> StoreAccess:
    """The owner's access to a database of its store, for a request of another process."""
    settings = runtime.settings
    if database and database != settings.database:
        settings = replace(settings, database=database)
    return local_access(settings)


def _served_records(database: str, body: bytes, token: Optional[str]) -> dict[str, Any]:
    from tracehouse.collector.ingest.writer import BadBatch, write_body

    store = _served_access(database).store
    try:
        result = write_body(store, body, token)
    except BadBatch as error:
        raise ValueError(str(error)) from None
    return {"accepted": result.rows, "rejected": len(result.rejected), "errors": result.rejected[:20],
            "unknown_types": result.unknown_types}  # fmt: skip


def local_access(settings: Settings) -> StoreAccess:
    """The store's operations, run in this process on its own store."""
    from tracehouse.collector.owner.access import StoreAccess
    from tracehouse.collector.store.keys import KeyStore
    from tracehouse.collector.sweeps.controller import controller_for

    key = (settings.store_url, settings.database)
    with _lock:
        found = _accesses.get(key)
        if found is None:
            store = local_store(settings)
            found = _accesses[key] = StoreAccess(
                store, lambda: _catch_up_locally(store), lambda: controller_for(store, _submit), lambda: KeyStore(store)
            )
        return found


def _submit(record: dict[str, Any]) -> None:
    """A record of the sweep controller, through this process's spool like every other record."""
    runtime.sink().submit(record)


def _catch_up_locally(store: Store) -> CatchUpReport:
    """Flush this process's records and ingest the spool into `store` when it is this process's store."""
    from tracehouse.collector.ingest.spool_ingest import SpoolIngester
    from tracehouse.collector.owner.access import CatchUpReport

    runtime.flush()
    settings = runtime.settings
    if (settings.store_url, settings.database) != (store.url, store.database):
        return CatchUpReport()  # another process's database: its records come through /api/v1/records
    report = SpoolIngester(store).ingest(settings.spool_dir)
    return CatchUpReport(report.rows, report.segments_done, report.rejected, report.problems, report.damaged_bytes,
                         report.set_aside)  # fmt: skip


def access() -> Access:
    """Where the store's operations run for the current settings: here, or at the store's owner."""
    from tracehouse.collector.owner.ownership import chdb_path, read_advertisement, store_locked
    from tracehouse.collector.store.engine import StoreLockedError, inherited_engine

    settings = runtime.settings
    if runtime.config_error is not None:  # tracing went quiet on a bad variable; reads say why
        raise runtime.config_error
    path = chdb_path(settings.store_url)
    if path is None:
        return local_access(settings)  # a ClickHouse server takes many clients
    deadline = time.monotonic() + OWNER_WAIT
    seen_pid = 0
    while True:
        with _lock:
            if _owned is not None and _owned.path == path:
                return local_access(settings)
        found = read_advertisement(path)
        if found is not None and found.pid != os.getpid():
            seen_pid = found.pid
            owner = _owner_client(found, settings.database)
            if owner.ping():
                return owner
        elif not inherited_engine() and not store_locked(path):
            try:
                return local_access(settings)
            except StoreLockedError:
                pass  # another process opened it just now: its advertisement follows
        if time.monotonic() > deadline:
            raise StoreError(_held_message(path, seen_pid))
        time.sleep(0.1)


def _held_message(path: Path, pid: int) -> str:
    from tracehouse.collector.store.engine import inherited_engine

    if inherited_engine() and not pid:
        return (f"the embedded store at {str(path)!r} cannot be opened in a forked child of the process that had "
                "it open, and no process serves it now")  # fmt: skip
    holder = f"process {pid}" if pid else "another process that does not serve it (an older tracehouse?)"
    return (f"the embedded store at {str(path)!r} is held by {holder}, which did not answer within "
            f"{OWNER_WAIT:g} s; wait for it to finish, or run `tracehouse serve` there")  # fmt: skip


def _owner_client(found: Any, database: str) -> OwnerAccess:
    from tracehouse.reads.owner_client import OwnerAccess

    key = (found.secret, database)
    with _lock:
        client = _owner_clients.get(key)
        if client is None:
            if len(_owner_clients) > 16:
                _owner_clients.clear()
            client = _owner_clients[key] = OwnerAccess(found, database)
        return client


def with_access(operation: Callable[[Access], T]) -> T:
    """`operation(access())`, looking the owner up again once if it went away meanwhile."""
    from tracehouse.reads.owner_client import OwnerGone

    for attempt in (1, 2):
        found = access()
        try:
            if isinstance(found, _owner_access_type()):
                return operation(found)
            with _using():
                return operation(found)
        except OwnerGone:
            with _lock:
                _owner_clients.clear()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _owner_access_type() -> type:
    from tracehouse.reads.owner_client import OwnerAccess

    return OwnerAccess


def _release() -> dict[str, Any]:
    """Hand the store over (a collector is starting on it): close every store, stop serving."""
    global _owned
    from tracehouse.collector.owner.ownership import withdraw

    with _idle:
        while _in_use > 1:  # this request is one
            _idle.wait(1.0)
        owned, _owned = _owned, None
        stores = list(_stores.values())
        _stores.clear()
        _accesses.clear()
        for store in stores:
            store.close()
        if owned is not None:
            withdraw(owned.path, owned.secret)
            threading.Thread(target=owned.server.stop, name="tracehouse-owner-stop", daemon=True).start()
    logger.info("tracehouse: handed the embedded store over to a collector; reads now go through it")
    return {"released": True, "pid": os.getpid()}


def _withdraw_at_exit() -> None:
    from tracehouse.collector.owner.ownership import withdraw

    owned = _owned
    if owned is not None and os.getpid() == owned.server.info.get("pid"):
        withdraw(owned.path, owned.secret)


def _after_fork_in_child() -> None:
    """A forked child owns nothing: it closes the inherited socket and forgets its parent's stores
    (never closing them: chDB's engine does not survive fork; see collector/_engine)."""
    global _lock, _idle, _in_use, _owned
    _lock = threading.RLock()
    _idle, _in_use = threading.Condition(_lock), 0
    if _owned is not None:
        _owned.server.abandon()
    _kept_after_fork.append((_owned, dict(_stores), dict(_accesses)))
    _owned = None
    _stores.clear()
    _accesses.clear()
    _owner_clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = ["OWNER_WAIT", "access", "local_access", "local_store", "with_access"]
