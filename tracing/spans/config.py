"""Settings: one declarative table, one precedence rule (argument > environment > default)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

from tracehouse._errors import ConfigError

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(option, f"expected a boolean (true/false, 1/0), got {value!r}")


def _parse_project(option: str, value: Any) -> str:
    if not isinstance(value, str) or not _PROJECT_RE.match(value):
        raise ConfigError(
            option,
            "expected 1-128 characters of letters, digits, '_', '.', '-' (starting with a letter or digit), "
            f"got {value!r}",
        )
    return value


def _parse_database(option: str, value: Any) -> str:
    if not isinstance(value, str) or not _DATABASE_RE.match(value):
        raise ConfigError(option, f"expected a ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*), got {value!r}")
    return value


def _parse_path(option: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip() or "\0" in str(value):
        raise ConfigError(option, f"expected a directory path, got {value!r}")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(option, f"{str(path)!r} exists and is not a directory")
    return path


def _parse_url(option: str, value: Any, schemes: tuple[str, ...]) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(schemes) or len(value) <= len(value.split("://")[0]) + 3:
        raise ConfigError(option, f"expected a URL starting with {' or '.join(schemes)}, got {value!r}")
    return value.rstrip("/")


def _parse_endpoint(option: str, value: Any) -> Optional[str]:
    return _parse_url(option, value, ("http://", "https://"))


def _parse_clickhouse_url(option: str, value: Any) -> Optional[str]:
    return _parse_url(option, value, ("http://", "https://", "chdb://", "clickhouse://"))


def _parse_blob_url(option: str, value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "://" not in value or value.startswith("://"):
        raise ConfigError(option, f"expected an fsspec URL such as s3://bucket/prefix or file:///path, got {value!r}")
    return value.rstrip("/")


def _parse_optional_str(option: str, value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(option, f"expected a string, got {type(value).__name__}")
    return value


def _parse_payload_limit(option: str, value: Any) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < 64:
        raise ConfigError(option, f"expected an integer of at least 64, got {value!r}")
    return number


def _parse_byte_size(option: str, value: Any) -> int:
    """A number of bytes: an integer, or one with a unit (500MB, 4GiB); 0 means no limit."""
    text = str(value).strip().lower().replace(" ", "") if not isinstance(value, bool) else ""
    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
    number, unit = text, ""
    for suffix in sorted(units, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, unit = text[: -len(suffix)], suffix
            break
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount != amount or amount == float("inf"):
        raise ConfigError(option, f"expected a size in bytes such as 4GiB or 500MB (0 for no limit), got {value!r}")
    return int(amount * units[unit])


def _parse_positive_float(option: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise ConfigError(option, f"expected a positive number of seconds, got {value!r}")
    return number


def _parse_redact(option: str, value: Any) -> Optional[Callable[[str], str]]:
    if value is not None and not callable(value):
        raise ConfigError(option, f"expected a callable taking and returning a string, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Param:
    """One setting: its environment variable, default, parser and meaning.

    `also`: another tool's variables read when `env` is unset (W&B's `WANDB_SILENT`); a value of theirs
    that does not parse is theirs, so it is ignored rather than an error."""

    env: Optional[str]
    default: Any
    parse: Callable[[str, Any], Any]
    doc: str
    also: tuple[str, ...] = ()


PARAMS: dict[str, Param] = {
    "project": Param("TRACEHOUSE_PROJECT", "default", _parse_project, "Project every span and run is recorded under."),
    "data_dir": Param(
        "TRACEHOUSE_DIR", "~/.tracehouse", _parse_path, "Data directory: the spool and the embedded store."
    ),
    "endpoint": Param(
        "TRACEHOUSE_ENDPOINT", None, _parse_endpoint, "URL of a `tracehouse serve` collector; unset = embedded store."
    ),
    "api_key": Param("TRACEHOUSE_API_KEY", None, _parse_optional_str, "Key sent to the collector."),
    "capture_content": Param(
        "TRACEHOUSE_CAPTURE_CONTENT", True, _parse_bool, "Record input/output text; when false only their sizes."
    ),
    "max_payload_bytes": Param(
        "TRACEHOUSE_MAX_PAYLOAD_BYTES",
        64 * 1024,
        _parse_payload_limit,
        "Input/output/context longer than this is truncated.",
    ),
    "redact": Param(None, None, _parse_redact, "Callable applied to every captured text before it is stored."),
    "disabled": Param("TRACEHOUSE_DISABLED", False, _parse_bool, "Turn tracing into a no-op."),
    "service_name": Param(
        None,
        None,
        _parse_optional_str,
        "OpenTelemetry service.name of tracehouse's spans; unset = the app's (its TracerProvider's resource, "
        "OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), else tracehouse-app.",
    ),
    "clickhouse_url": Param(
        "TRACEHOUSE_CLICKHOUSE_URL",
        None,
        _parse_clickhouse_url,
        "Store location: a ClickHouse server URL or chdb:///path.",
    ),
    "database": Param("TRACEHOUSE_DATABASE", "tracehouse", _parse_database, "ClickHouse database holding the tables."),
    "blob_url": Param(
        "TRACEHOUSE_BLOB_URL",
        None,
        _parse_blob_url,
        "Where artifact and media files are stored (an fsspec URL); unset = `blobs/` in the data dir.",
    ),
    "max_spool_bytes": Param(
        "TRACEHOUSE_MAX_SPOOL_BYTES",
        4 * 2**30,
        _parse_byte_size,
        "Disk the spool may use while records wait (collector down, store unread); past it new records are "
        "counted in th.stats() and warned about, not written. 0 = no limit.",
    ),
    "flush_timeout": Param(
        "TRACEHOUSE_FLUSH_TIMEOUT",
        5.0,
        _parse_positive_float,
        "Seconds a flush may take: at exit, on configure() and before reads.",
    ),
    "silent": Param(
        "TRACEHOUSE_SILENT",
        False,
        _parse_bool,
        "th.init() prints no line naming the run and where to look at it (W&B's WANDB_SILENT is honoured too).",
        also=("WANDB_SILENT",),
    ),
    "otlp_endpoint": Param(
        None,
        None,
        _parse_endpoint,
        "Another OTLP backend (base URL, e.g. http://collector:4318) that gets every span as well; the standard "
        "OTEL_EXPORTER_OTLP_* variables do the same while tracehouse runs its own TracerProvider.",
    ),
}


@dataclass(frozen=True)
class Settings:
    """The resolved settings; build with :func:`resolve_settings`.

    `th.Settings(silent=True, run_name=...)` with only some keywords is W&B's `wandb.Settings(...)`
    (for `th.init(settings=...)`, see tracking/wandb_options.py), so W&B scripts run unchanged."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and set(kwargs) != set(cls.__dataclass_fields__):
            from tracehouse.tracking.wandb_options import Settings as WandbSettings

            return WandbSettings(**kwargs)
        return super().__new__(cls)

    project: str
    data_dir: Path
    endpoint: Optional[str]
    api_key: Optional[str]
    capture_content: bool
    max_payload_bytes: int
    redact: Optional[Callable[[str], str]]
    disabled: bool
    service_name: Optional[str]
    clickhouse_url: Optional[str]
    database: str
    blob_url: Optional[str]
    max_spool_bytes: int
    flush_timeout: float
    silent: bool
    otlp_endpoint: Optional[str]

    @property
    def spool_dir(self) -> Path:
        """Where this process's spool segments are written."""
        return self.data_dir / "spool"

    @property
    def offline_spool_dir(self) -> Path:
        """Where runs in mode="offline" spool their records until `tracehouse sync`."""
        return self.data_dir / "offline-spool"

    @property
    def blob_location(self) -> str:
        """Where blobs (artifact and media files) live: the configured URL, else `blobs/` in the data dir."""
        return self.blob_url or str((self.data_dir / "blobs").resolve())

    @property
    def store_url(self) -> str:
        """The ClickHouse location: the configured URL, else the embedded chDB dir under data_dir."""
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'db').resolve()}"


assert [f.name for f in fields(Settings)] == list(PARAMS), "Settings and PARAMS must list the same options"


def default_settings(**overrides: Any) -> Settings:
    """The defaults of every option (no environment), with `overrides` applied."""
    values = {
        name: param.parse(name, param.default) if param.default is not None else None for name, param in PARAMS.items()
    }
    return Settings(**{**values, **overrides})


def resolve_settings(**arguments: Any) -> Settings:
    """Apply argument > environment > default for every option; raise ConfigError naming a bad one."""
    values: dict[str, Any] = {}
    for name, param in PARAMS.items():
        if arguments.get(name) is not None:
            raw, source = arguments[name], name
        elif param.env and param.env in os.environ:
            raw, source = os.environ[param.env], param.env
        else:
            raw, source = _foreign(param, name)
        values[name] = param.parse(source, raw) if raw is not None else None
    return Settings(**values)


def _foreign(param: Param, name: str) -> tuple[Any, str]:
    """The first of another tool's variables (`param.also`) that is set and parses, else the default."""
    for env in param.also:
        if env in os.environ:
            try:
                param.parse(env, os.environ[env])
            except ConfigError:
                continue
            return os.environ[env], env
    return param.default, name
