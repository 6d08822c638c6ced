"""The blob store of a collector (`/api/v1/blobs`), used when an endpoint is set and no `blob_url`:
artifact and media contents go where the records go, so any machine that reads the runs can fetch them."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any, Optional, Union

from tracehouse._errors import NotFoundError, StoreError
from tracehouse.collector.blobs import PathLike, file_digest, write_atomically


class CollectorBlobStore:
    """HEAD / GET / PUT blobs by SHA-256 at a `tracehouse serve` collector."""

    def __init__(self, endpoint: str, api_key: Optional[str] = None, timeout: float = 300.0) -> None:
        self.location = f"{endpoint.rstrip('/')}/api/v1/blobs"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    def _open(self, method: str, digest: str, body: Union[bytes, IO[bytes], None] = None, size: int = 0) -> Any:
        headers = dict(self._headers)
        if body is not None:
            headers.update({"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        request = urllib.request.Request(f"{self.location}/{digest}", data=body, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise NotFoundError(f"blob {digest} is not in the collector's blob store") from None
            detail = error.read()[:300].decode("utf-8", "replace")
            raise StoreError(f"collector answered {error.code} for blob {digest}: {detail}") from None
        except OSError as error:
            raise StoreError(f"collector blob store {self.location} unreachable: {error}") from error

    def local_path(self, digest: str) -> Optional[Path]:
        return None

    def exists(self, digest: str) -> bool:
        try:
            self._open("HEAD", digest).close()
        except NotFoundError:
            return False
        return True

    def put_file(self, path: PathLike) -> tuple[str, int]:
        """Upload a local file unless the collector has it; returns (digest, size)."""
        digest, size = file_digest(path)
        if not self.exists(digest):
            with open(path, "rb") as handle:
                self._open("PUT", digest, handle, size).close()
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._open("PUT", digest, data, len(data)).close()
        return digest, len(data)

    def fetch(self, digest: str, target: PathLike) -> None:
        def download(temp: Path) -> None:
            with self._open("GET", digest) as response, open(temp, "wb") as out:
                shutil.copyfileobj(response, out, 1024 * 1024)

        write_atomically(target, download)

    def read_bytes(self, digest: str) -> bytes:
        with self._open("GET", digest) as response:
            return bytes(response.read())
