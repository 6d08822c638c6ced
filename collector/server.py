"""`tracehouse serve`: the collector process. It owns the store and is its only writer.

It runs the HTTP app on uvicorn, ingests the local spool directory every half second (records
written by local processes appear within about a second), and on SIGTERM/SIGINT stops taking
requests, finishes the ones in flight, inserts everything accepted, then exits.
"""

from __future__ import annotations

import errno
import gc
import ipaddress
import logging
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse._errors import ConfigError
from tracehouse.collector.http.guard import allowed_hosts
from tracehouse.collector.ingest.batch_writer import BatchWriter
from tracehouse.collector.ingest.follower import SpoolFollower
from tracehouse.collector.ingest.wal import CollectorWal
from tracehouse.collector.owner.ownership import new_secret
from tracehouse.collector.store.engine import redact_url
from tracehouse.collector.store.store import Store

if TYPE_CHECKING:
    from tracehouse.collector.grpc.receiver import GrpcReceiver

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
    max_body_bytes: int = 32 * 1024 * 1024  # an OTLP or records request body (after decompression: 4x)
    grpc_port: int = 0  # OTLP/gRPC beside HTTP (`tracehouse serve` defaults to 4317); 0 = off
    forward_otlp: str = ""  # an OTLP/HTTP endpoint that gets a copy of what is received ("" = none)


def is_loopback(host: str) -> bool:
    """True for localhost / 127.0.0.0/8 / ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class CollectorParts:
    """A running collector's pieces (tests drive `app` in-process; `close` stops them in order)."""

    app: Any
    store: Store
    writer: BatchWriter
    follower: SpoolFollower
    wal: CollectorWal
    owner_secret: str = ""
    grpc: Optional[GrpcReceiver] = None  # started by start_grpc

    def start_grpc(self, host: str, port: int) -> int:
        """Serve OTLP/gRPC on host:port (0: a free port); the port bound. ConfigError when it cannot bind."""
        from tracehouse.collector.grpc.receiver import GrpcReceiver

        self.grpc = GrpcReceiver(self.app.state.collector, host, port)
        return self.grpc.start()

    def close(self) -> None:
        """Stop taking work, insert everything accepted, release the store."""
        if self.grpc is not None:
            self.grpc.stop()
        forwarder = self.app.state.collector.forwarder
        if forwarder is not None:
            forwarder.close()
        self.wal.close()
        self.follower.stop()
        self.writer.close()
        self.app.state.collector.close()
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
        max_body_bytes=options.max_body_bytes,
    )  # fmt: skip
    blobs = None
    if options.blob_location:
        from tracehouse.collector.blobs import BlobStore

        blobs = BlobStore(options.blob_location)
    app = create_app(store, writer, config, keys, wal=wal, follower=follower, blobs=blobs)
    if options.forward_otlp:
        from tracehouse.collector.otlp.forward import OtlpForwarder

        app.state.collector.forwarder = OtlpForwarder(options.forward_otlp, spool_dir / "forward")
    return CollectorParts(app, store, writer, follower, wal, secret)


def tune_malloc() -> None:
    """Tune glibc's malloc for a long-lived collector (no-op elsewhere).

    chDB's engine allocates with the process's malloc from many threads: by default every thread
    may get an arena of its own, and the mmap threshold rises to the largest block freed so far, so
    the 20 MB buffers of each insert end up in arenas that never shrink. A fixed threshold (big
    blocks are mapped and unmapped) and two arenas kept peak RSS ~15% lower under full ingest.

    The threshold is 2 MiB, not 128 KiB, and freed memory at the top of a heap is kept up to 64 MiB:
    each OTLP request's body, its decoded records and the WAL frames read back are a few hundred KiB,
    and mapping, zeroing and unmapping them on every request cost ~10% of the collector's CPU per span
    in page faults (perf). Measured with bench/ingest.py, A/B: 42-48 against 46-52 us of CPU per span,
    mixed-load reads faster, peak RSS ~25 MB higher.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl has no mallopt)
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_mmap_threshold, 2 * 1024 * 1024)
    mallopt(m_arena_max, 2)
    mallopt(m_trim_threshold, 64 * 1024 * 1024)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):  # type: ignore[misc]
        """uvicorn re-raises SIGTERM after its graceful stop, which would kill us before the writer
        drains; here a signal only asks for the stop, and serve() then writes everything accepted."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return Server


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, or a ConfigError saying why not (a port in use, say), before
    anything else starts: the collector never announces an address it cannot serve."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ConfigError("host", f"{host!r} is not an address or a name this machine resolves ({error})") from None
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT still binds
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError("port", f"{host}:{port} is in use (another `tracehouse serve` or `ui`?); "
                                      "choose another with --port") from None  # fmt: skip
        if error.errno == errno.EACCES:
            raise ConfigError("port", f"port {port} needs privileges on this machine; choose one above 1023") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise ConfigError("host", f"{host!r} is not an address of this machine") from None
        raise ConfigError("host", f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.listen(2048)  # connections made before the server loop runs wait in the backlog
    return listener


def serve(options: ServeOptions, announce: Optional[Callable[[str], None]] = None) -> None:
    """Run the collector until SIGTERM/SIGINT; everything accepted is written before it returns.

    `announce(url)` runs once the address is bound and the store open (default: one line on stderr)."""
    try:
        import uvicorn
    except ImportError as error:
        raise ConfigError("serve", "the collector needs its extra: pip install 'tracehouse[server]'") from error
    from tracehouse.collector.owner.takeover import Advertiser, take_over

    _Server = _server_class()
    listener = bind_listener(options.host, options.port)
    tune_malloc()
    try:
        if options.forward_otlp:
            from tracehouse.collector.otlp.forward import check_forward_url

            check_forward_url(options.forward_otlp)  # before taking the store over
        take_over(options.store_url)
        parts = build(options)
    except BaseException:
        listener.close()
        raise
    try:
        grpc_port = parts.start_grpc(options.host, options.grpc_port) if options.grpc_port else 0
    except BaseException:
        listener.close()
        parts.close()
        raise
    gc.freeze()  # the long-lived start-up objects leave the collector's GC passes (cheaper per request)
    gc.set_threshold(50_000, 20, 20)  # decoding makes many short-lived dicts: collect young objects less often
    config = uvicorn.Config(parts.app, host=options.host, port=options.port, log_level="warning", lifespan="off")
    server = _Server(config)
    advertiser = Advertiser(options.store_url, options.host, parts.owner_secret, options.spool_dir)
    advertiser.start(server)
    host = f"[{options.host}]" if ":" in options.host else options.host
    url = f"http://{host}:{listener.getsockname()[1]}"  # the port bound (the system's choice for --port 0)
    if announce is not None:
        announce(url)
    else:
        grpc = f", OTLP/gRPC on port {grpc_port}" if grpc_port else ""
        print(f"tracehouse collector listening on {url}{grpc} (store {redact_url(options.store_url)})",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        server.run(sockets=[listener])
    finally:
        advertiser.withdraw()
        parts.close()
