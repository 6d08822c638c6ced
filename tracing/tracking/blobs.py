"""The blob store of the current settings: where artifact, file and media contents go.

`blob_url` when set, else the collector's blob store when an endpoint is set, else `blobs/` in the
data dir. The stores themselves (content-addressed by SHA-256, local or fsspec) are the
collector's (`collector/blobs.py`), so a collector and an SDK process read the same layout.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Optional

from tracehouse.collector.blobs import Blobs, BlobStore, PathLike, blob_key, file_digest, write_atomically

_stores: dict[str, Any] = {}
_lock = threading.Lock()


def blob_store(location: Optional[str] = None, local: bool = False) -> Blobs:
    """The blob store of the current settings (or at `location`): `blob_url` when set, else the
    collector's when an endpoint is set (unless `local`: offline runs keep blobs here until sync),
    else `blobs/` in the data dir."""
    from tracehouse.spans.runtime import runtime

    settings = runtime.settings
    if location is None and settings.endpoint and not settings.blob_url and not local:
        key = f"collector:{settings.endpoint}:{settings.api_key}"
        with _lock:
            if key not in _stores:
                from tracehouse.tracking.remote_blobs import CollectorBlobStore

                _stores[key] = CollectorBlobStore(settings.endpoint, settings.api_key)
            return _stores[key]  # type: ignore[no-any-return]
    if local and not settings.blob_url:
        location = location or str((settings.data_dir / "blobs").resolve())
    location = location or settings.blob_location
    with _lock:
        if location not in _stores:
            _stores[location] = BlobStore(location)
        return _stores[location]  # type: ignore[no-any-return]


def push_local_blobs(target: Blobs, data_dir: Optional[Path] = None) -> int:
    """Copy the blobs of a local store (`blobs/` in the data dir, or in `data_dir`) that `target` lacks;
    returns how many.

    `tracehouse sync` does this before it sends offline runs to a collector (or another data dir's
    records to this store), so their artifacts and media arrive with their records."""
    from tracehouse.spans.runtime import runtime

    root = (data_dir or runtime.settings.data_dir) / "blobs" / "sha256"
    pushed = 0
    for path in sorted(root.glob("??/*")) if root.is_dir() else ():
        digest = path.parent.name + path.name
        if len(digest) == 64 and not target.exists(digest):
            target.put_file(path)
            pushed += 1
    return pushed


__all__ = [
    "BlobStore",
    "Blobs",
    "PathLike",
    "blob_key",
    "blob_store",
    "file_digest",
    "push_local_blobs",
    "write_atomically",
]
