"""The content-addressed blob store: artifact and media files, stored once per SHA-256 of their bytes.

Local by default (`blobs/` in the data dir); any fsspec URL (`s3://bucket/prefix`, `gs://...`,
`memory://...`) when `blob_url` / TRACEHOUSE_BLOB_URL is set. A blob's key is
`sha256/<first 2 hex>/<other 62 hex>`; ClickHouse holds the references, never the bytes. Writes are
atomic (a temporary name, then a rename), so a killed writer never leaves a half blob under its key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union

from tracehouse._errors import ConfigError, NotFoundError, StoreError

CHUNK = 1024 * 1024
PathLike = Union[str, "os.PathLike[str]"]


def file_digest(path: PathLike) -> tuple[str, int]:
    """SHA-256 (hex) and size of a local file."""
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def write_atomically(target: PathLike, write: Callable[[Path], Any]) -> None:
    """`write(temp)` next to `target`, then rename it over `target`: a reader never sees half a file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tracehouse-partial")
    try:
        write(temp)
        os.replace(temp, target)
    except OSError as error:
        raise StoreError(f"cannot write {target}: {error}") from error
    finally:
        if temp.exists():
            temp.unlink()


def blob_key(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:]}"


class Blobs(Protocol):
    """What a blob store does (a local dir or fsspec URL: BlobStore; a collector: CollectorBlobStore)."""

    location: str

    def local_path(self, digest: str) -> Optional[Path]: ...
    def exists(self, digest: str) -> bool: ...
    def put_file(self, path: PathLike) -> tuple[str, int]: ...
    def put_bytes(self, data: bytes) -> tuple[str, int]: ...
    def fetch(self, digest: str, target: PathLike) -> None: ...
    def read_bytes(self, digest: str) -> bytes: ...


class BlobStore:
    """Put and fetch blobs by digest, in a local directory or at an fsspec URL."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._fs: Any = None
        self._root: Path | str
        if "://" in location and not location.startswith("file://"):
            try:
                import fsspec
            except ImportError:
                raise ConfigError(
                    "blob_url", f"{location!r} needs fsspec: pip install 'tracehouse[blobs]' (and the scheme's package)"
                ) from None
            self._fs, self._root = fsspec.core.url_to_fs(location)
        else:
            self._root = Path(location[len("file://") :] if location.startswith("file://") else location)

    def _local(self, digest: str) -> Path:
        assert isinstance(self._root, Path)
        return self._root / blob_key(digest)

    def local_path(self, digest: str) -> Optional[Path]:
        """Where a local store keeps the blob (None for an fsspec URL)."""
        return None if self._fs is not None else self._local(digest)

    def exists(self, digest: str) -> bool:
        if self._fs is not None:
            return bool(self._fs.exists(f"{self._root}/{blob_key(digest)}"))
        return self._local(digest).is_file()

    def put_file(self, path: PathLike) -> tuple[str, int]:
        """Store a local file; returns (digest, size). A blob already stored is not written again."""
        if self._fs is not None:
            digest, size = file_digest(path)
            if not self.exists(digest):
                self._fs.put_file(os.fspath(path), f"{self._root}/{blob_key(digest)}")
            return digest, size
        assert isinstance(self._root, Path)
        staging = self._root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        sha, size = hashlib.sha256(), 0
        fd, temp = tempfile.mkstemp(dir=staging)
        try:
            with open(path, "rb") as source, os.fdopen(fd, "wb") as target:
                while chunk := source.read(CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
                    target.write(chunk)
                target.flush()
                os.fsync(target.fileno())
            digest = sha.hexdigest()
            final = self._local(digest)
            if final.is_file():
                os.unlink(temp)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
            return digest, size
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes; returns (digest, size)."""
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, len(data)
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(data)
        try:
            self.put_file(handle.name)
        finally:
            os.unlink(handle.name)
        return digest, len(data)

    def fetch(self, digest: str, target: PathLike) -> None:
        """Copy a blob to `target` (atomically); NotFoundError when the store does not hold it."""
        if not self.exists(digest):
            raise NotFoundError(f"blob {digest} is not in the blob store at {self.location}")
        if self._fs is not None:
            write_atomically(
                target, lambda temp: self._fs.get_file(f"{self._root}/{blob_key(digest)}", os.fspath(temp))
            )
        else:
            write_atomically(target, lambda temp: shutil.copyfile(self._local(digest), temp))

    def read_bytes(self, digest: str) -> bytes:
        """A blob's bytes (for small media)."""
        if self._fs is not None:
            if not self.exists(digest):
                raise NotFoundError(f"blob {digest} is not in the blob store at {self.location}")
            return bytes(self._fs.cat_file(f"{self._root}/{blob_key(digest)}"))
        try:
            return self._local(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the blob store at {self.location}") from None


__all__ = ["CHUNK", "BlobStore", "Blobs", "PathLike", "blob_key", "file_digest", "write_atomically"]
