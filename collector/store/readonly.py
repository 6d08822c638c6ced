"""Running untrusted SQL: the guard, then a `readonly=1` session with limits, then one clean error line.

A reader session is a client of its own (ClickHouse keeps `readonly` on a session once set, so the
writing client never sees it), with the limits set before `readonly` locks them: result rows and
bytes (`result_overflow_mode=throw`, so an over-long answer is an error, not a silent cut), memory
and execution time. Sessions are kept per set of limits (a handful at most).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from tracehouse._errors import ConfigError, StoreError, TracehouseError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_CODE_RE = re.compile(r"Code:\s*(\d+)")
_PREFIX_RE = re.compile(r"^\s*(?:Code:\s*\d+\.\s*|DB::Exception:\s*|default:\s*)")
_TRAILERS_RE = re.compile(r"\s*\((?:version [^)]*|Native|line \d+, col \d+|[A-Z][A-Z0-9_]+)\)\.?")
_MAX_READERS = 4


@dataclass(frozen=True)
class QueryLimits:
    """What one untrusted query may use."""

    max_rows: int = 10_000
    timeout: float = 30.0
    max_memory_bytes: int = 2 * 1024**3
    max_result_bytes: int = 512 * 1024**2

    def checked(self) -> QueryLimits:
        """These limits, or ConfigError naming the one that is not a positive number."""
        for name, value in (("max_rows", self.max_rows), ("timeout", self.timeout),
                            ("max_memory_bytes", self.max_memory_bytes),
                            ("max_result_bytes", self.max_result_bytes)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(name, f"expected a positive number, got {value!r}")
        if not float(self.max_rows).is_integer():
            raise ConfigError("max_rows", f"expected a whole number of rows, got {self.max_rows!r}")
        return self

    def session_settings(self) -> dict[str, Any]:
        """The reader session's settings, `readonly` last (after it, nothing can be set)."""
        return {
            "max_result_rows": int(self.max_rows), "max_result_bytes": int(self.max_result_bytes),
            "result_overflow_mode": "throw", "max_execution_time": float(self.timeout),
            "timeout_overflow_mode": "throw", "max_memory_usage": int(self.max_memory_bytes), "readonly": 1,
        }  # fmt: skip


DEFAULT_LIMITS = QueryLimits()


def clean_message(error: BaseException) -> str:
    """A ClickHouse error as one line: no `Code: N. DB::Exception:` prefix, version or position trailers."""
    text = str(error).strip()
    index = text.find("Code: ")
    if index > 0:
        text = text[index:]
    while (stripped := _PREFIX_RE.sub("", text)) != text:
        text = stripped
    text = _TRAILERS_RE.sub("", text)
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line[:2000] or type(error).__name__


def error_code(error: BaseException) -> Optional[int]:
    """The ClickHouse error code in an error, if any."""
    code = getattr(error, "code", None)
    if isinstance(code, int) and code:
        return code
    match = _CODE_RE.search(str(error))
    return int(match.group(1)) if match else None


def readonly_error(error: BaseException, limits: QueryLimits) -> TracehouseError:
    """The error a user sees for a failed untrusted query: ConfigError("sql") for anything about the
    query (limits hit, read-only refusals, syntax, unknown names), StoreError when the store failed."""
    code = error_code(error)
    message = clean_message(error)
    if code == 396 or "Limit for result exceeded" in message:
        if "max bytes" in message:
            return ConfigError("sql", f"the result is over the limit of {limits.max_result_bytes:,} bytes; "
                                      "select fewer columns or rows")  # fmt: skip
        return ConfigError("sql", f"the result has more than {int(limits.max_rows):,} rows (the limit); narrow it "
                                  "with WHERE or LIMIT, or raise max_rows")  # fmt: skip
    if code == 159:
        return ConfigError("sql", f"the query ran past its {limits.timeout:g} s limit; narrow it (a time range, "
                                  "a LIMIT) or raise the timeout")  # fmt: skip
    if code == 241:
        return ConfigError("sql", f"the query needed more memory than its {limits.max_memory_bytes:,} bytes; "
                                  "aggregate less at once")  # fmt: skip
    if code == 164:
        return ConfigError("sql", f"read-only: {message}")
    if code is not None:
        return ConfigError("sql", message)
    return StoreError(f"query failed: {message}")


class ReaderPool:
    """Read-only sessions by limits (at most a few, the oldest closed first)."""

    def __init__(self, connect: Callable[[dict[str, Any]], Client]) -> None:
        self._connect = connect
        self._readers: OrderedDict[QueryLimits, Client] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, limits: QueryLimits) -> Client:
        """The session for `limits`, opened on first use."""
        with self._lock:
            reader = self._readers.get(limits)
            if reader is None:
                reader = self._readers[limits] = self._connect(limits.session_settings())
                while len(self._readers) > _MAX_READERS:
                    _, oldest = self._readers.popitem(last=False)
                    oldest.close()
            self._readers.move_to_end(limits)
            return reader

    def close(self) -> None:
        """Close every session."""
        with self._lock:
            readers, self._readers = list(self._readers.values()), OrderedDict()
        for reader in readers:
            reader.close()
