"""API keys: created once and shown once, stored hashed, scoped to a project or admin.

A key reads `thk_<id>_<secret>`. The store keeps the id, the scope and the SHA-256 of the secret
(the secret is 32 random bytes, so a plain hash is enough); verification looks the id up and
compares hashes in constant time. Lookups are cached for a few seconds; revocation takes effect
within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from tracehouse._errors import ConfigError

if TYPE_CHECKING:
    from tracehouse.collector.store.store import Store

_KEY_RE = re.compile(r"^thk_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,})$")
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an admin, or the holder of a key for one project."""

    project: Optional[str]  # None for admin
    key_id: str = ""

    @property
    def admin(self) -> bool:
        """True for admin keys (and for a collector running without keys)."""
        return self.project is None


ANONYMOUS_ADMIN = Principal(project=None, key_id="")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyStore:
    """API keys in the store's `api_keys` table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, Optional[tuple[str, str, bool]]]] = {}
        self._lock = threading.Lock()

    def create(self, project: Optional[str], name: str = "") -> tuple[str, str]:
        """A new key for `project` (None: admin); returns (key id, the key — shown this once)."""
        if project is not None and (not isinstance(project, str) or not project):
            raise ConfigError("project", f"expected a project name, got {project!r}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        self.store.insert(
            "api_keys",
            {
                "key_id": [key_id], "name": [name], "project": [project or ""], "admin": [project is None],
                "secret_hash": [_hash(secret)], "created_at": [now], "revoked": [False], "version": [time.time_ns()],
            },
        )  # fmt: skip
        return key_id, f"thk_{key_id}_{secret}"

    def list(self) -> list[dict[str, object]]:
        """Every key (never the secret): id, name, project, admin, created_at, revoked."""
        columns, rows = self.store.query_rows(
            "SELECT key_id, name, project, admin, created_at, revoked FROM api_keys FINAL ORDER BY created_at"
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def any_active(self) -> bool:
        """Whether at least one key can be used."""
        _, rows = self.store.query_rows("SELECT count() FROM api_keys FINAL WHERE NOT revoked")
        return bool(rows and rows[0][0])

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False if there is no such key."""
        _, rows = self.store.query_rows(
            "SELECT name, project, admin, secret_hash, created_at FROM api_keys FINAL WHERE key_id = {k:String}",
            {"k": key_id},
        )
        if not rows:
            return False
        name, project, admin, secret_hash, created_at = rows[0]
        self.store.insert(
            "api_keys",
            {
                "key_id": [key_id], "name": [name], "project": [project], "admin": [admin],
                "secret_hash": [secret_hash], "created_at": [created_at], "revoked": [True],
                "version": [time.time_ns()],
            },
        )  # fmt: skip
        with self._lock:
            self._cache.pop(key_id, None)
        return True

    def verify(self, presented: str) -> Optional[Principal]:
        """The principal of a presented key, or None for a malformed, unknown or revoked one."""
        match = _KEY_RE.match(presented.strip())
        if not match:
            return None
        key_id, secret = match.groups()
        entry = self._lookup(key_id)
        if entry is None or not hmac.compare_digest(entry[0], _hash(secret)):
            return None
        return Principal(project=None if entry[2] else entry[1], key_id=key_id)

    def _lookup(self, key_id: str) -> Optional[tuple[str, str, bool]]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is not None and cached[0] > now:
                return cached[1]
        _, rows = self.store.query_rows(
            "SELECT secret_hash, project, admin FROM api_keys FINAL WHERE key_id = {k:String} AND NOT revoked",
            {"k": key_id},
        )
        entry = (str(rows[0][0]), str(rows[0][1]), bool(rows[0][2])) if rows else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now + _CACHE_SECONDS, entry)
        return entry
