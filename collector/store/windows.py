"""Time windows: `since` (a duration back from now, or a time) or an absolute `start` / `end`.

Every read that filters by time takes the same three arguments, over Python, the REST API and the
pages: `start` and `end` are ISO 8601 times (naive ones are UTC) or epoch milliseconds, `since` a
duration ('15m', '1h', '7d') or a time. A window is `start <= t < end`; with no `end` it is open
(everything from `start` on). Inverted or empty windows, malformed values and `since` together
with `start` are ConfigErrors naming the parameter and the reason.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union

from tracehouse._errors import ConfigError

TIME_MIN = datetime(1900, 1, 1, tzinfo=timezone.utc)
TIME_MAX = datetime(2299, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.ASCII)
EPOCH_MS_RE = re.compile(r"^\s*-?\d{1,16}(?:\.\d+)?\s*$", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_FORMS = "an ISO 8601 time such as 2026-12-01T14:00:00Z or epoch milliseconds such as 1796133600000"


class Unset(enum.Enum):
    """The default of a `since` argument that was not given (None means all time)."""

    UNSET = "unset"


UNSET = Unset.UNSET
Instant = Union[str, int, float, datetime]
Since = Union[str, timedelta, datetime, None]


def check_time(option: str, value: datetime) -> datetime:
    """`value` (UTC when naive) if the store can hold it (DateTime64: 1900 to 2299), else ConfigError."""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not TIME_MIN <= value <= TIME_MAX:
        raise ConfigError(option, f"{value.isoformat()} is outside the times the store holds (1900 to 2299)")
    return value


def parse_instant(option: str, value: Any) -> datetime:
    """A point in time: a datetime, epoch milliseconds (a number or a string of digits), or an ISO 8601
    time (naive: UTC); ConfigError naming `option` otherwise."""
    if isinstance(value, datetime):
        return check_time(option, value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(option, f"expected {_FORMS}, got {value!r}")
    try:
        if isinstance(value, (int, float)) or EPOCH_MS_RE.match(value):
            return check_time(option, EPOCH + timedelta(milliseconds=float(value)))
        text = value.strip()
        if not text or not text[0].isdigit() or not text.isascii():
            raise ValueError(text)
        return check_time(option, datetime.fromisoformat(text))
    except (ValueError, OverflowError) as error:
        if isinstance(error, ConfigError):
            raise
        if isinstance(error, OverflowError) or "out of range" in str(error):
            raise ConfigError(option, f"{value!r} is outside the times the store holds (1900 to 2299)") from None
        raise ConfigError(option, f"expected {_FORMS}, got {value!r}") from None


def parse_duration(option: str, value: Any) -> Optional[timedelta]:
    """A duration such as '15m', '1h', '7d' (or a timedelta) above zero; None for any other text."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, str) and DURATION_RE.match(value):
        match = DURATION_RE.match(value)
        assert match is not None
        try:
            duration = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise ConfigError(option, f"{value!r} reaches before the times the store holds (1900 to 2299)") from None
    else:
        return None
    if duration <= timedelta(0):
        raise ConfigError(option, f"expected a duration above zero such as '15m', '1h', '7d', got {value!r}")
    return duration


def since_start(since: Since, now: Optional[datetime] = None) -> datetime:
    """The start of a `since` window: '15m', '1h', '7d', a timedelta, a time, or None (all time)."""
    if since is None:
        return EPOCH
    now = now or datetime.now(timezone.utc)
    duration = parse_duration("since", since)
    if duration is not None:
        try:
            return check_time("since", now - duration)
        except OverflowError:
            raise ConfigError("since", f"{since!r} reaches before the times the store holds (1900 to 2299)") from None
    if isinstance(since, (str, datetime)):
        try:
            return parse_instant("since", since)
        except ConfigError as error:
            if "outside the times" in error.problem:
                raise
    raise ConfigError(
        "since", f"expected a duration such as '15m', '1h', '7d', {_FORMS}, a timedelta or a datetime, got {since!r}"
    )


@dataclass(frozen=True)
class Window:
    """`start <= t < end` (`end` None: open, up to now and beyond)."""

    start: datetime
    end: Optional[datetime]

    def as_dict(self, now: Optional[datetime] = None) -> dict[str, Any]:
        """The window as JSON: ISO times and epoch milliseconds (an open end is now)."""
        end = self.end or now or datetime.now(timezone.utc)
        return {"start": self.start.isoformat(), "end": end.isoformat(), "start_ms": _ms(self.start),
                "end_ms": _ms(end), "open_end": self.end is None}  # fmt: skip


def _ms(value: datetime) -> int:
    return int((value - EPOCH) / timedelta(milliseconds=1))


def given(value: Any) -> bool:
    """Whether an optional window argument was given (None, '' and UNSET are not)."""
    return value is not UNSET and value is not None and not (isinstance(value, str) and not value.strip())


def resolve(
    since: Union[Since, Unset] = UNSET,
    start: Optional[Instant] = None,
    end: Optional[Instant] = None,
    default_since: Since = "24h",
    now: Optional[datetime] = None,
) -> Window:
    """The window of a read: `start`/`end`, else `since` (a duration counts back from `end` when one is
    given, else from now), else `default_since`. ConfigError for `since` with `start`, a malformed
    value, or an end not after the start."""
    now = now or datetime.now(timezone.utc)
    if given(since) and given(start):
        raise ConfigError("since", "give either since (a duration back from now) or start/end, not both")
    finish = parse_instant("end", end) if given(end) else None
    if given(start):
        begin = parse_instant("start", start)
    else:
        chosen = since if since is not UNSET else default_since
        if isinstance(chosen, str) and not chosen.strip():
            raise ConfigError("since", "expected a duration such as '15m', '1h', '7d' or a time, got ''")
        begin = since_start(chosen, finish or now)  # type: ignore[arg-type]
    if finish is not None and finish <= begin:
        raise ConfigError(
            "end", f"the end ({finish.isoformat()}) is not after the start ({begin.isoformat()}); the window is empty"
        )
    return Window(begin, finish)


def sql_window(window: Window, column: str = "start_time") -> tuple[str, dict[str, Any]]:
    """The window as a bound SQL condition on `column` (a fixed identifier) and its parameters."""
    condition = f"{column} >= {{w_start:DateTime64(6, 'UTC')}}"
    params: dict[str, Any] = {"w_start": window.start}
    if window.end is not None:
        condition += f" AND {column} < {{w_end:DateTime64(6, 'UTC')}}"
        params["w_end"] = window.end
    return condition, params


__all__ = [
    "EPOCH", "TIME_MAX", "TIME_MIN", "UNSET", "Instant", "Since", "Unset", "Window", "check_time", "given",
    "parse_duration", "parse_instant", "resolve", "since_start", "sql_window",
]  # fmt: skip
