"""`th.Artifact`: versioned files (datasets, models, prompts) with W&B's artifact API.

Build one with `add_file`, `add_dir`, `add_reference` and `new_file`, then `run.log_artifact(art,
aliases=[...])`: file contents go to the content-addressed blob store (once per SHA-256, so an
unchanged file costs nothing in the next version) and a record with the manifest goes through the
spool. The store numbers versions (`v0`, `v1`, ...) per name, and only when the manifest's digest
changes; `latest` follows the newest version. `run.use_artifact("name:alias")` returns the logged
version: `download(root)`, `get_entry(name)`, `verify(root)`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Optional, Union

import orjson

from tracehouse._errors import ConfigError, NotFoundError
from tracehouse.tracking.blobs import blob_store, file_digest

if TYPE_CHECKING:
    from tracehouse.tracking.artifacts.lineage import LineageRun

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
ALIAS_RE = NAME_RE
PathLike = Union[str, "os.PathLike[str]"]


def check_name(name: Any) -> str:
    """An artifact name: 1-128 letters, digits, '_', '.', '-' (ConfigError otherwise)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("name", f"artifact names take 1-128 letters, digits, '_', '.', '-'; got {name!r}")
    return name


def check_aliases(aliases: Any) -> list[str]:
    """Custom aliases: names as for artifacts, not `v<number>` (those are versions)."""
    if aliases is None:
        return []
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError("aliases", f"expected a list of strings, got {aliases!r}")
    for alias in aliases:
        if not ALIAS_RE.match(alias) or re.fullmatch(r"v\d+", alias):
            raise ConfigError("aliases", f"{alias!r}: use letters, digits, '_', '.', '-', not v<number>")
    return list(dict.fromkeys(aliases))


def _entry_path(name: Any) -> str:
    from tracehouse.collector.store.rows.artifacts import entry_path_problem

    path = name.replace(os.sep, "/").rstrip("/") if isinstance(name, str) else name
    problem = entry_path_problem(path)
    if problem is not None:
        raise ConfigError("name", f"an entry path must be relative and stay inside the artifact: {name!r} {problem}")
    return str(path)


def _contained(root: Path, path: str) -> Path:
    """`root / path`, refused (ConfigError) when the path or a symlink under `root` leads outside it."""
    target = root / _entry_path(path)
    if not target.resolve().is_relative_to(root.resolve()):
        raise ConfigError("root", f"{path!r} would land outside {str(root)!r} (through {str(target.resolve())!r})")
    return target


@dataclass
class ArtifactEntry:
    """One file of an artifact: its path inside the artifact, SHA-256, size, and `ref` for references."""

    path: str
    digest: str
    size: int
    ref: Optional[str] = None
    local_path: Optional[str] = field(default=None, repr=False)  # where the file is before logging
    _artifact: Optional[Artifact] = field(default=None, repr=False, compare=False)

    def download(self, root: Optional[PathLike] = None, allow_local_references: bool = False) -> str:
        """Copy this file to `root/path` (default: the artifact's download root); returns the path."""
        if self._artifact is None:
            raise ConfigError("entry", "this entry does not belong to an artifact")
        root_path = Path(root or self._artifact._default_root())
        return str(self._artifact._download_entry(self, root_path, allow_local_references))


class Artifact:
    """A named, typed set of files; `log_artifact` stores a version, `use_artifact` reads one back."""

    def __init__(
        self,
        name: str,
        type: str,
        description: Optional[str] = None,
        metadata: Optional[dict[str, Any]] = None,
        incremental: bool = False,
    ) -> None:
        self.name = check_name(name)
        if not isinstance(type, str) or not type.strip():
            raise ConfigError("type", f"expected a non-empty string such as 'dataset' or 'model', got {type!r}")
        if description is not None and not isinstance(description, str):
            raise ConfigError("description", f"expected a string, got {description!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise ConfigError("metadata", f"expected a dict, got {metadata!r}")
        try:
            orjson.dumps(metadata or {})
        except TypeError as error:
            raise ConfigError("metadata", f"must be JSON-serializable: {error}") from None
        if not isinstance(incremental, bool):
            raise ConfigError("incremental", f"expected True or False, got {incremental!r}")
        self.type = type
        self.incremental = incremental  # W&B's: logged on top of the latest version's files
        self._removed: set[str] = set()  # paths (and folders) remove() took out of an incremental artifact
        self.description = description or ""
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.project: Optional[str] = None
        self.version: Optional[str] = None  # "v3", once stored (after use_artifact, or wait())
        self.aliases: list[str] = []
        self.logged_by_run: Optional[str] = None
        self._entries: dict[str, ArtifactEntry] = {}
        self._staging: Optional[tempfile.TemporaryDirectory[str]] = None
        self._frozen = False  # logged or read back: no more additions

    # --- building -------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._frozen:
            raise ConfigError("artifact", f"{self.name} was logged or read back; build a new Artifact to change it")

    def _add(self, entry: ArtifactEntry, overwrite: bool) -> ArtifactEntry:
        if entry.path in self._entries and not overwrite:
            existing = self._entries[entry.path]
            if existing.digest == entry.digest and existing.ref == entry.ref:
                return existing
            raise ConfigError("name", f"{entry.path!r} is already in {self.name}; pass overwrite=True to replace it")
        entry._artifact = self
        self._entries[entry.path] = entry
        return entry

    def add_file(self, local_path: PathLike, name: Optional[str] = None, overwrite: bool = False) -> ArtifactEntry:
        """Add a local file, as `name` inside the artifact (default: its file name)."""
        self._check_open()
        path = Path(local_path)
        if not path.is_file():
            raise ConfigError("local_path", f"{str(path)!r} is not a file")
        digest, size = file_digest(path)
        return self._add(ArtifactEntry(_entry_path(name or path.name), digest, size, local_path=str(path)), overwrite)

    def add_dir(self, local_path: PathLike, name: Optional[str] = None) -> list[ArtifactEntry]:
        """Add every file under a directory, keeping relative paths (under `name/` when given)."""
        self._check_open()
        root = Path(local_path)
        if not root.is_dir():
            raise ConfigError("local_path", f"{str(root)!r} is not a directory")
        prefix = _entry_path(name) + "/" if name else ""
        files = [file for file in sorted(root.rglob("*")) if file.is_file()]
        inside = root.resolve()
        for file in files:  # every file is checked before any is added
            if not file.resolve().is_relative_to(inside):
                raise ConfigError("local_path", f"{str(file)!r} links outside {str(root)!r} (to "
                                                f"{str(file.resolve())!r}); add it with add_file or add_reference "
                                                "if you mean it")  # fmt: skip
        return [self.add_file(file, prefix + file.relative_to(root).as_posix()) for file in files]

    def add_reference(self, uri: str, name: Optional[str] = None, checksum: bool = True) -> list[ArtifactEntry]:
        """Track a file or directory by URI without copying it: `file://`, a local path, or any fsspec URL.

        With `checksum` the content's digest is recorded (local files are hashed; remote objects use
        their ETag or checksum when the filesystem gives one), so a changed source makes a new version.
        """
        self._check_open()
        if not isinstance(uri, str) or not uri:
            raise ConfigError("uri", f"expected a URI, got {uri!r}")
        if "://" not in uri or uri.startswith("file://"):
            local = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
            if local.is_dir():
                files = sorted(f for f in local.rglob("*") if f.is_file())
                base = _entry_path(name) + "/" if name else ""
                return [self._local_reference(f, base + f.relative_to(local).as_posix(), checksum) for f in files]
            if not local.is_file():
                raise ConfigError("uri", f"{uri!r}: no such file or directory")
            return [self._local_reference(local, name or local.name, checksum)]
        return [self._remote_reference(uri, name, checksum)]

    def _local_reference(self, path: Path, name: str, checksum: bool) -> ArtifactEntry:
        digest, size = file_digest(path) if checksum else (_text_digest(path.resolve().as_uri()), path.stat().st_size)
        return self._add(ArtifactEntry(_entry_path(name), digest, size, ref=path.resolve().as_uri()), False)

    def _remote_reference(self, uri: str, name: Optional[str], checksum: bool) -> ArtifactEntry:
        try:
            import fsspec
        except ImportError:
            raise ConfigError("uri", f"{uri!r} needs fsspec: pip install 'tracehouse[blobs]'") from None
        fs, path = fsspec.core.url_to_fs(uri)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise ConfigError("uri", f"{uri!r}: no such object") from None
        tag = next((str(info[k]) for k in ("ETag", "etag", "md5", "checksum", "crc32c") if info.get(k)), None)
        digest = _text_digest(f"{uri}\0{tag or ''}\0{info.get('size')}" if checksum else uri)
        entry_name = name or path.rstrip("/").rsplit("/", 1)[-1]
        return self._add(ArtifactEntry(_entry_path(entry_name), digest, int(info.get("size") or 0), ref=uri), False)

    @contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: Optional[str] = None) -> Iterator[IO[Any]]:
        """Write a file straight into the artifact: `with art.new_file("labels.json") as f: ...`."""
        self._check_open()
        path = _entry_path(name)
        if path in self._entries:
            raise ConfigError("name", f"{path!r} is already in {self.name}")
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="tracehouse-artifact-")
        target = Path(self._staging.name) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
        self.add_file(target, path)

    def add(self, obj: Any, name: str) -> ArtifactEntry:
        """Add a `th.Table`, `th.Histogram` or `th.Image` as `<name>.<type>.json` (read back with `get`)."""
        from tracehouse.tracking.blobs import blob_store
        from tracehouse.tracking.media import is_media

        if not is_media(obj):
            raise ConfigError("obj", f"expected a th.Table, th.Histogram or th.Image, got {type(obj).__name__}")
        value = obj._to_value(blob_store().put_bytes)
        with self.new_file(f"{_entry_path(name)}.{value['_type']}.json", mode="wb") as handle:
            handle.write(orjson.dumps(value))
        return self._entries[f"{_entry_path(name)}.{value['_type']}.json"]

    def get(self, name: str) -> Any:
        """The object added with `add(obj, name)`: a `th.Table` as it was, or the stored dict of others."""
        from tracehouse.tracking.blobs import blob_store
        from tracehouse.tracking.media import Table

        path = next((p for p in self._entries if p.startswith(f"{_entry_path(name)}.") and p.endswith(".json")), None)
        if path is None:
            raise NotFoundError(f"nothing was added as {name!r} to {self.qualified_name}")
        entry = self._entries[path]
        data = Path(entry.local_path).read_bytes() if entry.local_path else blob_store().read_bytes(entry.digest)
        value = orjson.loads(data)
        if value.get("_type") == "table":
            return Table(columns=value["columns"], data=value["data"])
        return value

    def remove(self, item: Union[PathLike, ArtifactEntry]) -> None:
        """Take a file (or every file under a folder) out of the artifact (W&B's `Artifact.remove`).

        In an incremental artifact this also drops it from the files kept from the latest version;
        elsewhere a path the artifact does not hold is a NotFoundError."""
        self._check_open()
        path = _entry_path(item.path if isinstance(item, ArtifactEntry) else os.fspath(item))
        found = [p for p in self._entries if p == path or p.startswith(path + "/")]
        if not found and not self.incremental:
            raise NotFoundError(
                f"{path!r} is not in {self.name} (it holds: {', '.join(self.files()[:20]) or 'nothing'})"
            )
        for each in found:
            del self._entries[each]
        if self.incremental:
            self._removed.add(path)

    def _keep_latest(self, files: list[tuple[str, str, int, str]]) -> None:
        """Incremental: add the latest version's files (path, digest, size, ref) not replaced or removed."""
        for path, digest, size, ref in files:
            removed = any(path == r or path.startswith(r + "/") for r in self._removed)
            if path not in self._entries and not removed:
                self._add(ArtifactEntry(path, digest, size, ref=ref or None), overwrite=False)

    def save(self, project: Optional[str] = None) -> Artifact:
        """Log this artifact outside `run.log_artifact` (W&B's `Artifact.save`): through the active run,
        else under a short run of job_type "auto" in `project` (default: the configured project);
        returns it with its `version` set."""
        from tracehouse.tracking.artifacts.record import save_artifact

        return save_artifact(self, project)  # type: ignore[no-any-return]

    # --- reading --------------------------------------------------------------------------------
    @property
    def digest(self) -> str:
        """SHA-256 over the manifest (paths and content digests): equal content, equal digest."""
        lines = sorted(f"{e.path}\t{e.digest}\t{e.ref or ''}" for e in self._entries.values())
        return _text_digest("\n".join(lines))

    @property
    def size(self) -> int:
        return sum(e.size for e in self._entries.values())

    @property
    def qualified_name(self) -> str:
        """`project/name:version` once stored, else `name`."""
        return f"{self.project}/{self.name}:{self.version}" if self.version else self.name

    @property
    def manifest(self) -> list[ArtifactEntry]:
        """The entries, by path."""
        return [self._entries[path] for path in sorted(self._entries)]

    def get_entry(self, name: str) -> ArtifactEntry:
        """The entry stored as `name`; NotFoundError naming what the artifact holds otherwise."""
        entry = self._entries.get(_entry_path(name))
        if entry is None:
            held = ", ".join(sorted(self._entries)[:20]) or "nothing"
            raise NotFoundError(f"{name!r} is not in {self.qualified_name} (it holds: {held})")
        return entry

    def _default_root(self) -> Path:
        return Path("artifacts") / f"{self.name}:{self.version or 'staged'}"

    def _download_entry(self, entry: ArtifactEntry, root: Path, allow_local_references: bool = False) -> Path:
        target = _contained(root, entry.path)
        local_reference = entry.ref is not None and entry.ref.startswith("file://")
        if local_reference and not allow_local_references:
            raise ConfigError("allow_local_references", f"{self.qualified_name} references {entry.ref}, a file on "
                              "this machine; pass allow_local_references=True to copy it")  # fmt: skip
        if target.is_file() and target.stat().st_size == entry.size and file_digest(target)[0] == entry.digest:
            return target  # already there (a cache hit)
        if entry.local_path is not None and entry.ref is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.local_path, target)
        elif entry.ref is not None:
            _copy_reference(entry.ref, target)
        else:
            blob_store().fetch(entry.digest, target)
        return target

    def download(self, root: Optional[PathLike] = None, allow_local_references: bool = False) -> str:
        """Copy every file to `root` (default `./artifacts/<name>:<version>`); returns the root.

        Every path stays inside `root` (a manifest path or a symlink that leads out is a ConfigError).
        `file://` references are copied from this machine only with `allow_local_references=True`:
        an artifact logged elsewhere must not make this process read local files on its own."""
        target = Path(root) if root is not None else self._default_root()
        if not allow_local_references:
            local = [e.ref for e in self.manifest if e.ref is not None and e.ref.startswith("file://")]
            if local:
                raise ConfigError(
                    "allow_local_references",
                    f"{self.qualified_name} references {len(local)} file(s) "
                    f"on this machine ({local[0]}, ...); pass allow_local_references=True to copy them",
                )
        for entry in self.manifest:
            self._download_entry(entry, target, allow_local_references)
        return str(target)

    def verify(self, root: Optional[PathLike] = None) -> None:
        """Check a download: every file present with its recorded digest, nothing extra (ValueError)."""
        target = Path(root) if root is not None else self._default_root()
        problems = []
        for entry in self.manifest:
            path = _contained(target, entry.path)
            if not path.is_file():
                problems.append(f"missing {entry.path}")
            elif (entry.ref is None or entry.ref.startswith("file://")) and file_digest(path)[0] != entry.digest:
                problems.append(f"changed {entry.path}")
        if target.is_dir():
            extra = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} - set(self._entries)
            problems.extend(f"unexpected {path}" for path in sorted(extra))
        if problems:
            raise ValueError(f"{self.qualified_name} does not match {target}: {'; '.join(problems[:20])}")

    def wait(self) -> Artifact:
        """Block until the store holds this logged artifact and set its `version` (reads catch up first).

        StoreError for an artifact of an offline run, which the store has not seen yet."""
        from tracehouse._errors import StoreError
        from tracehouse.tracking.artifacts.reads import stored_version

        if self.version is None:
            if self.project is None:
                raise ConfigError("artifact", f"{self.name} was not logged: run.log_artifact(artifact) first")
            self.version = stored_version(self.project, self.name, self.digest)
            if self.version is None:
                raise StoreError(f"{self.name} is not in the store yet (an offline run's? run `tracehouse sync`)")
        return self

    def logged_by(self) -> Optional[LineageRun]:
        """The run that logged this version (a read-only view that compares equal to its id)."""
        from tracehouse.tracking.artifacts.lineage import LineageRun

        if self.logged_by_run is None or self.project is None:
            return None
        return LineageRun(self.project, self.logged_by_run)

    def used_by(self) -> list[LineageRun]:
        """The runs that used this version (`use_artifact`), oldest first (views equal to their ids)."""
        from tracehouse.tracking.artifacts.lineage import LineageRun
        from tracehouse.tracking.artifacts.reads import lineage

        self.wait()
        assert self.project is not None and self.version is not None
        frame = lineage(self.project, self.name, int(self.version[1:]))
        return [LineageRun(self.project, str(r)) for r in frame[frame["direction"] == "input"]["run_id"]]

    def files(self) -> list[str]:
        """The paths the artifact holds."""
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Artifact(name={self.name!r}, type={self.type!r}, version={self.version!r}, files={len(self._entries)})"


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _copy_reference(uri: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        source = Path(unquote(urlparse(uri).path))
        if not source.is_file():
            raise NotFoundError(f"the referenced file {uri} is gone")
        shutil.copyfile(source, target)
        return
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    fs.get_file(path, str(target))
