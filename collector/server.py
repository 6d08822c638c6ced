"""`tracehouse serve`: the collector process. It owns the store and is its only writer.

It runs the HTTP app on uvicorn, ingests the local spool directory every half second (records
written by local processes appear within about a second), and on SIGTERM/SIGINT stops taking
requests, finishes the ones in flight, inserts everything accepted, then exits.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.http.guard import allowed_hosts
from tracehouse.collector.ingest.wal import CollectorWal
from tracehouse.collector.ingest.writer import BatchWriter, WriteResult
from tracehouse.collector.owner.ownership import new_secret
from tracehouse.collector.store.store import Store

logger = logging.getLogger("tracehouse")


@dataclass(frozen=True)
class ServeOptions:
    """Options of `tracehouse serve`."""

    host: str = "127.0.0.1"
    port: int = 4318
    store_url: str = ""
    database: str = "tracehouse"
    spool_dir: Optional[Path] = None
    default_project: str = "default"
    spool_interval: float = 0.5
    require_keys: bool = False
    max_backlog: int = 2_000_000  # OTLP spans answered but not yet inserted before the collector answers 503
    blob_location: str = ""  # the blob store it serves (artifact and media contents); "" = none
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides loopback and `host` ("*": any)
    body_timeout: float = 30.0


def is_loopback(host: str) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WriterDestination:
    """Spool ingest through the collector's writer (so the store keeps a single writer)."""

    def __init__(self, writer: BatchWriter, timeout: float = 60.0) -> None:
        self.writer = writer
        self.timeout = timeout

    def write(self, records: list[dict[str, Any]], token: str) -> WriteResult:
        """Submit and wait until stored."""
        return self.writer.submit(records, token).result(self.timeout)

    def write_raw(self, payloads: list[bytes], token: str) -> Optional[WriteResult]:
        """Submit the frames undecoded (the store maps them) and wait until stored."""
        from tracehouse.collector.ingest.spool import join_json_arrays

        body = join_json_arrays(payloads)
        return None if body is None else self.writer.submit_json(body, token).result(self.timeout)


class SpoolFollower(threading.Thread):
    """Ingests a spool directory until stopped: back to back while there is work, else every `interval`."""

    def __init__(self, writer: BatchWriter, spool_dir: Path, interval: float) -> None:
        super().__init__(name="tracehouse-spool-follower", daemon=True)
        from tracehouse.collector.ingest.spool_ingest import SpoolIngester

        self.spool_dir, self.interval = spool_dir, interval
        self.ingested = 0  # records taken from the spool (stored or rejected)
        # two ranges at once: the writer's two threads insert them side by side
        self._ingester = SpoolIngester(WriterDestination(writer), max_inflight=2)
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def catch_up(self) -> int:
        """One ingest pass now (reads call this, so they see every answered request); rows taken."""
        with self._lock:
            report = self._ingester.ingest(self.spool_dir)
            self.ingested += report.rows + report.rejected
            return report.rows + report.rejected

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                if self.catch_up():
                    continue
            except Exception as error:  # the store is busy or down: the spool keeps the records
                logger.warning("tracehouse collector: spool ingest paused: %s", error)
            self._stop_event.wait(self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after a last pass, so everything in the spool is inserted."""
        self._stop_event.set()
        self.join(timeout)
        try:
            self.catch_up()
        except Exception as error:
            logger.warning("tracehouse collector: %s; the spool keeps the rest for the next start", error)


@dataclass
class CollectorParts:
    """A running collector's pieces (tests drive `app` in-process; `close` stops them in order)."""

    app: Any
    store: Store
    writer: BatchWriter
    follower: SpoolFollower
    wal: CollectorWal
    owner_secret: str = ""

    def close(self) -> None:
        """Stop taking work, insert everything accepted, release the store."""
        self.wal.close()
        self.follower.stop()
        self.writer.close()
        self.store.close()


def build(options: ServeOptions) -> CollectorParts:
    """The app and its parts; the follower is running."""
    from tracehouse.collector.http.app import CollectorConfig, create_app
    from tracehouse.collector.store.keys import KeyStore

    store = Store(options.store_url, options.database)
    keys = KeyStore(store) if options.require_keys else None
    if keys is not None and not keys.any_active():
        store.close()
        raise ConfigError(
            "keys", "no API key exists yet: create one first with `tracehouse keys create --admin` (or --project P)"
        )
    spool_dir = options.spool_dir or Path(tempfile.mkdtemp(prefix="tracehouse-collector-"))
    writer = BatchWriter(store)
    wal = CollectorWal(spool_dir)
    follower = SpoolFollower(writer, spool_dir, options.spool_interval)
    follower.start()
    secret = new_secret()
    config = CollectorConfig(
        default_project=options.default_project, max_backlog=options.max_backlog, owner_secret=secret,
        allowed_hosts=allowed_hosts(options.host, options.allowed_hosts), body_timeout=options.body_timeout,
    )  # fmt: skip
    blobs = None
    if options.blob_location:
        from tracehouse.collector.blobs import BlobStore

        blobs = BlobStore(options.blob_location)
    app = create_app(store, writer, config, keys, wal=wal, follower=follower, blobs=blobs)
    return CollectorParts(app, store, writer, follower, wal, secret)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn re-raises SIGTERM after its graceful stop, which would kill us before the writer
        drains; here a signal only asks for the stop, and serve() then writes everything accepted."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return Server


def serve(options: ServeOptions) -> None:
    """Run the collector until SIGTERM/SIGINT; everything accepted is written before it returns."""
    try:
        import uvicorn
    except ImportError as error:
        raise ConfigError("serve", "the collector needs its extra: pip install 'tracehouse[server]'") from error
    from tracehouse.collector.owner.takeover import Advertiser, take_over

    _Server = _server_class()
    take_over(options.store_url)
    parts = build(options)
    gc.freeze()  # the long-lived start-up objects leave the collector's GC passes (cheaper per request)
    gc.set_threshold(50_000, 20, 20)  # decoding makes many short-lived dicts: collect young objects less often
    config = uvicorn.Config(parts.app, host=options.host, port=options.port, log_level="warning", lifespan="off")
    server = _Server(config)
    advertiser = Advertiser(options.store_url, options.host, parts.owner_secret, options.spool_dir)
    advertiser.start(server)
    logger.warning("tracehouse collector listening on http://%s:%d (store %s)", options.host, options.port,
                   options.store_url)  # fmt: skip
    try:
        server.run()
    finally:
        advertiser.withdraw()
        parts.close()
