"""Who owns an embedded store: the advertisement its owner leaves in the store's directory.

chDB lets one process hold a data directory. That process (the owner: `tracehouse serve`, `ui`, or
an SDK process that opened the store to read) writes `owner.json` into the chDB directory: its URL,
pid, kind (`collector` or `sdk`), spool directory, and a per-start secret. The file is created
0600 and replaced atomically; other processes of the same user read it and call the owner with the
secret (`Authorization: Bearer <secret>`), so nobody else can. The owner itself never reads the
file back: it knows its secret, and the URL and pid are only for clients. A file whose pid is not
alive is stale and ignored; the owner removes it when it closes (only if it still holds its own
secret, so a successor's is never removed).

`store_locked(path)` asks the kernel whether another process holds the directory (the same
`flock` chDB takes on `status`), so a client never has to trigger chDB's own lock error.
"""

from __future__ import annotations

import errno
import fcntl
import hmac
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import orjson

from tracehouse.collector.store.processes import pid_alive

FILE_NAME = "owner.json"
OWNER_KEY_ID = "owner"  # the principal's key id for requests made with the owner secret


@dataclass(frozen=True)
class Advertisement:
    """What an owner tells the other processes on its store."""

    url: str
    pid: int
    secret: str
    kind: str  # "collector" (serve / ui) or "sdk" (a process that opened the store to read)
    spool_dir: str = ""

    def matches(self, presented: str) -> bool:
        """Whether `presented` is this owner's secret (constant time)."""
        return bool(presented) and hmac.compare_digest(presented.encode(), self.secret.encode())


def new_secret() -> str:
    """A fresh per-start secret."""
    return "tho_" + secrets.token_urlsafe(32)


def chdb_path(store_url: str) -> Optional[Path]:
    """The directory of an embedded store URL (`chdb:///path`), None for a ClickHouse server."""
    if not store_url.startswith("chdb://"):
        return None
    return Path(store_url[len("chdb://") :])


def advertisement_path(store_dir: Path) -> Path:
    return store_dir / FILE_NAME


def advertise(store_dir: Path, advertisement: Advertisement) -> None:
    """Write the advertisement (0600, atomically: a reader sees the old file or the new one)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    target = advertisement_path(store_dir)
    temp = target.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, orjson.dumps(asdict(advertisement)))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)


def read_advertisement(store_dir: Path) -> Optional[Advertisement]:
    """The advertisement of a live owner, or None (no file, unreadable, or its pid is gone)."""
    try:
        data = orjson.loads(advertisement_path(store_dir).read_bytes())
        found = Advertisement(
            url=str(data["url"]), pid=int(data["pid"]), secret=str(data["secret"]), kind=str(data["kind"]),
            spool_dir=str(data.get("spool_dir") or ""),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if pid_alive(found.pid) else None


def withdraw(store_dir: Path, secret: str) -> None:
    """Remove the advertisement if it is still ours (a successor's is left alone)."""
    path = advertisement_path(store_dir)
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and hmac.compare_digest(str(data.get("secret", "")).encode(), secret.encode()):
        path.unlink(missing_ok=True)


def store_locked(store_dir: Path) -> bool:
    """Whether another process holds the embedded store (chDB's `flock` on `status`); False when no
    one does or the directory has never been opened. Never call it on a store this process holds."""
    try:
        fd = os.open(store_dir / "status", os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


__all__ = [
    "OWNER_KEY_ID", "Advertisement", "advertise", "chdb_path", "new_secret", "pid_alive", "read_advertisement",
    "store_locked", "withdraw",
]  # fmt: skip
