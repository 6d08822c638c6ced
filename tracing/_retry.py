"""Retrying an HTTP peer: its `Retry-After` in both forms and jittered waits (the SDK's sender and the
collector's forwarder)."""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from typing import Optional

MAX_RETRY_AFTER = 300.0


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110); None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


def jittered(seconds: float) -> float:
    """`seconds` spread over [0.5, 1.0] of itself, so senders that failed together do not retry together."""
    return seconds * random.uniform(0.5, 1.0)


__all__ = ["MAX_RETRY_AFTER", "jittered", "parse_retry_after"]
